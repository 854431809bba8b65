//! The reset page's requests (`web.path`, "/reset" by default): the three recovery steps
//! as HTML forms for a person, on the public listener. Each form is a plain HTML form post that
//! works without JavaScript, and each post runs the same step as the JSON API
//! (`http::steps`): the same limits, guard, answers and enumeration behaviour. The
//! password form carries the `resetSession` that the code form returned, in a hidden
//! field, and a confirmation made on the page can be used only with that session
//! (`steps::Via::Page`): nobody else on the owner's address can use it through the JSON
//! API's same-client fallback.
//!
//! Cross-site posts: a post that the browser marks `Sec-Fetch-Site` other than
//! `same-origin` (or, from a browser that does not send it, whose `Origin` is not this
//! host) is refused with 403 (`http::browser::same_origin`). The page sets no cookie, and
//! its password form never uses the same-client fallback (it always sends a session), so
//! a forged post would carry only what its author typed.

use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self as h, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::handle::Public;
use super::json::{self, Resp};
use crate::error::ApiError;
use crate::guard::{Endpoint, Ticket};
use crate::steps::{Asker, NewPassword, Via};
use crate::web::page::{self, Frame, Problem, Step};
use crate::web::texts;

/// Answers a request under `web.path`.
pub async fn route(app: &Public, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    let base = app.config().web.path.as_str();
    let rest = &req.uri().path()[base.len()..];
    let texts = app.page().texts.choose(
        req.headers()
            .get(hyper::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    match (req.method(), rest) {
        (&Method::GET | &Method::HEAD, "") => {
            Ok(html(StatusCode::OK, app.page().blank(texts, false), None))
        }
        // Where the mail's link leads (its script comes here with the code).
        (&Method::GET | &Method::HEAD, "/code") => {
            Ok(html(StatusCode::OK, app.page().blank(texts, true), None))
        }
        (&Method::GET | &Method::HEAD, "/style.css") => {
            Ok(asset(app.page().css.clone(), "text/css; charset=utf-8"))
        }
        (&Method::GET | &Method::HEAD, "/logo") => match &app.page().logo {
            Some(logo) => {
                let mut resp = asset(logo.bytes.clone(), logo.content_type);
                // An SVG opened on its own runs nothing and loads nothing.
                resp.headers_mut().insert(
                    h::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'"),
                );
                Ok(resp)
            }
            None => Err(ApiError::NotFound),
        },
        (&Method::GET | &Method::HEAD, "/app.js") => Ok(asset(
            Bytes::from_static(include_bytes!("../web/app.js")),
            "text/javascript; charset=utf-8",
        )),
        (&Method::POST, "/email" | "/code" | "/password") => {
            if !crate::http::browser::same_origin(req.headers()) {
                app.metrics().refused("cross_site");
                let problem = Problem {
                    field: "",
                    sentence: texts.refused.into(),
                };
                let body = page::render(&frame(app, texts, ""), &Step::Email, Some(&problem));
                return Ok(html(StatusCode::FORBIDDEN, body, None));
            }
            Ok(post(app, req, client, texts).await)
        }
        (_, "" | "/style.css" | "/app.js" | "/logo") => {
            Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
        }
        (_, "/code") => Err(ApiError::MethodNotAllowed {
            allow: "GET, HEAD, POST",
        }),
        (_, "/email" | "/password") => Err(ApiError::MethodNotAllowed { allow: "POST" }),
        _ => Err(ApiError::NotFound),
    }
}

/// One form post as it is answered: the listener's handle, who asks and in which language
/// the page speaks.
struct Post<'a> {
    app: &'a Public,
    asker: Asker,
    texts: &'a texts::Texts,
}

/// One form post: the step it names, answered with the next form, or the same one with
/// the problem's sentence and what was typed.
async fn post(app: &Public, req: Request<Incoming>, client: IpAddr, texts: &texts::Texts) -> Resp {
    let rest = req.uri().path()[app.config().web.path.len()..].to_string();
    let post = Post {
        app,
        asker: app.asker(&req, client, Via::Page),
        texts,
    };
    let endpoint = match rest.as_str() {
        "/email" => Endpoint::Forgot,
        "/code" => Endpoint::Confirm,
        _ => Endpoint::Reset,
    };
    // The client's limits first; the body (bounded in size and time, as every body is, and
    // in fields) is parsed after, also for a refusal, whose page keeps what was typed.
    let admitted = app.steps().admit(client, endpoint);
    let form = match read_form(app, req).await {
        Ok(form) => form,
        Err(e) => {
            let shown = admitted.as_ref().err().unwrap_or(&e);
            return post.refused(&Step::Email, "", "", shown);
        }
    };
    let typed = form.get("email");
    let again = match endpoint {
        Endpoint::Forgot => Step::Email,
        Endpoint::Confirm => Step::Code {
            email: typed,
            sent: false,
        },
        Endpoint::Reset => Step::Password {
            email: typed,
            session: form.get("resetSession"),
        },
    };
    let ticket = match admitted {
        Ok(ticket) => ticket,
        Err(e) => return post.refused(&again, typed, "", &e),
    };
    match endpoint {
        Endpoint::Forgot => post.email_step(ticket, typed).await,
        Endpoint::Confirm => post.code_step(ticket, typed, form.get("code")).await,
        Endpoint::Reset => post.password_step(ticket, &form).await,
    }
}

impl Post<'_> {
    async fn email_step(&self, ticket: Ticket, typed: &str) -> Resp {
        let Ok(email) = crate::mail_address::validate(typed) else {
            ticket.keep();
            let problem = Problem {
                field: "email",
                sentence: self.texts.bad_email.into(),
            };
            let body = page::render(&self.frame(typed), &Step::Email, Some(&problem));
            return html(StatusCode::BAD_REQUEST, body, None);
        };
        super::note_email(&email.key);
        let shown = email.key.clone();
        match self.app.steps().forgot(ticket, &self.asker, email).await {
            Ok(()) => {
                let step = Step::Code {
                    email: &shown,
                    sent: true,
                };
                let body = page::render(&self.frame(typed), &step, None);
                html(StatusCode::OK, body, None)
            }
            Err(e) => self.refused(&Step::Email, typed, "email", &e),
        }
    }

    async fn code_step(&self, ticket: Ticket, email: &str, code: &str) -> Resp {
        let claimed = crate::mail_address::validate(email).ok();
        let again = Step::Code { email, sent: false };
        if code.trim().is_empty() {
            ticket.keep();
            return self.refused(&again, email, "code", &ApiError::InvalidOtp);
        }
        if let Some(claimed) = &claimed {
            super::note_email(&claimed.key);
        }
        let steps = self.app.steps();
        match steps
            .confirm(ticket, &self.asker, code, claimed.as_ref())
            .await
        {
            Ok(confirmed) => {
                let step = Step::Password {
                    email: &confirmed.email,
                    session: &confirmed.session,
                };
                let body = page::render(&self.frame(email), &step, None);
                html(StatusCode::OK, body, None)
            }
            Err(e) => self.refused(&again, email, "code", &e),
        }
    }

    async fn password_step(&self, ticket: Ticket, form: &Form) -> Resp {
        let (email, session) = (form.get("email"), form.get("resetSession"));
        let again = Step::Password { email, session };
        let password = form.get("password");
        if password != form.get("password2") {
            ticket.keep();
            let problem = Problem {
                field: "password2",
                sentence: self.texts.mismatch.into(),
            };
            let body = page::render(&self.frame(email), &again, Some(&problem));
            return html(StatusCode::BAD_REQUEST, body, None);
        }
        let Ok(valid) = crate::mail_address::validate(email) else {
            ticket.keep();
            return self.refused(&again, email, "", &ApiError::InvalidRequest);
        };
        super::note_email(&valid.key);
        let new = NewPassword {
            email: &valid,
            password,
            session: Some(session),
        };
        match self.app.steps().reset(ticket, &self.asker, new).await {
            Ok(()) => {
                let body = page::render(&self.frame(""), &Step::Done, None);
                html(StatusCode::OK, body, None)
            }
            Err(e) => self.refused(&again, email, "password", &e),
        }
    }

    /// The page again with the sentence for `e`, at `field` where it is about what was typed
    /// there, and the API's status (with `Retry-After` where it has one).
    fn refused(&self, step: &Step, typed: &str, field: &'static str, e: &ApiError) -> Resp {
        let texts = self.texts;
        let (status, _) = e.status_and_message();
        let (field, sentence, retry) = match e {
            ApiError::NoAccount => (field, texts.no_account.to_string(), None),
            ApiError::InvalidOtp => (field, texts.invalid_code.to_string(), None),
            ApiError::WeakPassword(why) => ("password", texts.weak(*why), None),
            ApiError::BadRequest(_) | ApiError::MissingParameters if field == "email" => {
                (field, texts.bad_email.to_string(), None)
            }
            ApiError::InvalidRequest | ApiError::NoAccountBadRequest => {
                ("", texts.expired_flow.into(), None)
            }
            ApiError::RateLimited { retry_after_secs } => {
                let wait = texts.wait(*retry_after_secs);
                (
                    "",
                    texts.too_many.replace("{wait}", &wait),
                    Some(*retry_after_secs),
                )
            }
            ApiError::Unavailable { retry_after_secs } => {
                let wait = texts.wait(*retry_after_secs);
                (
                    "",
                    texts.busy.replace("{wait}", &wait),
                    Some(*retry_after_secs),
                )
            }
            ApiError::Store(_) | ApiError::Internal(_) => ("", texts.unexpected.into(), None),
            _ => ("", texts.refused.into(), None),
        };
        let problem = Problem { field, sentence };
        let body = page::render(&self.frame(typed), step, Some(&problem));
        html(status, body, retry)
    }

    fn frame<'a>(&'a self, typed: &'a str) -> Frame<'a> {
        frame(self.app, self.texts, typed)
    }
}

