//! The reset page (`/reset`) against the real binary, with the mail going through a real
//! SMTP server: plain HTML form posts, as a browser sends them without JavaScript.

mod support;

use support::{request, smtp_config, Reply, Service, Setup, SmtpSink};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const PASSWORD: &str = "purple elephant dances at noon";

fn setup(extra: &str) -> (SmtpSink, Setup, Service) {
    support::started(extra, &["ada@example.com"])
}

/// A form post as a browser sends it from the page: same origin, `fields` encoded.
fn post(service: &Service, path: &str, fields: &[(&str, &str)], lang: &str) -> Reply {
    let body = form(fields);
    // As Chromium sends the page's own posts under its `Referrer-Policy: no-referrer`.
    let headers = [
        FORM,
        ("origin", "null"),
        ("sec-fetch-site", "same-origin"),
        ("accept-language", lang),
    ];
    request(service.public, "POST", path, &headers, body.as_bytes())
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A quoted-printable body decoded as far as a link needs: soft line breaks and "=3D".
fn quoted_printable(body: &str) -> String {
    body.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The value of the hidden or text field `name` in a page.
fn field(page: &Reply, name: &str) -> Option<String> {
    let at = page.raw_body.find(&format!("name=\"{name}\""))?;
    let rest = &page.raw_body[at..];
    let value = rest.split("value=\"").nth(1)?.split('"').next()?;
    Some(
        value
            .replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// The error sentence shown for `field` (or for the form, with "").
fn error(page: &Reply, field: &str) -> Option<String> {
    let marker = if field.is_empty() {
        "<p class=\"error\" role=\"alert\">".to_string()
    } else {
        format!("id=\"{field}-error\" role=\"alert\">")
    };
    let at = page.raw_body.find(&marker)?;
    Some(
        page.raw_body[at + marker.len()..]
            .split('<')
            .next()?
            .to_string(),
    )
}

fn assert_page_headers(r: &Reply) {
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("set-cookie").is_none(), "the page sets no cookie");
}

#[test]
fn a_person_resets_their_password_with_the_three_forms() {
    let (sink, setup, service) = setup("");
    let first = request(
        service.public,
        "GET",
        "/reset",
        &[("accept-language", "fr")],
        b"",
    );
    assert_eq!(first.status, 200);
    assert_page_headers(&first);
    assert!(first.raw_body.contains("<html lang=\"fr\" "));
    assert!(first
        .raw_body
        .contains("<label for=\"email\">Adresse e-mail</label>"));
    assert!(first.raw_body.contains("autocomplete=\"email\""));
    let css = request(service.public, "GET", "/reset/style.css", &[], b"");
    assert_eq!(
        (css.status, css.header("content-type")),
        (200, Some("text/css; charset=utf-8"))
    );

    let second = post(
        &service,
        "/reset/email",
        &[("email", "Ada@Example.com")],
        "fr",
    );
    assert_eq!(second.status, 200, "{second:?}");
    assert_page_headers(&second);
    assert!(
        second.raw_body.contains("un code est en route"),
        "{}",
        second.raw_body
    );
    assert_eq!(field(&second, "email").as_deref(), Some("ada@example.com"));
    let code = sink.next_mail().code_in_any_language();

    let third = post(
        &service,
        "/reset/code",
        &[("email", "ada@example.com"), ("code", &code)],
        "fr",
    );
    assert_eq!(third.status, 200, "{third:?}");
    let session = field(&third, "resetSession").expect("the session in a hidden field");
    assert_eq!(
        third
            .raw_body
            .matches("autocomplete=\"new-password\"")
            .count(),
        2
    );

    let fields = |password2: &str| {
        vec![
            ("email", "ada@example.com".to_string()),
            ("resetSession", session.clone()),
            ("password", PASSWORD.to_string()),
            ("password2", password2.to_string()),
        ]
    };
    let mismatched = fields("purple elephant dances at nine");
    let pairs: Vec<(&str, &str)> = mismatched.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post(&service, "/reset/password", &pairs, "fr");
    assert_eq!(r.status, 400);
    assert_eq!(
        error(&r, "password2").as_deref(),
        Some("Les deux mots de passe ne correspondent pas.")
    );
    assert_eq!(
        field(&r, "resetSession").as_deref(),
        Some(session.as_str()),
        "kept"
    );

    let short = [
        ("email", "ada@example.com"),
        ("resetSession", session.as_str()),
        ("password", "short"),
        ("password2", "short"),
    ];
    let r = post(&service, "/reset/password", &short, "fr");
    assert_eq!(r.status, 400);
    assert!(
        error(&r, "password").is_some_and(|e| e.contains("15")),
        "{r:?}"
    );

    // A guessable one: the policy's sentence under the password field, in French.
    let guessable = [
        ("email", "ada@example.com"),
        ("resetSession", session.as_str()),
        ("password", "password1234567"),
        ("password2", "password1234567"),
    ];
    let r = post(&service, "/reset/password", &guessable, "fr");
    assert_eq!(r.status, 400);
    assert_eq!(
        error(&r, "password").as_deref(),
        Some("Ce mot de passe est trop facile à deviner. Ajoutez quelques mots sans rapport."),
        "{r:?}"
    );

    let good = fields(PASSWORD);
    let pairs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = post(&service, "/reset/password", &pairs, "fr");
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.raw_body.contains("Votre mot de passe a été modifié"));

    let body = format!(r#"{{"email": "ada@example.com", "password": "{PASSWORD}"}}"#);
    let verified = service.admin_call(&setup, "POST", "/admin/v1/users/verify", body.as_bytes());
    assert_eq!(
        verified.status, 200,
        "the new password is the account's: {verified:?}"
    );
}

#[test]
fn each_refusal_has_its_sentence_and_keeps_what_was_typed() {
    let limits = "[limits.forgot_password]\nper_client = { requests = 3, window = \"1m\" }\n";
    let (_sink, _setup, service) = setup(limits);
    let r = post(
        &service,
        "/reset/email",
        &[("email", "not an address")],
        "en",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        error(&r, "email").as_deref(),
        Some("Enter a valid email address.")
    );
    assert_eq!(field(&r, "email").as_deref(), Some("not an address"));
    assert!(r
        .raw_body
        .contains("aria-describedby=\"email-error\" aria-invalid=\"true\" autofocus"));

    let r = post(
        &service,
        "/reset/email",
        &[("email", "nobody@example.com")],
        "de",
    );
    assert_eq!(r.status, 404, "as the API answers an unknown address");
    assert_eq!(
        error(&r, "email").as_deref(),
        Some("Zu dieser E-Mail-Adresse wurde kein Konto gefunden.")
    );
    assert_eq!(field(&r, "email").as_deref(), Some("nobody@example.com"));

    let r = post(
        &service,
        "/reset/code",
        &[("email", "ada@example.com"), ("code", "123456789012")],
        "en",
    );
    assert_eq!(r.status, 400);
    assert!(error(&r, "code").is_some_and(|e| e.starts_with("This code is wrong or has expired")));
    assert_eq!(field(&r, "email").as_deref(), Some("ada@example.com"));

    // The third forgot-password of this client is its last; the fourth waits.
    let _ = post(
        &service,
        "/reset/email",
        &[("email", "ada@example.com")],
        "en",
    );
    let r = post(
        &service,
        "/reset/email",
        &[("email", "ada@example.com")],
        "en",
    );
    assert_eq!(r.status, 429);
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(
        error(&r, "").is_some_and(|e| e.starts_with("Too many attempts. Try again in")),
        "{r:?}"
    );
    assert!((1..=60).contains(&wait));
    assert_eq!(field(&r, "email").as_deref(), Some("ada@example.com"));
}

#[test]
fn a_post_from_another_site_is_refused_before_anything_happens() {
    let (_sink, setup, service) = setup("");
    let body = b"email=ada%40example.com";
    for headers in [
        [FORM, ("origin", "https://evil.example")],
        [FORM, ("sec-fetch-site", "cross-site")],
        [FORM, ("sec-fetch-site", "same-site")],
        [FORM, ("origin", "null")],
    ] {
        let r = request(service.public, "POST", "/reset/email", &headers, body);
        assert_eq!(r.status, 403, "{headers:?}");
        assert_page_headers(&r);
    }
    let outbox = service.admin_call(&setup, "GET", "/admin/v1/outbox", b"");
    assert_eq!(outbox.json()["queued"], 0, "no code was issued");
}

#[test]
fn the_page_moves_or_goes_away_as_configured() {
    let (_sink, _setup, service) =
        setup("[web]\npath = \"/account/reset\"\naccent_color = \"#123456\"\n");
    assert_eq!(
        request(service.public, "GET", "/reset", &[], b"").status,
        404
    );
    let r = request(service.public, "GET", "/account/reset", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.raw_body.contains("action=\"/account/reset/email\""));
    let css = request(service.public, "GET", "/account/reset/style.css", &[], b"");
    assert!(css.raw_body.contains("#123456") && !css.raw_body.contains("#0b57d0"));
    drop(service);

    let (_sink, _setup, service) = setup("[web]\nenabled = false\n");
    assert_eq!(
        request(service.public, "GET", "/reset", &[], b"").status,
        404
    );
}

/// A service configured with `extra`, and the code mail that forgot-password (the JSON
/// API) had sent for the account.
fn code_mail_with(extra: &str) -> (support::Mail, Service) {
    let (sink, _setup, service) = setup(extra);
    let r = service.post(
        "/api/v1/user/forgot-password",
        r#"{"email": "ada@example.com"}"#,
    );
    assert_eq!(r.status, 200);
    (sink.next_mail(), service)
}

#[test]
fn the_code_mail_links_to_the_page_with_the_code_in_the_fragment() {
    let (mail, service) = code_mail_with("[web]\npublic_url = \"https://id.example.test/\"\n");
    let code = mail.code();
    assert_eq!(code.len(), 12, "the mail still shows the code");
    let link = format!("https://id.example.test/reset#code={code}");
    assert!(
        quoted_printable(&mail.data).contains(&link),
        "{}",
        mail.data
    );
    // The documented API flow is unchanged: the code confirms as before.
    let confirmed = service.post(
        "/api/v1/user/confirm-otp-reset",
        &format!(r#"{{"resetToken": "{code}"}}"#),
    );
    assert_eq!(confirmed.status, 200, "{confirmed:?}");

    // The link's page: step 1 sends its script to the code step, which it fills in.
    let first = request(service.public, "GET", "/reset", &[], b"");
    assert!(first.raw_body.contains("data-code-step=\"/reset/code\""));
    assert!(first
        .raw_body
        .contains("<script src=\"/reset/app.js\" defer></script>"));
    let step = request(service.public, "GET", "/reset/code", &[], b"");
    assert_eq!(step.status, 200);
    assert_page_headers(&step);
    assert!(step.raw_body.contains("id=\"code\""));
    let script = request(service.public, "GET", "/reset/app.js", &[], b"");
    assert_eq!(
        (script.status, script.header("content-type")),
        (200, Some("text/javascript; charset=utf-8"))
    );
    assert!(script.raw_body.contains("#code="));
}

#[test]
fn without_a_public_url_the_mail_has_no_link() {
    let (mail, _service) = code_mail_with("");
    assert!(!mail.data.contains("#code="), "{}", mail.data);
    assert!(
        !mail.data.contains("{{"),
        "no placeholder left: {}",
        mail.data
    );
}

#[test]
fn the_page_shows_the_configured_logo() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    let image = b"\x89PNG\r\n\x1a\n not really, but served as it is";
    std::fs::write(&logo, image).unwrap();
    let extra = format!("[web]\nlogo_file = \"{}\"\n", logo.display());
    let (_sink, _setup, service) = setup(&extra);
    let page = request(service.public, "GET", "/reset", &[], b"");
    assert!(page
        .raw_body
        .contains("<img class=\"logo\" src=\"/reset/logo\" alt=\"\">"));
    assert!(page
        .header("content-security-policy")
        .is_some_and(|csp| csp.contains("img-src 'self'")));
    let served = request(service.public, "GET", "/reset/logo", &[], b"");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("image/png"));
    assert_eq!(
        served.header("content-security-policy"),
        Some("default-src 'none'")
    );
    assert_eq!(
        served.raw_body,
        String::from_utf8_lossy(image),
        "the file, as it is"
    );

    let text = dir.path().join("logo.txt");
    std::fs::write(&text, "not an image").unwrap();
    let setup = Setup::new(&format!("[web]\nlogo_file = \"{}\"\n", text.display()));
    let out = setup.cli(&["check-config"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("web.logo_file"), "{out:?}");
}

#[test]
fn without_a_logo_there_is_none() {
    let (_sink, _setup, service) = setup("");
    let page = request(service.public, "GET", "/reset", &[], b"");
    assert!(!page.raw_body.contains("<img"));
    assert_eq!(
        request(service.public, "GET", "/reset/logo", &[], b"").status,
        404
    );
}

#[test]
fn the_page_says_what_the_templates_directory_says() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page.de.title"), "Kennwort vergessen?\n").unwrap();
    std::fs::write(dir.path().join("page.send_code"), "Email me a code").unwrap();
    // The mail's templates live in the same directory, as in mail.templates_dir.
    std::fs::write(dir.path().join("otp.subject"), "Your code").unwrap();
    let extra = format!("[mail]\ntemplates_dir = \"{}\"\n", dir.path().display());
    let sink = SmtpSink::start();
    let setup = Setup::new(&smtp_config(sink.port).replace("[mail]\n", &extra));
    let service = setup.start();
    let de = request(
        service.public,
        "GET",
        "/reset",
        &[("accept-language", "de")],
        b"",
    );
    assert!(
        de.raw_body.contains("<h1>Kennwort vergessen?</h1>"),
        "{}",
        de.raw_body
    );
    let en = request(service.public, "GET", "/reset", &[], b"");
    assert!(en
        .raw_body
        .contains("<button type=\"submit\">Email me a code</button>"));
    assert!(
        en.raw_body.contains("<h1>Reset your password</h1>"),
        "others stay"
    );
    drop(service);

    std::fs::write(dir.path().join("page.de.nosuchtext"), "?").unwrap();
    let out = setup.cli(&["check-config"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("page.de.nosuchtext"), "{out:?}");
}
