//! Whether forgot-password may issue a code at all right now: a rule over two facts the
//! caller reads (free space, and how long the oldest code mail has waited for delivery).

use std::time::Duration;

/// Why no code may be issued now, and when to ask again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// The refusal's kind in `resetgate_refusals_total`.
    pub kind: &'static str,
    pub retry_after_secs: u64,
}

/// Refused when free space is below `storage.min_free` (the write would fail, and sled
/// then refuses every later one; confirmations and password changes, which write little,
/// go on), or when the oldest code mail has waited longer than half a code's lifetime
/// (`code_ttl`): a code issued now would wait behind it and likely expire before its mail
/// leaves, so refusing is better than acknowledging a mail that arrives too late.
pub fn forgot(
    low_on_space: bool,
    oldest_mail_waited: Option<Duration>,
    code_ttl: Duration,
) -> Result<(), Busy> {
    if low_on_space {
        return Err(Busy {
            kind: "min_free",
            retry_after_secs: 60,
        });
    }
    if oldest_mail_waited.is_some_and(|waited| waited > code_ttl / 2) {
        let retry_after_secs = (code_ttl / 2).as_secs().clamp(1, 60);
        return Err(Busy {
            kind: "outbox_behind",
            retry_after_secs,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disks_and_late_mail_refuse_new_codes() {
        let ttl = Duration::from_secs(600);
        assert_eq!(forgot(false, None, ttl), Ok(()));
        assert_eq!(forgot(false, Some(Duration::from_secs(300)), ttl), Ok(()));
        assert_eq!(forgot(true, None, ttl).unwrap_err().kind, "min_free");
        let late = forgot(false, Some(Duration::from_secs(301)), ttl).unwrap_err();
        assert_eq!((late.kind, late.retry_after_secs), ("outbox_behind", 60));
        let short = forgot(false, Some(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(short.unwrap_err().retry_after_secs, 1);
    }
}
