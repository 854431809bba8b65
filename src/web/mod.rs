//! The reset page (`web.path`, "/reset" by default): what it shows. Its texts in three
//! languages (`texts`), the pages rendered from them (`page`), and what is made once at
//! start-up ([`Page`]: the fixed pages, the stylesheet, the logo). `http::page` answers
//! its requests and runs the steps its forms post.

mod built;
mod logo;
pub mod page;
pub mod texts;

pub use built::{frame, Page};

/// Whether `path` belongs to the page (when it is enabled).
pub fn serves(web: &crate::config::Web, path: &str) -> bool {
    web.enabled
        && path
            .strip_prefix(web.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
