//! JSON in and out: bounded body reading, field extraction, and response building.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value};

use crate::error::ApiError;

pub type Resp = Response<Full<Bytes>>;
pub type Object = Map<String, Value>;

/// A JSON response with the headers every answer carries.
pub fn json(status: StatusCode, body: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn json_value(status: StatusCode, value: &Value) -> Resp {
    json(status, Bytes::from(value.to_string()))
}

/// A JSON response from a typed answer. It goes through [`Value`], so its keys come out
/// sorted, as they do in the bodies built with `json!`.
pub fn typed(status: StatusCode, answer: &impl serde::Serialize) -> Result<Resp, ApiError> {
    let value = serde_json::to_value(answer).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_value(status, &value))
}

/// The error's status and `{"message": …}`, plus `Retry-After` or `Allow` where they belong.
pub fn error(err: &ApiError) -> Resp {
    let (status, message) = err.status_and_message();
    if status.is_server_error() {
        tracing::error!(error = %err, "request failed");
    }
    #[derive(serde::Serialize)]
    struct Body<'a> {
        message: &'a str,
    }
    let body = serde_json::to_vec(&Body { message: &message }).unwrap_or_default();
    let mut resp = json(status, Bytes::from(body));
    let h = resp.headers_mut();
    match err {
        ApiError::RateLimited { retry_after_secs } | ApiError::Unavailable { retry_after_secs } => {
            h.insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        ApiError::MethodNotAllowed { allow } => {
            h.insert(ALLOW, HeaderValue::from_static(allow));
        }
        ApiError::Unauthorized => {
            h.insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        ApiError::BodyTimeout
        | ApiError::PayloadTooLarge
        | ApiError::UnsupportedMediaType
        | ApiError::CrossSite => {
            // The rest of the body is not read: the connection cannot be reused.
            h.insert("connection", HeaderValue::from_static("close"));
        }
        _ => {}
    }
    resp
}

/// Reads the body (at most `max` bytes, within `timeout`) and parses a JSON object.
pub async fn read_object(
    req: Request<Incoming>,
    max: usize,
    timeout: std::time::Duration,
) -> Result<Object, ApiError> {
    parse_object(&read_body(req, max, timeout).await?)
}

/// Reads the body: at most `max` bytes (413), within `timeout` (408).
pub async fn read_body(
    req: Request<Incoming>,
    max: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let collect = Limited::new(req.into_body(), max).collect();
    let body = match tokio::time::timeout(timeout, collect).await {
        Err(_) => return Err(ApiError::BodyTimeout),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::PayloadTooLarge)
        }
        Ok(Err(_)) => return Err(ApiError::bad_request("The request body could not be read")),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok(body)
}

/// Parses a JSON object; a field given twice is refused rather than silently resolved.
pub fn parse_object(body: &[u8]) -> Result<Object, ApiError> {
    match serde_json::from_slice::<Strict>(body) {
        Ok(Strict::Object(map)) => Ok(map),
        Ok(Strict::Other) => Err(ApiError::bad_request(
            "The request body must be a JSON object",
        )),
        Err(e) if e.is_eof() && body.iter().all(u8::is_ascii_whitespace) => Err(
            ApiError::bad_request("The request body is empty; a JSON object is expected"),
        ),
        Err(e) if e.to_string().starts_with(DUPLICATE) => Err(ApiError::bad_request(
            "The request body has a field more than once",
        )),
        Err(_) => Err(ApiError::bad_request("The request body is not valid JSON")),
    }
}

const DUPLICATE: &str = "duplicate field";

/// A top-level JSON value whose object form refuses duplicate keys.
enum Strict {
    Object(Object),
    Other,
}

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Strict, A::Error> {
        let mut map = Object::new();
        while let Some((k, v)) = access.next_entry::<String, Value>()? {
            if map.contains_key(&k) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE} {k:?}")));
            }
            map.insert(k, v);
        }
        Ok(Strict::Object(map))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut access: A) -> Result<Strict, A::Error> {
        while access.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Strict::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict::Other)
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict::Other)
    }
}

/// A required string field: absent, `null` or blank is the documented "missing" error;
/// another JSON type is a clear 400 of its own.
pub fn required_str<'a>(obj: &'a Object, field: &'static str) -> Result<&'a str, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(ApiError::MissingParameters),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::MissingParameters),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::BadRequest(
            format!("The field '{field}' must be a string").into(),
        )),
    }
}

/// An optional string field: absent or `null` is None.
pub fn optional_str<'a>(obj: &'a Object, field: &'static str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::BadRequest(
            format!("The field '{field}' must be a string").into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shapes() {
        assert!(parse_object(br#"{"email":"a@b.c"}"#).is_ok());
        for (body, text) in [
            (&b"[]"[..], "must be a JSON object"),
            (b"{", "not valid JSON"),
            (b"", "empty"),
            (b"\xff\xfe", "not valid JSON"),
            (br#"{"email":"a@b.c","email":"x@y.z"}"#, "more than once"),
            (b"null", "must be a JSON object"),
            (b"12", "must be a JSON object"),
            (b"{} trailing", "not valid JSON"),
        ] {
            let err = parse_object(body).unwrap_err();
            assert!(err.status_and_message().1.contains(text), "{body:?}: {err}");
        }
    }

    #[test]
    fn fields() {
        let obj = parse_object(br#"{"a":"x","b":"  ","c":null,"d":5}"#).unwrap();
        assert_eq!(required_str(&obj, "a").unwrap(), "x");
        for f in ["b", "c", "z"] {
            assert!(
                matches!(required_str(&obj, f), Err(ApiError::MissingParameters)),
                "{f}"
            );
        }
        assert!(matches!(
            required_str(&obj, "d"),
            Err(ApiError::BadRequest(_))
        ));
        assert_eq!(optional_str(&obj, "c").unwrap(), None);
    }
}
