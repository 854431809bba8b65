//! What a web browser may send: the JSON API takes only `application/json`, which no page
//! can send to another origin without a CORS preflight, and refuses a request the browser
//! marks as coming from another site. Clients that are not browsers send no `Origin` and
//! no `Sec-Fetch-Site`, and pass. `server.cors_origins` lists the origins (an
//! application's own front end) whose pages may call the API; the preflight is answered
//! for them only.

use hyper::header::{self as h, HeaderMap, HeaderValue};
use hyper::StatusCode;

use super::json::Resp;
use crate::error::ApiError;

/// The API's answer to a browser: the listed origin its answer names, if any.
pub type Allowed = Option<HeaderValue>;

/// Checks a JSON API request: its `Content-Type` (415 unless `application/json`, with any
/// parameters such as `charset`), then where a browser says it comes from (403 from
/// another site, unless its origin is in `cors_origins`).
pub fn admit(headers: &HeaderMap, cors_origins: &[String]) -> Result<Allowed, ApiError> {
    if !is_json(headers.get(h::CONTENT_TYPE)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    if same_origin(headers) {
        return Ok(None);
    }
    match listed(headers, cors_origins) {
        Some(origin) => Ok(Some(origin)),
        None => Err(ApiError::CrossSite),
    }
}

/// `application/json`, in any case, with or without parameters.
fn is_json(value: Option<&HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// A request from this service's own origin, or from no web page at all. Browsers that
/// send `Sec-Fetch-Site` (current ones do, to https origins and to localhost) are taken at
/// their word: only `same-origin`
/// (or `none`, typed by the user) passes. Their `Origin` cannot tell here: under the reset
/// page's `Referrer-Policy: no-referrer`, a browser sends `Origin: null` even for the
/// page's own form. Without `Sec-Fetch-Site`, an `Origin` must name this host; a request
/// with neither header comes from no browser (curl, a generated client) and passes. (A
/// browser posting to a plain-http origin sends no `Sec-Fetch-Site`, but does send
/// `Origin` with every cross-origin post.)
pub fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    let Some(origin) = value("origin") else {
        return true;
    };
    let host = value("host").unwrap_or_default();
    let own = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    !host.is_empty() && own == Some(host)
}

/// The request's `Origin`, when `cors_origins` lists it.
fn listed(headers: &HeaderMap, cors_origins: &[String]) -> Option<HeaderValue> {
    let origin = headers.get(h::ORIGIN)?;
    let text = origin.to_str().ok()?;
    cors_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// Adds what a listed origin's page needs to read the answer.
pub fn expose(resp: &mut Resp, allowed: Allowed) {
    if let Some(origin) = allowed {
        let headers = resp.headers_mut();
        headers.insert(h::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            h::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after, x-request-id"),
        );
        headers.append(h::VARY, HeaderValue::from_static("origin"));
    }
}

/// `OPTIONS` on an endpoint: the CORS preflight, answered (204) only for a listed origin
/// asking to `POST`; anything else is the endpoint's 405.
pub fn preflight(headers: &HeaderMap, cors_origins: &[String]) -> Result<Resp, ApiError> {
    let asks_post = headers
        .get(h::ACCESS_CONTROL_REQUEST_METHOD)
        .is_some_and(|m| m == "POST");
    let Some(origin) = listed(headers, cors_origins).filter(|_| asks_post) else {
        return Err(ApiError::MethodNotAllowed { allow: "POST" });
    };
    let mut resp = Resp::new(Default::default());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let set = |resp: &mut Resp, name, value| {
        resp.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    };
    set(&mut resp, h::ACCESS_CONTROL_ALLOW_METHODS, "POST");
    set(
        &mut resp,
        h::ACCESS_CONTROL_ALLOW_HEADERS,
        "content-type, accept-language",
    );
    set(&mut resp, h::ACCESS_CONTROL_MAX_AGE, "600");
    resp.headers_mut()
        .insert(h::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    resp.headers_mut()
        .insert(h::VARY, HeaderValue::from_static("origin"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn only_json_passes() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
        ] {
            let map = headers(&[("content-type", ok)]);
            assert!(admit(&map, &[]).is_ok(), "{ok}");
        }
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
        ] {
            let map = headers(&[("content-type", refused)]);
            assert!(
                matches!(admit(&map, &[]), Err(ApiError::UnsupportedMediaType)),
                "{refused}"
            );
        }
        assert!(matches!(
            admit(&HeaderMap::new(), &[]),
            Err(ApiError::UnsupportedMediaType)
        ));
    }

    #[test]
    fn other_sites_are_refused_unless_listed() {
        let json = ("content-type", "application/json");
        let listed = ["https://app.example.com".to_string()];
        let cases: [(&[(&'static str, &'static str)], bool); 7] = [
            (&[], true),
            (&[("sec-fetch-site", "same-origin")], true),
            (&[("sec-fetch-site", "cross-site")], false),
            (&[("sec-fetch-site", "same-site")], false),
            (
                &[
                    ("host", "id.example.com"),
                    ("origin", "https://id.example.com"),
                ],
                true,
            ),
            (
                &[
                    ("host", "id.example.com"),
                    ("origin", "https://evil.example"),
                ],
                false,
            ),
            (&[("host", "id.example.com"), ("origin", "null")], false),
        ];
        for (extra, passes) in cases {
            let mut pairs = vec![json];
            pairs.extend_from_slice(extra);
            let result = admit(&headers(&pairs), &listed);
            assert_eq!(result.is_ok(), passes, "{extra:?}");
        }
        let from_app = headers(&[
            json,
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example.com"),
        ]);
        let allowed = admit(&from_app, &listed).expect("a listed origin passes");
        assert_eq!(allowed.unwrap(), "https://app.example.com");
    }
}
