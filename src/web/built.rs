//! What the page needs that depends on the configuration only, made once at start-up: its
//! texts, its logo, the stylesheet in the accent colour, and the two pages a GET shows
//! (step 1 and the code step, nothing typed) in each language, answered from memory.

use bytes::Bytes;

use super::logo::{self, Logo};
use super::page::{self, Frame, Step};
use super::texts::{PageTexts, Texts};
use crate::config::{Config, ConfigError};

pub struct Page {
    pub texts: PageTexts,
    pub logo: Option<Logo>,
    pub css: Bytes,
    /// Per language: step 1, then the code step.
    blanks: Vec<[Bytes; 2]>,
}

impl Page {
    /// Reads the texts and the logo, and renders what never changes (`check-config` builds
    /// it too, to check the files).
    pub fn new(config: &Config) -> Result<Page, ConfigError> {
        let texts = PageTexts::load(config.page_templates())?;
        let logo = logo::load(&config.web)?;
        let blanks = texts
            .all()
            .iter()
            .map(|t| {
                [
                    Step::Email,
                    Step::Code {
                        email: "",
                        sent: false,
                    },
                ]
                .map(|step| {
                    let frame = frame(config, t, logo.is_some(), "");
                    Bytes::from(page::render(&frame, &step, None))
                })
            })
            .collect();
        Ok(Page {
            css: Bytes::from(page::stylesheet(&config.web.accent_color)),
            texts,
            logo,
            blanks,
        })
    }

    /// Step 1, or the code step, as a GET shows it in `texts`' language.
    pub fn blank(&self, texts: &Texts, code_step: bool) -> Bytes {
        self.blanks[texts.index][usize::from(code_step)].clone()
    }
}

/// What a page shows besides its step: the texts, the product, the logo, what was typed.
pub fn frame<'a>(config: &'a Config, texts: &'a Texts, logo: bool, typed: &'a str) -> Frame<'a> {
    let product = if config.web.product_name.is_empty() {
        config.mail.product_name.as_str()
    } else {
        config.web.product_name.as_str()
    };
    Frame {
        texts,
        product,
        logo,
        path: &config.web.path,
        typed_email: typed,
        ttl: texts.wait(config.recovery.code_ttl.as_secs()),
        min_length: config.passwords.min_length,
    }
}
