//! `#[serde(with = "size")]`: byte sizes such as "64MB", "512 KiB" or a bare number of bytes.
//!
//! Decimal units (kB, MB, GB) are powers of 1000, binary ones (KiB, MiB, GiB) of 1024, as
//! `df -H` and `df -h` show them. Bare integers are accepted because figment's `Env` turns
//! `RESETGATE_STORAGE__MIN_FREE=1000000` into a number.

use serde::{Deserializer, Serializer};

const UNITS: [(&str, u64); 8] = [
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("", 1),
];

/// The largest decimal unit that divides the size exactly: 64000000 is "64MB".
pub fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    let shown = [("GB", 1_000_000_000), ("MB", 1_000_000), ("kB", 1_000)]
        .iter()
        .find(|(_, unit)| *value > 0 && value % unit == 0)
        .map_or_else(
            || format!("{value}B"),
            |(name, unit)| format!("{}{name}", value / unit),
        );
    s.serialize_str(&shown)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(super::quantity::TextOrNumber {
        expecting: "a size such as \"64MB\" or \"512KiB\", or a number of bytes",
        text: parse,
        number: |n| n,
        negative: "a size cannot be negative",
    })
}

/// Parses "64MB", "64 MiB", "1000": the number of bytes.
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as \"64MB\""))?;
    let unit = unit.trim().to_ascii_lowercase();
    let factor = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, f)| *f)
        .ok_or_else(|| format!("{text:?}: unknown unit (B, kB, MB, GB, KiB, MiB, GiB)"))?;
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("64MB"), Ok(64_000_000));
        assert_eq!(parse(" 64 mb "), Ok(64_000_000));
        assert_eq!(parse("2KiB"), Ok(2048));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("17"), Ok(17));
        assert!(parse("64 parsecs").is_err());
        assert!(parse("MB").is_err());
        assert!(parse("99999999999999GB").is_err());
    }

    #[test]
    fn shown_in_the_largest_exact_unit() {
        let show = |n: u64| serialize(&n, serde_json::value::Serializer).unwrap();
        assert_eq!(show(64_000_000), "64MB");
        assert_eq!(show(1_500), "1500B");
        assert_eq!(show(0), "0B");
        assert_eq!(parse(show(3_000).as_str().unwrap()), Ok(3_000));
    }
}
