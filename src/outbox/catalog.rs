//! The message texts: built into the binary (English, German, French), overridable from
//! files in `mail.templates_dir`, chosen per request by `Accept-Language`.
//!
//! Files are named `<kind>[.<locale>].<part>`: kind `otp` or `password_changed`, part
//! `subject`, `txt` or `html` (an HTML part is sent only where an `html` file exists).
//! Placeholders: `{{code}}`, `{{ttl}}`, `{{link}}` (the reset page with the code, when
//! `web.public_url` is set; else empty), `{{link_line}}`, `{{product}}`, `{{support}}`,
//! `{{support_line}}`, `{{time}}`, `{{client}}`. Values are HTML-escaped in `html` parts.

use std::collections::HashMap;
use std::path::Path;

use crate::config::ConfigError;

pub const KINDS: [&str; 2] = ["otp", "password_changed"];
const PARTS: [&str; 3] = ["subject", "txt", "html"];

const BUILT_IN: &[(&str, &str, &str, &str)] = &[
    ("otp", "en", "subject", "Your password reset code for {{product}}"),
    ("otp", "en", "txt", "Hello,\r\n\r\nsomeone asked to reset the password of {{product}} for this email address.\r\n\r\nYour one-time code is:\r\n\r\n    {{code}}\r\n{{link_line}}\r\nIt is valid for {{ttl}} and can be used once. A newer request replaces it.\r\n\r\nIf you did not ask for this, ignore this message: your password stays as it is.\r\n{{support_line}}"),
    ("password_changed", "en", "subject", "Your password for {{product}} was changed"),
    ("password_changed", "en", "txt", "Hello,\r\n\r\nthe password of {{product}} for this email address was changed at {{time}} (UTC)\r\nfrom the address {{client}}, after a password reset confirmed with a code sent here.\r\n\r\nIf this was you, there is nothing to do. If it was not, contact your administrator\r\nat once: someone else may have access to this mailbox.\r\n{{support_line}}"),
    ("otp", "de", "subject", "Ihr Code zum Zurücksetzen des Passworts für {{product}}"),
    ("otp", "de", "txt", "Hallo,\r\n\r\njemand möchte das Passwort von {{product}} für diese E-Mail-Adresse zurücksetzen.\r\n\r\nIhr Einmalcode lautet:\r\n\r\n    {{code}}\r\n{{link_line}}\r\nEr ist {{ttl}} gültig und nur einmal verwendbar. Eine neue Anfrage ersetzt ihn.\r\n\r\nWenn Sie das nicht waren, ignorieren Sie diese Nachricht: Ihr Passwort bleibt unverändert.\r\n{{support_line}}"),
    ("password_changed", "de", "subject", "Ihr Passwort für {{product}} wurde geändert"),
    ("password_changed", "de", "txt", "Hallo,\r\n\r\ndas Passwort von {{product}} für diese E-Mail-Adresse wurde am {{time}} (UTC)\r\nvon der Adresse {{client}} aus geändert, nach einer mit einem Code bestätigten Anfrage.\r\n\r\nWaren Sie das, ist nichts zu tun. Andernfalls wenden Sie sich sofort an Ihre\r\nAdministration: jemand anderes hat womöglich Zugriff auf dieses Postfach.\r\n{{support_line}}"),
    ("otp", "fr", "subject", "Votre code de réinitialisation du mot de passe pour {{product}}"),
    ("otp", "fr", "txt", "Bonjour,\r\n\r\nquelqu'un a demandé à réinitialiser le mot de passe de {{product}} pour cette adresse.\r\n\r\nVotre code à usage unique :\r\n\r\n    {{code}}\r\n{{link_line}}\r\nIl est valable {{ttl}} et ne sert qu'une fois. Une nouvelle demande le remplace.\r\n\r\nSi vous n'êtes pas à l'origine de cette demande, ignorez ce message : votre mot de passe reste inchangé.\r\n{{support_line}}"),
    ("password_changed", "fr", "subject", "Votre mot de passe pour {{product}} a été modifié"),
    ("password_changed", "fr", "txt", "Bonjour,\r\n\r\nle mot de passe de {{product}} pour cette adresse a été modifié le {{time}} (UTC)\r\ndepuis l'adresse {{client}}, après une demande confirmée par un code envoyé ici.\r\n\r\nSi c'était vous, il n'y a rien à faire. Sinon, contactez immédiatement votre\r\nadministrateur : quelqu'un d'autre a peut-être accès à cette boîte.\r\n{{support_line}}"),
];

/// (kind, locale, part) → text.
pub struct Catalog {
    texts: HashMap<(String, String, String), String>,
    /// The locales with a subject and a text for every kind: what `choose` may pick.
    /// Computed once, so that choosing costs no allocation per candidate.
    complete: std::collections::HashSet<String>,
}

