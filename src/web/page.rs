//! The reset page's HTML: one server-rendered form per step, plain HTML form posts; one
//! small script (`app.js`) only fills in the code from the mail's link. Every value
//! written into the page is HTML-escaped.

use super::texts::Texts;

/// Which form the page shows, with what it carries forward.
pub enum Step<'a> {
    /// 1: the email address.
    Email,
    /// 2: the code, for the address typed in step 1 (kept in a hidden field).
    Code { email: &'a str, sent: bool },
    /// 3: the new password twice, with the `resetSession` from step 2 in a hidden field.
    Password { email: &'a str, session: &'a str },
    /// The password was changed.
    Done,
}

/// An error sentence, and the field it is about (focus goes there).
pub struct Problem<'a> {
    pub field: &'a str,
    pub sentence: String,
}

/// What a page needs besides the step.
pub struct Frame<'a> {
    pub texts: &'a Texts,
    pub product: &'a str,
    /// Whether `web.logo_file` is set (the image is at `<path>/logo`).
    pub logo: bool,
    /// `web.path`: the forms post below it, the stylesheet is there.
    pub path: &'a str,
    /// The address as typed (step 1 keeps it after an error).
    pub typed_email: &'a str,
    pub ttl: String,
    pub min_length: usize,
}

pub fn render(frame: &Frame, step: &Step, problem: Option<&Problem>) -> String {
    let t = frame.texts;
    let mut body = String::new();
    match step {
        Step::Email => {
            body.push_str(&para(t.intro));
            body.push_str(&form(frame, "email", problem, t.send_code, |f| {
                email_field(f, t.email_label, frame.typed_email, problem)
            }));
        }
        Step::Code { email, sent } => {
            if *sent {
                let sentence = t.code_sent.replace("{ttl}", &frame.ttl);
                body.push_str(&para_with_email(&sentence, email));
            }
            body.push_str(&form(frame, "code", problem, t.confirm, |f| {
                hidden(f, "email", email);
                code_field(f, t.code_label, problem);
            }));
            body.push_str(&start_over(frame));
        }
        Step::Password { email, session } => {
            body.push_str(&form(frame, "password", problem, t.set_password, |f| {
                hidden(f, "email", email);
                hidden(f, "resetSession", session);
                let hint = t
                    .password_hint
                    .replace("{min}", &frame.min_length.to_string());
                password_field(f, "password", t.password_label, Some(&hint), problem);
                password_field(f, "password2", t.password2_label, None, problem);
            }));
            body.push_str(&start_over(frame));
        }
        Step::Done => {
            body.push_str(&format!(
                "<p class=\"done\" role=\"status\">{}</p>",
                escape(t.done)
            ));
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"{lang}\" data-code-step=\"{path}/code\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · {product}</title>\n\
         <link rel=\"stylesheet\" href=\"{path}/style.css\">\n\
         <script src=\"{path}/app.js\" defer></script>\n</head>\n<body>\n<main>\n\
         {logo}<p class=\"product\">{product}</p>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n",
        lang = t.lang,
        title = escape(t.title),
        product = escape(frame.product),
        path = escape(frame.path),
        // Decorative: the product's name follows as text.
        logo = if frame.logo {
            format!("<img class=\"logo\" src=\"{}/logo\" alt=\"\">\n", escape(frame.path))
        } else {
            String::new()
        },
    )
}

fn para(text: &str) -> String {
    format!("<p>{}</p>\n", escape(text))
}

/// A sentence with `{email}` in bold.
fn para_with_email(sentence: &str, email: &str) -> String {
    let (before, after) = sentence.split_once("{email}").unwrap_or((sentence, ""));
    format!(
        "<p role=\"status\">{}<strong>{}</strong>{}</p>\n",
        escape(before),
        escape(email),
        escape(after)
    )
}

/// A form posting to `<path>/<step>`, with the problem's sentence first when it is not
/// about one field.
fn form(
    frame: &Frame,
    step: &str,
    problem: Option<&Problem>,
    button: &str,
    fields: impl FnOnce(&mut String),
) -> String {
    let mut f = format!(
        "<form method=\"post\" action=\"{}/{step}\" novalidate>\n",
        escape(frame.path)
    );
    if let Some(p) = problem.filter(|p| p.field.is_empty()) {
        f.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n",
            escape(&p.sentence)
        ));
    }
    fields(&mut f);
    f.push_str(&format!(
        "<button type=\"submit\">{}</button>\n</form>\n",
        escape(button)
    ));
    f
}

fn hidden(f: &mut String, name: &str, value: &str) {
    f.push_str(&format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
        escape(value)
    ));
}

/// The address field, with what was typed.
fn email_field(f: &mut String, label: &str, value: &str, problem: Option<&Problem>) {
    let label = Label {
        name: "email",
        text: label,
        hint: None,
    };
    input(f, label, problem, |attrs| {
        format!(
            "type=\"email\" value=\"{}\" autocomplete=\"email\" required{attrs}",
            escape(value)
        )
    });
}

