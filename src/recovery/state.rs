//! The rules that read and change an account's reset record: is a code live, is a
//! confirmation usable, how failed confirmations count and are forgotten, what expires.
//! Plain functions of the record and `now`.

use crate::store::records::{Confirmation, LiveCode, Reset};

/// How failed confirmations that name an account lock it (`recovery.max_account_failures`
/// and `recovery.failures_forgotten_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Consecutive failures at which confirmations naming the account are refused.
    pub max_failures: u32,
    /// Failures are forgotten this long after the last one, which lifts the lock.
    pub forget_after_ms: u64,
}

/// The record's code, if it is `mac` and still live.
pub fn live_code<'a>(reset: &'a Reset, mac: &[u8], now_ms: u64) -> Option<&'a LiveCode> {
    reset
        .code
        .as_ref()
        .filter(|c| c.mac == mac && c.expires_ms > now_ms)
}

/// The record's confirmation, while its window is open.
pub fn live_confirmation(reset: &Reset, now_ms: u64) -> Option<&Confirmation> {
    reset.confirmation.as_ref().filter(|c| c.until_ms > now_ms)
}

/// The consecutive failures that still count at `now_ms`.
pub fn failures_at(reset: &Reset, now_ms: u64, lockout: Lockout) -> u32 {
    if reset
        .last_failure_ms
        .saturating_add(lockout.forget_after_ms)
        <= now_ms
    {
        0
    } else {
        reset.failures
    }
}

/// Whether confirmations naming the account are refused at `now_ms`.
pub fn locked(reset: &Reset, now_ms: u64, lockout: Lockout) -> bool {
    failures_at(reset, now_ms, lockout) >= lockout.max_failures
}

/// Counts one more failed confirmation at `now_ms`.
pub fn fail(reset: &mut Reset, now_ms: u64, lockout: Lockout) {
    reset.failures = failures_at(reset, now_ms, lockout).saturating_add(1);
    reset.last_failure_ms = now_ms;
}

/// Forgets every failure (a success, or an operator's unlock).
pub fn clear_failures(reset: &mut Reset) {
    reset.failures = 0;
    reset.last_failure_ms = 0;
}

/// Drops what has expired or is forgotten; true if anything changed (for the sweeper).
pub fn expire(reset: &mut Reset, now_ms: u64, lockout: Lockout) -> bool {
    let before = reset.clone();
    reset.code = reset.code.take().filter(|c| c.expires_ms > now_ms);
    reset.confirmation = reset.confirmation.take().filter(|c| c.until_ms > now_ms);
    if reset.failures > 0 && failures_at(reset, now_ms, lockout) == 0 {
        clear_failures(reset);
    }
    *reset != before
}

/// How many refused clients a live code remembers: enough for the owner's network, and a
/// bound on the record's size whatever a poller does.
pub const MAX_REFUSED_CLIENTS: usize = 16;

/// A password-reset for the account was refused from `client` while its code is live: the
/// code remembers the client (see `reset::refused_reset`). False when there was nothing to
/// note (no live code, the client already noted, or the list full).
pub fn remember_refused(reset: &mut Reset, client: &str, now_ms: u64) -> bool {
    let Some(code) = reset.code.as_mut().filter(|c| c.expires_ms > now_ms) else {
        return false;
    };
    let known = code.refused_clients.iter().any(|c| c == client);
    if known || code.refused_clients.len() >= MAX_REFUSED_CLIENTS {
        return false;
    }
    code.refused_clients.push(client.to_string());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const LOCKOUT: Lockout = Lockout {
        max_failures: 2,
        forget_after_ms: 10_000,
    };

    fn code(mac: u8, expires_ms: u64) -> LiveCode {
        LiveCode {
            mac: vec![mac; 32],
            issued_ms: 0,
            expires_ms,
            outbox_id: None,
            refused_clients: Vec::new(),
        }
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_time() {
        let mut reset = Reset::default();
        fail(&mut reset, 1_000, LOCKOUT);
        fail(&mut reset, 2_000, LOCKOUT);
        assert_eq!(
            failures_at(&reset, 11_999, LOCKOUT),
            2,
            "counted from the last one"
        );
        assert!(locked(&reset, 11_999, LOCKOUT));
        assert_eq!(failures_at(&reset, 12_000, LOCKOUT), 0);
        assert!(!locked(&reset, 12_000, LOCKOUT), "the lock lifts by itself");
        fail(&mut reset, 12_500, LOCKOUT);
        assert_eq!(reset.failures, 1, "a late failure starts a new count");
        assert!(!expire(&mut reset, 22_499, LOCKOUT));
        assert!(expire(&mut reset, 22_500, LOCKOUT));
        assert!(reset.is_empty(), "nothing left to keep");
    }

    #[test]
    fn codes_and_confirmations_live_until_their_time() {
        let mut reset = Reset {
            code: Some(code(1, 100)),
            ..Reset::default()
        };
        assert!(live_code(&reset, &[1; 32], 99).is_some());
        assert!(live_code(&reset, &[2; 32], 99).is_none(), "another code");
        assert!(live_code(&reset, &[1; 32], 100).is_none(), "expired");
        reset.confirmation = Some(Confirmation {
            session_mac: vec![],
            client: "c".into(),
            until_ms: 50,
            session_only: false,
        });
        assert!(live_confirmation(&reset, 49).is_some());
        assert!(expire(&mut reset, 60, LOCKOUT));
        assert!(reset.confirmation.is_none() && reset.code.is_some());
    }

    #[test]
    fn a_live_code_remembers_each_refused_client_once_and_at_most_sixteen() {
        let mut reset = Reset::default();
        assert!(!remember_refused(&mut reset, "a", 0), "no code");
        reset.code = Some(code(1, 100));
        assert!(remember_refused(&mut reset, "a", 1));
        assert!(!remember_refused(&mut reset, "a", 2), "once");
        for n in 0..20 {
            remember_refused(&mut reset, &format!("c{n}"), 3);
        }
        assert_eq!(
            reset.code.as_ref().unwrap().refused_clients.len(),
            MAX_REFUSED_CLIENTS
        );
        assert!(!remember_refused(&mut reset, "late", 100), "expired");
    }
}
