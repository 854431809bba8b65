//! `#[serde(with = "duration")]`: humantime strings ("10m", "1h 30m") or bare seconds.
//!
//! Bare integers are accepted because figment's `Env` turns `RESETGATE_X=30` into a number.

use std::time::Duration;

use serde::{de, Deserializer, Serializer};

pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*value).to_string())
}

/// No setting needs more than a year; a bound keeps `now + duration` from overflowing.
const LONGEST: Duration = Duration::from_secs(366 * 24 * 3600);

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = d.deserialize_any(super::quantity::TextOrNumber {
        expecting: "a duration such as \"10m\" or \"1h 30m\", or a whole number of seconds",
        text: |v| {
            humantime::parse_duration(v.trim()).map_err(|e| format!("invalid duration {v:?}: {e}"))
        },
        number: Duration::from_secs,
        negative: "a duration cannot be negative",
    })?;
    if value > LONGEST {
        return Err(de::Error::custom("a duration may be at most 366 days"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
    }

    #[test]
    fn strings_and_seconds() {
        let t: T = serde_json::from_str(r#"{"d":"1h 30m"}"#).unwrap();
        assert_eq!(t.d, Duration::from_secs(5400));
        let t: T = serde_json::from_str(r#"{"d":30}"#).unwrap();
        assert_eq!(t.d, Duration::from_secs(30));
        assert!(serde_json::from_str::<T>(r#"{"d":"soon"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"d":-1}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"d":"300000000000y"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"d":"367days"}"#).is_err());
    }
}