impl Catalog {
    /// The built-in texts, overlaid with the files of `dir` (if not empty).
    pub fn load(dir: &Path) -> Result<Catalog, ConfigError> {
        let mut texts: HashMap<_, _> = BUILT_IN
            .iter()
            .map(|(k, l, p, t)| ((k.to_string(), l.to_string(), p.to_string()), t.to_string()))
            .collect();
        if dir.as_os_str().is_empty() {
            return Ok(Catalog::new(texts));
        }
        let bad = |e: String| ConfigError(format!("`mail.templates_dir`: {e}"));
        let entries = std::fs::read_dir(dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
        for entry in entries {
            let path = entry.map_err(|e| bad(e.to_string()))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            // Hidden files, and the reset page's texts (`page.*`, see `web::PageTexts`).
            if name.starts_with('.') || name.starts_with("page.") {
                continue;
            }
            let key = parse_name(name).ok_or_else(|| {
                bad(format!("{name}: expected <kind>[.<locale>].<part>, kind one of {KINDS:?}, part one of {PARTS:?}"))
            })?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            texts.insert(key, text);
        }
        Ok(Catalog::new(texts))
    }

    fn new(texts: HashMap<(String, String, String), String>) -> Catalog {
        let has = |k: &str, l: &str, p: &str| {
            texts.contains_key(&(k.to_string(), l.to_string(), p.to_string()))
        };
        let complete = texts
            .keys()
            .map(|(_, locale, _)| locale)
            .filter(|l| {
                KINDS
                    .iter()
                    .all(|k| has(k, l, "subject") && has(k, l, "txt"))
            })
            .cloned()
            .collect();
        Catalog { texts, complete }
    }

    /// The best locale `Accept-Language` asks for among those with a text for every kind
    /// (None: English).
    pub fn choose(&self, accept_language: Option<&str>) -> Option<String> {
        let mut wanted: Vec<(f32, String)> = accept_language?
            .split(',')
            .filter_map(|item| {
                let mut parts = item.trim().split(';');
                let tag = parts.next()?.trim().to_ascii_lowercase();
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.parse::<f32>().ok())?;
                (q > 0.0 && !tag.is_empty() && tag.len() <= 16).then_some((q, tag))
            })
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0));
        wanted.into_iter().find_map(|(_, tag)| {
            let primary = tag.split('-').next().unwrap_or_default();
            [tag.as_str(), primary]
                .into_iter()
                .find(|l| self.complete.contains(*l))
                .map(str::to_string)
        })
    }

    /// The part for `kind` in `locale`, else in English; `None` only for a missing `html`.
    pub fn part(&self, kind: &str, locale: Option<&str>, part: &str) -> Option<&str> {
        let lookup = |l: &str| {
            self.texts
                .get(&(kind.to_string(), l.to_string(), part.to_string()))
        };
        let localized = locale.and_then(lookup);
        // An html part exists only where the chosen locale (or English, without a locale) has one.
        if part == "html" {
            return localized
                .or_else(|| locale.is_none().then(|| lookup("en")).flatten())
                .map(String::as_str);
        }
        localized.or_else(|| lookup("en")).map(String::as_str)
    }
}

/// `otp.de.txt` → ("otp", "de", "txt"); `otp.subject` → ("otp", "en", "subject").
fn parse_name(name: &str) -> Option<(String, String, String)> {
    let (rest, part) = name.rsplit_once('.')?;
    if !PARTS.contains(&part) {
        return None;
    }
    let (kind, locale) = match rest.split_once('.') {
        Some((kind, locale)) => (kind, locale.to_ascii_lowercase()),
        None => (rest, "en".to_string()),
    };
    let locale_ok = !locale.is_empty()
        && locale.len() <= 16
        && locale
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    (KINDS.contains(&kind) && locale_ok).then(|| (kind.to_string(), locale, part.to_string()))
}

/// Replaces `{{name}}` by its value (escaped for HTML when `html`).
pub fn fill(template: &str, values: &[(&str, &str)], html: bool) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        let value = if html {
            escape(value)
        } else {
            value.to_string()
        };
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_available() {
        let c = Catalog::load(Path::new("")).unwrap();
        assert_eq!(
            c.choose(Some("de-DE,de;q=0.9,en;q=0.8")).as_deref(),
            Some("de")
        );
        assert_eq!(c.choose(Some("es, fr;q=0.5")).as_deref(), Some("fr"));
        assert_eq!(c.choose(Some("es")), None);
        assert_eq!(c.choose(Some("fr;q=0, de;q=0.1")).as_deref(), Some("de"));
        assert_eq!(c.choose(None), None);
        assert_eq!(c.choose(Some(";;;,,q=")), None);
    }

    #[test]
    fn overrides_and_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("otp.html"), "<p>{{code}}</p>").unwrap();
        std::fs::write(dir.path().join("otp.es.txt"), "Código: {{code}}").unwrap();
        let c = Catalog::load(dir.path()).unwrap();
        assert_eq!(c.part("otp", None, "html"), Some("<p>{{code}}</p>"));
        assert_eq!(c.part("otp", Some("de"), "html"), None, "no German html");
        assert_eq!(c.part("otp", Some("es"), "txt"), Some("Código: {{code}}"));
        assert!(
            c.part("otp", Some("es"), "subject")
                .unwrap()
                .starts_with("Your"),
            "English fallback"
        );
        assert_eq!(c.choose(Some("es")), None, "es lacks the other texts");
        std::fs::write(dir.path().join("otp.xx"), "").unwrap();
        assert!(Catalog::load(dir.path()).is_err());
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            fill(
                "{{code}} for {{product}}",
                &[("code", "1 2"), ("product", "<b>")],
                false
            ),
            "1 2 for <b>"
        );
        assert_eq!(
            fill("{{product}}", &[("product", "<b>&")], true),
            "&lt;b&gt;&amp;"
        );
    }
}