fn code_field(f: &mut String, label: &str, problem: Option<&Problem>) {
    let label = Label {
        name: "code",
        text: label,
        hint: None,
    };
    input(f, label, problem, |attrs| {
        format!(
            "type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"32\" required{attrs}"
        )
    });
}

fn password_field(
    f: &mut String,
    name: &str,
    label: &str,
    hint: Option<&str>,
    problem: Option<&Problem>,
) {
    let label = Label {
        name,
        text: label,
        hint,
    };
    input(f, label, problem, |attrs| {
        format!("type=\"password\" autocomplete=\"new-password\" required{attrs}")
    });
}

/// A field's name, its label and its hint, if any.
struct Label<'a> {
    name: &'a str,
    text: &'a str,
    hint: Option<&'a str>,
}

/// A labelled input; in error, it says so, points at its sentence and takes the focus.
fn input(
    f: &mut String,
    label: Label<'_>,
    problem: Option<&Problem>,
    attributes: impl FnOnce(String) -> String,
) {
    let Label {
        name,
        text: label,
        hint,
    } = label;
    let error = problem.filter(|p| p.field == name);
    let mut described = Vec::new();
    if hint.is_some() {
        described.push(format!("{name}-hint"));
    }
    if error.is_some() {
        described.push(format!("{name}-error"));
    }
    let mut extra = String::new();
    if !described.is_empty() {
        extra.push_str(&format!(" aria-describedby=\"{}\"", described.join(" ")));
    }
    if error.is_some() {
        extra.push_str(" aria-invalid=\"true\"");
    }
    // Focus goes to the field in error; without one, to the form's first field.
    let unplaced = problem.is_none_or(|p| p.field.is_empty());
    if error.is_some() || unplaced && ["email", "code", "password"].contains(&name) {
        extra.push_str(" autofocus");
    }
    f.push_str(&format!(
        "<div class=\"field\">\n<label for=\"{name}\">{}</label>\n",
        escape(label)
    ));
    if let Some(hint) = hint {
        f.push_str(&format!(
            "<p class=\"hint\" id=\"{name}-hint\">{}</p>\n",
            escape(hint)
        ));
    }
    if let Some(e) = error {
        f.push_str(&format!(
            "<p class=\"error\" id=\"{name}-error\" role=\"alert\">{}</p>\n",
            escape(&e.sentence)
        ));
    }
    f.push_str(&format!(
        "<input id=\"{name}\" name=\"{name}\" {}>\n</div>\n",
        attributes(extra)
    ));
}

fn start_over(frame: &Frame) -> String {
    format!(
        "<p class=\"again\"><a href=\"{}\">{}</a></p>\n",
        escape(frame.path),
        escape(frame.texts.start_over)
    )
}

/// HTML escaping for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet, with the accent colour: built once at start-up.
pub fn stylesheet(accent: &str) -> String {
    include_str!("style.css").replace("#0b57d0", accent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame<'a>(typed: &'a str) -> Frame<'a> {
        static TEXTS: std::sync::OnceLock<super::super::texts::PageTexts> =
            std::sync::OnceLock::new();
        let texts = TEXTS.get_or_init(|| {
            super::super::texts::PageTexts::load(std::path::Path::new("")).unwrap()
        });
        Frame {
            texts: texts.choose(None),
            product: "Acme <Corp>",
            logo: false,
            path: "/reset",
            typed_email: typed,
            ttl: "15 minutes".into(),
            min_length: 15,
        }
    }

    #[test]
    fn values_are_escaped_and_errors_tied_to_their_field() {
        let problem = Problem {
            field: "email",
            sentence: "Enter a valid email address.".into(),
        };
        let html = render(
            &frame("\"><script>x</script>"),
            &Step::Email,
            Some(&problem),
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
        assert!(html.contains("Acme &lt;Corp&gt;"));
        assert!(html.contains("aria-describedby=\"email-error\" aria-invalid=\"true\" autofocus"));
        assert!(html.contains(
            "<p class=\"error\" id=\"email-error\" role=\"alert\">Enter a valid email address.</p>"
        ));
        assert!(html.contains("autocomplete=\"email\""));
    }

    #[test]
    fn each_step_has_its_fields() {
        let f = frame("");
        let code = render(
            &f,
            &Step::Code {
                email: "a@example.com",
                sent: true,
            },
            None,
        );
        assert!(code.contains("inputmode=\"numeric\" autocomplete=\"one-time-code\""));
        assert!(code.contains("<input type=\"hidden\" name=\"email\" value=\"a@example.com\">"));
        assert!(code.contains("action=\"/reset/code\""));
        let pw = render(
            &f,
            &Step::Password {
                email: "a@example.com",
                session: "s1",
            },
            None,
        );
        assert!(pw.contains("name=\"resetSession\" value=\"s1\""));
        assert_eq!(pw.matches("autocomplete=\"new-password\"").count(), 2);
        assert!(pw.contains("At least 15 characters."));
    }
}
