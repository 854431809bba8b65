//! Faster stand-ins for tracing-subscriber's text field formatter and timestamp, with the
//! same output.
//!
//! Every request writes one log line, and formatting it through `DefaultFields` (each field
//! through `write!` and `Debug`) and the default RFC 3339 timer was about 8.7 % of the
//! service's CPU in scenario 2 of the load benchmark. Here the common field values (plain
//! strings, integers, booleans) are written directly, and the date part of the timestamp is
//! computed without the formatting machinery. Everything else (the message, `Display` and
//! `Debug` values, errors, strings that need escaping, coloured output) is handed to
//! tracing-subscriber's own `DefaultVisitor`, so the two cannot drift apart there. The
//! tests check that both give the same lines.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::FormatFields;

/// The text format's fields: `DefaultFields`' output, faster.
pub struct Fields;

impl<'writer> FormatFields<'writer> for Fields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    /// Whether `DefaultVisitor` would write this field as plain `name=value`.
    fn plain(&self, field: &Field) -> bool {
        let name = field.name();
        self.result.is_ok()
            && !self.writer.has_ansi_escapes()
            && name != "message"
            && !name.starts_with("r#")
            && !name.starts_with("log.")
    }

    /// Writes `name=` (after a space unless it is the first field) and then `value`.
    fn write(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        let writer = &mut self.writer;
        let first = std::mem::replace(&mut self.is_empty, false);
        self.result = (|| {
            if !first {
                writer.write_char(' ')?;
            }
            writer.write_str(field.name())?;
            writer.write_char('=')?;
            value(writer)
        })();
    }

    /// Lets tracing-subscriber's own visitor write the field.
    fn delegate(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut default = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut default);
        self.result = default.finish();
        // It skips `log.*` fields (the `log` crate's metadata) without writing anything.
        if !field.name().starts_with("log.") {
            self.is_empty = false;
        }
    }

    fn integer(&mut self, field: &Field, negative: bool, magnitude: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = magnitude;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let digits = std::str::from_utf8(&digits[at..]).unwrap_or_default();
        self.write(field, |w| {
            if negative {
                w.write_char('-')?;
            }
            w.write_str(digits)
        });
    }
}

/// Bytes that `str`'s `Debug` writes unchanged.
fn needs_no_escape(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.plain(field) && needs_no_escape(value) {
            self.write(field, |w| {
                w.write_char('"')?;
                w.write_str(value)?;
                w.write_char('"')
            });
        } else {
            self.delegate(field, |d| d.record_str(field, value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.plain(field) {
            self.integer(field, false, value);
        } else {
            self.delegate(field, |d| d.record_u64(field, value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.plain(field) {
            self.integer(field, value < 0, value.unsigned_abs());
        } else {
            self.delegate(field, |d| d.record_i64(field, value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.plain(field) {
            self.write(field, |w| w.write_str(if value { "true" } else { "false" }));
        } else {
            self.delegate(field, |d| d.record_bool(field, value));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.delegate(field, |d| d.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.delegate(field, |d| d.record_debug(field, value));
    }
}

/// The default timer's format (RFC 3339, UTC, microseconds: `2026-11-29T09:19:28.123456Z`).
pub struct Time;

impl FormatTime for Time {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) if since.as_secs() < YEAR_10000 => {
                w.write_str(rfc3339(since.as_secs(), since.subsec_micros()).as_str())
            }
            // Before 1970 or after 9999: the default timer knows how to write those.
            _ => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

/// 10000-01-01T00:00:00Z in seconds since the epoch.
const YEAR_10000: u64 = 253_402_300_800;

/// A small fixed-size string, so that the timestamp needs no allocation.
struct Stamp([u8; 27]);

impl Stamp {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

fn rfc3339(secs: u64, micros: u32) -> Stamp {
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    put(20, 6, u64::from(micros));
    Stamp(out)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Failed;
    impl fmt::Display for Failed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it failed")
        }
    }
    impl std::error::Error for Failed {}

    /// The same events through `DefaultFields` and through [`Fields`], without timestamps.
    fn both(ansi: bool) -> (String, String) {
        let emit = || {
            let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
            tracing::info!(
                request_id = "00ff",
                client = %ip,
                method = "POST",
                status = 404u16,
                micros = 123_456u64,
                offset = -42i64,
                flag = true,
                email = "a***@example.com",
                "request"
            );
            tracing::warn!(
                quoted = "say \"hi\"\\",
                control = "line\nbreak\u{1b}[31m",
                unicode = "grüße",
                r#type = "raw",
                debug = ?Some(3),
                empty = "",
                min = i64::MIN,
                max = u64::MAX,
                zero = 0u64,
                "message with {} and \u{1b}[0m", "args"
            );
            let error: &(dyn std::error::Error + 'static) = &Failed;
            tracing::error!(error, "no fields before the error? {}", 1);
            tracing::info!(only = "fields");
            tracing::info!("");
        };
        let run = |fast: bool| {
            let lines = Lines::default();
            let builder = tracing_subscriber::fmt()
                .with_writer(lines.clone())
                .with_ansi(ansi)
                .with_target(false)
                .without_time();
            if fast {
                tracing::subscriber::with_default(builder.fmt_fields(Fields).finish(), emit);
            } else {
                tracing::subscriber::with_default(builder.finish(), emit);
            }
            let bytes = lines.0.lock().unwrap().clone();
            String::from_utf8(bytes).unwrap()
        };
        (run(false), run(true))
    }

    #[test]
    fn fields_are_written_as_the_default_formatter_writes_them() {
        let (default, fast) = both(false);
        assert_eq!(fast, default);
        assert!(
            fast.contains(r#"request_id="00ff" client=127.0.0.1 method="POST" status=404"#),
            "{fast}"
        );
        assert_eq!(fast.lines().count(), 5);
    }

    #[test]
    fn coloured_fields_too() {
        let (default, fast) = both(true);
        assert_eq!(fast, default);
    }

    #[test]
    fn timestamps_match_known_dates() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 7, "2000-02-29T00:00:00.000007Z"),
            (1_709_251_199, 999_999, "2024-02-29T23:59:59.999999Z"),
            (1_795_943_968, 123_456, "2026-11-29T09:19:28.123456Z"),
            (4_102_444_800, 0, "2100-01-01T00:00:00.000000Z"),
            (YEAR_10000 - 1, 0, "9999-12-31T23:59:59.000000Z"),
        ];
        for (secs, micros, want) in cases {
            assert_eq!(rfc3339(secs, micros).as_str(), want, "{secs}");
        }
    }

    #[test]
    fn timestamps_match_the_default_timer() {
        // Both read the clock; retry in the rare case that a second boundary fell between.
        let format = |timer: &dyn FormatTime| {
            let mut out = String::new();
            timer.format_time(&mut Writer::new(&mut out)).unwrap();
            out
        };
        for _ in 0..10 {
            let default = format(&tracing_subscriber::fmt::time::SystemTime);
            let fast = format(&Time);
            assert_eq!(fast.len(), default.len());
            if fast[..19] == default[..19] {
                return;
            }
        }
        panic!("the two timers disagreed ten times in a row");
    }
}
