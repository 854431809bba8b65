//! Settings written as text in their unit ("10m", "64MB") or as a bare whole number:
//! figment's `Env` turns `RESETGATE_X=30` into a number, so both must read. One serde
//! visitor serves durations (`duration`) and sizes (`size`).

use serde::de;

/// Reads text with `text`, a whole number with `number`; refuses a negative one.
pub(super) struct TextOrNumber<T> {
    /// What is expected, for serde's message.
    pub expecting: &'static str,
    pub text: fn(&str) -> Result<T, String>,
    pub number: fn(u64) -> T,
    /// The message for a negative number.
    pub negative: &'static str,
}

impl<T> de::Visitor<'_> for TextOrNumber<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.text)(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.number)(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v)
            .map(self.number)
            .map_err(|_| E::custom(self.negative))
    }
}
