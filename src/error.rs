//! One error enum, mapped to (status, documented message) in one place.
//!
//! Texts in the contract (docs/api.md) are exact: clients compare them. Anything unexpected
//! becomes 500 `Unexpected Error`; its detail goes to the log, never into the body.

use std::borrow::Cow;

use hyper::StatusCode;

use crate::guard::Refusal;
use crate::store::StoreError;

pub const MISSING_PARAMETERS: &str = "Missing One or More Required Parameters";
pub const NO_ACCOUNT: &str = "No Account found with this email address";
pub const ACCESS_DENIED: &str = "Access denied";
pub const TOO_MANY_REQUESTS: &str = "Too many requests";
pub const UNEXPECTED: &str = "Unexpected Error";
pub const INVALID_OTP: &str = "Invalid OTP";
pub const INVALID_REQUEST: &str = "Invalid Request";
pub const UNAVAILABLE: &str = "Service temporarily unavailable; try again later";
pub const ACCOUNT_EXISTS: &str = "An account with this email address already exists";
pub const INVALID_CREDENTIALS: &str = "Invalid email or password";
pub const NO_SUCH_MESSAGE: &str = "No such message";
pub const NO_SUCH_BLOCK: &str = "No such block";
pub const UNSUPPORTED_MEDIA_TYPE: &str = "Content-Type must be application/json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a required parameter is missing or blank")]
    MissingParameters,
    /// A 400 whose text is safe and useful to show to the client.
    #[error("bad request: {0}")]
    BadRequest(Cow<'static, str>),
    /// A new password the policy refuses: 400 with the policy's sentence.
    #[error("weak password: {0}")]
    WeakPassword(crate::recovery::policy::Weak),
    /// forgot-password's documented 404.
    #[error("no account")]
    NoAccount,
    /// password-reset's documented 400 for the same case.
    #[error("no account (400)")]
    NoAccountBadRequest,
    #[error("no live code matches")]
    InvalidOtp,
    #[error("no usable confirmation")]
    InvalidRequest,
    #[error("client denied")]
    Denied,
    /// A browser request from another site (`http::browser`): 403 `Access denied`.
    #[error("cross-site request")]
    CrossSite,
    /// A JSON endpoint's body sent as anything but `application/json`.
    #[error("not application/json")]
    UnsupportedMediaType,
    #[error("rate limited for {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    #[error("body too large")]
    PayloadTooLarge,
    #[error("body not received in time")]
    BodyTimeout,
    #[error("unknown path")]
    NotFound,
    /// An admin request names something that does not exist: 404 saying what.
    #[error("not found: {0}")]
    NoSuch(Cow<'static, str>),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("missing or wrong admin token")]
    Unauthorized,
    /// `users/verify`: the pair does not match (401, but no token is asked for).
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("conflict: {0}")]
    Conflict(Cow<'static, str>),
    /// The service cannot take this request now (low on disk space): 503 + `Retry-After`.
    #[error("unavailable for {retry_after_secs}s")]
    Unavailable { retry_after_secs: u64 },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::Denied => ApiError::Denied,
            Refusal::Limited { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
        }
    }
}

impl ApiError {
    pub fn bad_request(text: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::BadRequest(text.into())
    }

    /// The status and the body's `message`.
    pub fn status_and_message(&self) -> (StatusCode, Cow<'static, str>) {
        use ApiError::*;
        match self {
            MissingParameters => (StatusCode::BAD_REQUEST, MISSING_PARAMETERS.into()),
            BadRequest(text) => (StatusCode::BAD_REQUEST, text.clone()),
            WeakPassword(why) => (StatusCode::BAD_REQUEST, why.to_string().into()),
            NoAccount => (StatusCode::NOT_FOUND, NO_ACCOUNT.into()),
            NoAccountBadRequest => (StatusCode::BAD_REQUEST, NO_ACCOUNT.into()),
            InvalidOtp => (StatusCode::BAD_REQUEST, INVALID_OTP.into()),
            InvalidRequest => (StatusCode::BAD_REQUEST, INVALID_REQUEST.into()),
            Denied | CrossSite => (StatusCode::FORBIDDEN, ACCESS_DENIED.into()),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                UNSUPPORTED_MEDIA_TYPE.into(),
            ),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, TOO_MANY_REQUESTS.into()),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body is too large".into(),
            ),
            BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "Request body was not received in time".into(),
            ),
            NotFound => (StatusCode::NOT_FOUND, "Not Found".into()),
            NoSuch(text) => (StatusCode::NOT_FOUND, text.clone()),
            MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into())
            }
            Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized".into()),
            InvalidCredentials => (StatusCode::UNAUTHORIZED, INVALID_CREDENTIALS.into()),
            Conflict(text) => (StatusCode::CONFLICT, text.clone()),
            Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE.into()),
            Store(_) | Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, UNEXPECTED.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_body() {
        let e = ApiError::Store(StoreError::Corrupt("secret detail".into()));
        let (status, message) = e.status_and_message();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(message, "Unexpected Error");
    }

    #[test]
    fn documented_texts() {
        assert_eq!(
            ApiError::MissingParameters.status_and_message().1,
            MISSING_PARAMETERS
        );
        assert_eq!(
            ApiError::NoAccount.status_and_message().0,
            StatusCode::NOT_FOUND
        );
        let limited: ApiError = Refusal::Limited {
            retry_after_secs: 3,
        }
        .into();
        assert_eq!(
            limited.status_and_message().0,
            StatusCode::TOO_MANY_REQUESTS
        );
        let denied: ApiError = Refusal::Denied.into();
        assert_eq!(
            denied.status_and_message(),
            (StatusCode::FORBIDDEN, "Access denied".into())
        );
    }
}
