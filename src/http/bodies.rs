//! The request bodies of the three public endpoints: the one place they are parsed and
//! validated (and what the fuzz target exercises). Every failure is a 4xx `ApiError`.

use super::json;
use crate::error::ApiError;
use crate::mail_address::{self, Email};

#[derive(Debug)]
pub struct ForgotBody {
    pub email: Email,
}

#[derive(Debug)]
pub struct ConfirmBody {
    pub code: String,
    /// The optional `email` extension (blank counts as absent).
    pub email: Option<Email>,
}

#[derive(Debug)]
pub struct ResetBody {
    pub email: Email,
    /// Exactly as sent: never trimmed or truncated.
    pub password: String,
    pub session: Option<String>,
}

fn email(raw: &str) -> Result<Email, ApiError> {
    mail_address::validate(raw).map_err(|e| ApiError::bad_request(e.0))
}

pub fn forgot(body: &[u8]) -> Result<ForgotBody, ApiError> {
    let obj = json::parse_object(body)?;
    Ok(ForgotBody {
        email: email(json::required_str(&obj, "email")?)?,
    })
}

pub fn confirm(body: &[u8]) -> Result<ConfirmBody, ApiError> {
    let obj = json::parse_object(body)?;
    let code = json::required_str(&obj, "resetToken")?.to_string();
    let email = match json::optional_str(&obj, "email")? {
        Some(e) if !e.trim().is_empty() => Some(email(e)?),
        _ => None,
    };
    Ok(ConfirmBody { code, email })
}

pub fn reset(body: &[u8]) -> Result<ResetBody, ApiError> {
    let obj = json::parse_object(body)?;
    let raw_email = json::required_str(&obj, "email")?;
    let password = json::required_str(&obj, "password")?.to_string();
    let session = json::optional_str(&obj, "resetSession")?.map(str::to_string);
    Ok(ResetBody {
        email: email(raw_email)?,
        password,
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_bodies() {
        assert_eq!(
            forgot(br#"{"email":" A@b.org"}"#).unwrap().email.key,
            "a@b.org"
        );
        let c = confirm(br#"{"resetToken":"1234 5678","email":""}"#).unwrap();
        assert_eq!((c.code.as_str(), c.email.is_none()), ("1234 5678", true));
        let r = reset(br#"{"email":"a@b.org","password":"  spaces kept  ","resetSession":null}"#)
            .unwrap();
        assert_eq!((r.password.as_str(), r.session), ("  spaces kept  ", None));
        assert!(matches!(
            reset(br#"{"email":"a@b.org"}"#),
            Err(ApiError::MissingParameters)
        ));
        assert!(matches!(
            confirm(br#"{"resetToken":"1","email":"bad"}"#),
            Err(ApiError::BadRequest(_))
        ));
    }
}