fn frame<'a>(app: &'a Public, texts: &'a texts::Texts, typed: &'a str) -> Frame<'a> {
    crate::web::frame(app.config(), texts, app.page().logo.is_some(), typed)
}

/// A form post's fields: the first value of each name.
struct Form(Vec<(String, String)>);

impl Form {
    /// The field's value, or "" when it is absent.
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The most fields a form post may have: the page's forms send at most five.
const MAX_FIELDS: usize = 8;

/// The body, bounded as every body is, parsed as a form of at most [`MAX_FIELDS`] fields
/// (more is a 400, found without parsing further).
async fn read_form(app: &Public, req: Request<Incoming>) -> Result<Form, ApiError> {
    let server = &app.config().server;
    let body = json::read_body(req, server.max_body_bytes, server.body_timeout).await?;
    parse_form(&body)
}

fn parse_form(body: &[u8]) -> Result<Form, ApiError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (n, (k, v)) in form_urlencoded::parse(body).enumerate() {
        if n == MAX_FIELDS {
            return Err(ApiError::bad_request("The form has too many fields"));
        }
        if !fields.iter().any(|(seen, _)| *seen == k) {
            fields.push((k.into_owned(), v.into_owned()));
        }
    }
    Ok(Form(fields))
}

/// A page: HTML with the security headers every page answer carries.
fn html(status: StatusCode, body: impl Into<Bytes>, retry_after_secs: Option<u64>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    let set = |headers: &mut hyper::HeaderMap, name, value| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, h::CONTENT_TYPE, "text/html; charset=utf-8");
    set(headers, h::CONTENT_SECURITY_POLICY, CSP);
    set(headers, h::REFERRER_POLICY, "no-referrer");
    set(headers, h::CACHE_CONTROL, "no-store");
    set(headers, h::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, h::X_FRAME_OPTIONS, "DENY");
    if let Some(secs) = retry_after_secs {
        headers.insert(h::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Nothing but this page's own stylesheet, script, logo and forms; nothing inline, no framing.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A file of the page (stylesheet, script, logo), cacheable for an hour.
fn asset(body: Bytes, content_type: &'static str) -> Resp {
    let mut resp = Response::new(Full::new(body));
    let headers = resp.headers_mut();
    headers.insert(h::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        h::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        h::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_keep_the_first_value_and_have_few_fields() {
        let form = super::parse_form(b"email=a%40b.c&code=1&email=x").unwrap();
        assert_eq!((form.get("email"), form.get("code")), ("a@b.c", "1"));
        assert_eq!(form.get("absent"), "");
        assert!(super::parse_form(b"a=1&a=2&a=3&a=4&a=5&a=6&a=7&a=8").is_ok());
        assert!(super::parse_form(b"a=1&a=2&a=3&a=4&a=5&a=6&a=7&a=8&a=9").is_err());
    }
}
