//! Steps 2 and 3 in the store: consuming a code, and setting the password.
//!
//! Each is one transaction, so two concurrent confirmations of one code give exactly one
//! success, and a confirmation is used up by exactly one password change.

use sled::transaction::ConflictableTransactionError as Abortable;
use sled::Transactional;

use super::outbox::Queued;
use super::resets::{
    parse, read_reset, retire_code, settle, write_reset, Abort, Confirmation, Lockout, Reset,
    DECOY, MAX_REFUSED_CLIENTS,
};
use super::users::User;
use super::{encode, id_key, Db, Result};

/// What a confirmation attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The code was live and is now used up; the account may set a password.
    Yes { key: String, email: String },
    /// No live code matches (unknown, expired, used, replaced, or another account's).
    No,
    /// The account has too many consecutive failures; nothing was checked.
    Locked,
}

/// Why a password was not set.
#[derive(Debug, PartialEq, Eq)]
pub enum NotReset {
    NoAccount,
    /// No live confirmation, or it belongs to another session or client.
    NoConfirmation,
}

impl Db {
    /// Consumes the code whose MAC is `mac`. With `claimed` (the optional `email` of the
    /// request, normalized) the code must belong to that account, a failure counts against
    /// it, and an account with `lockout.max_failures` consecutive failures is locked on this
    /// path.
    /// (The code-only path is bounded by the global budget instead, so the lock does not
    /// stop the owner's own documented confirmation.) `confirmation` is stored on success.
    /// With `decoy`, a failure naming an unknown address is counted on the decoy record,
    /// so that it costs what one naming a known account does.
    pub fn confirm_code(
        &self,
        mac: &[u8; 32],
        claimed: Option<&str>,
        now_ms: u64,
        lockout: Lockout,
        confirmation: &Confirmation,
        decoy: bool,
    ) -> Result<Confirmed> {
        let _gate = self.writing();
        let i = &self.inner;
        let trees = (&i.users, &i.resets, &i.codes, &i.outbox);
        let outcome = trees.transaction(|(users, resets, codes, outbox)| {
            let owner = codes.get(mac)?;
            if let Some(claimed) = claimed {
                let claimed = claimed.as_bytes();
                let reset = read_reset::<()>(resets, claimed)?;
                if reset.failures_at(now_ms, lockout) >= lockout.max_failures
                    && users.get(claimed)?.is_some()
                {
                    return Ok(Confirmed::Locked);
                }
                if owner.as_deref() != Some(claimed) || !reset.live_code(mac, now_ms) {
                    let counted = match users.get(claimed)? {
                        Some(_) => Some((claimed, reset)),
                        // One shared record, not one per address as for issued codes:
                        // failure counts are kept for days, and unknown addresses are
                        // the attacker's to choose. (Confirmations are transactions, whose
                        // global lock dwarfs the difference between the two.)
                        None if decoy => {
                            Some((DECOY.as_bytes(), read_reset(resets, DECOY.as_bytes())?))
                        }
                        None => None,
                    };
                    if let Some((key, mut reset)) = counted {
                        reset.fail(now_ms, lockout);
                        write_reset(resets, key, &reset)?;
                    }
                    return Ok(Confirmed::No);
                }
            }
            let Some(owner) = owner else {
                return Ok(Confirmed::No);
            };
            let mut reset: Reset = read_reset(resets, &owner)?;
            if !reset.live_code(mac, now_ms) {
                return Ok(Confirmed::No);
            }
            let Some(user) = users.get(&owner)? else {
                return Ok(Confirmed::No);
            };
            let user: User = parse(&user)?;
            retire_code(codes, outbox, &owner, &reset)?;
            // A password-reset refused from this client while the code was live: a poller
            // at the confirming address, so the fallback is not offered to it.
            let code = reset.code.take();
            let polled = code.is_some_and(|c| c.refused_clients.contains(&confirmation.client));
            reset.clear_failures();
            reset.confirmation = Some(Confirmation {
                session_only: polled || confirmation.session_only,
                ..confirmation.clone()
            });
            write_reset(resets, &owner, &reset)?;
            Ok(Confirmed::Yes {
                key: String::from_utf8_lossy(&owner).into_owned(),
                email: user.email,
            })
        });
        Ok(settle(outcome)?.unwrap_or(Confirmed::No))
    }

    /// The live confirmation of an account, for a cheap check before hashing a password.
    pub fn confirmation(&self, key: &str, now_ms: u64) -> Result<Option<Confirmation>> {
        Ok(self
            .reset(key)?
            .and_then(|r| r.live_confirmation(now_ms).cloned()))
    }

    /// Sets the password if `accept` approves the account's live confirmation, uses the
    /// confirmation up, kills any outstanding code and queues `message`, atomically.
    pub fn complete_reset(
        &self,
        key: &str,
        now_ms: u64,
        accept: impl Fn(&Confirmation) -> bool,
        password_hash: &str,
        message: impl Fn(&User) -> Queued,
    ) -> Result<std::result::Result<(), NotReset>> {
        let _gate = self.writing();
        let i = &self.inner;
        let id = i.db.generate_id()?;
        let k = key.as_bytes();
        let refuse = |r| Err(Abortable::Abort(Abort::Refused(r)));
        let outcome = (&i.users, &i.resets, &i.codes, &i.outbox).transaction(
            |(users, resets, codes, outbox)| {
                let Some(user) = users.get(k)? else {
                    return refuse(NotReset::NoAccount);
                };
                let mut user: User = parse(&user)?;
                let mut reset: Reset = read_reset(resets, k)?;
                if !reset.live_confirmation(now_ms).is_some_and(&accept) {
                    return refuse(NotReset::NoConfirmation);
                }
                user.password_hash = Some(password_hash.to_string());
                user.updated_ms = now_ms;
                users.insert(k, encode(&user))?;
                retire_code(codes, outbox, k, &reset)?;
                reset.code = None;
                reset.confirmation = None;
                write_reset(resets, k, &reset)?;
                outbox.insert(&id_key(id), encode(&message(&user)))?;
                Ok(())
            },
        );
        settle(outcome)
    }

    /// A password-reset for record `key` (an account, or a decoy) was refused for want of
    /// a usable confirmation, from `client`: its live code remembers the client (see
    /// [`super::resets::LiveCode::refused_clients`]). Returns whether anything was written:
    /// nothing is when no code is live or the client is already remembered.
    pub fn note_refused_reset(&self, key: &str, client: &str, now_ms: u64) -> Result<bool> {
        let _gate = self.writing();
        let k = key.as_bytes();
        let _account = self.account(k);
        let noted = |reset: &Reset| {
            reset.code.as_ref().is_none_or(|c| {
                c.expires_ms <= now_ms
                    || c.refused_clients.len() >= MAX_REFUSED_CLIENTS
                    || c.refused_clients.iter().any(|r| r == client)
            })
        };
        if self.reset_of(k)?.is_none_or(|r| noted(&r)) {
            return Ok(false);
        }
        self.swap_reset(k, |reset| {
            let fresh = !noted(reset);
            if let Some(code) = reset.code.as_mut().filter(|_| fresh) {
                code.refused_clients.push(client.to_string());
            }
            fresh
        })
    }

    /// Clears an account's failed-confirmation count; false if it had none.
    pub fn unlock(&self, key: &str) -> Result<bool> {
        let _gate = self.writing();
        let resets = &self.inner.resets;
        let outcome = resets.transaction(|resets| {
            let mut reset = read_reset::<()>(resets, key.as_bytes())?;
            if reset.failures == 0 {
                return Ok(false);
            }
            reset.clear_failures();
            write_reset(resets, key.as_bytes(), &reset)?;
            Ok(true)
        });
        Ok(settle(outcome)?.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::super::resets::tests::{code, db_with, message};
    use super::*;

    fn lock(max_failures: u32) -> Lockout {
        Lockout {
            max_failures,
            forget_after_ms: 1_000_000,
        }
    }

    fn conf(client: &str, until_ms: u64) -> Confirmation {
        Confirmation {
            session_mac: vec![9; 32],
            client: client.into(),
            until_ms,
            session_only: false,
        }
    }

    #[test]
    fn a_code_confirms_once() {
        let (_d, db) = db_with(&["a@example.com"]);
        db.issue_code("a@example.com", code(1, 0, 1_000), message)
            .unwrap()
            .unwrap();
        let c = conf("127.0.0.1", 2_000);
        let first = db
            .confirm_code(&[1; 32], None, 10, lock(100), &c, false)
            .unwrap();
        assert_eq!(
            first,
            Confirmed::Yes {
                key: "a@example.com".into(),
                email: "a@example.com".into()
            }
        );
        assert_eq!(
            db.confirm_code(&[1; 32], None, 11, lock(100), &c, false)
                .unwrap(),
            Confirmed::No
        );
        assert_eq!(db.confirmation("a@example.com", 12).unwrap(), Some(c));
    }

    #[test]
    fn expired_codes_and_other_accounts_fail_and_count() {
        let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
        db.issue_code("a@example.com", code(1, 0, 1_000), message)
            .unwrap()
            .unwrap();
        let c = conf("127.0.0.1", 5_000);
        assert_eq!(
            db.confirm_code(&[1; 32], None, 1_000, lock(100), &c, false)
                .unwrap(),
            Confirmed::No,
            "expired"
        );
        db.issue_code("a@example.com", code(2, 1_000, 3_000), message)
            .unwrap()
            .unwrap();
        let wrong = db
            .confirm_code(&[2; 32], Some("b@example.com"), 1_001, lock(2), &c, false)
            .unwrap();
        assert_eq!(wrong, Confirmed::No, "a's code named as b's");
        assert_eq!(db.reset("b@example.com").unwrap().unwrap().failures, 1);
        db.confirm_code(&[7; 32], Some("b@example.com"), 1_002, lock(2), &c, false)
            .unwrap();
        db.issue_code("b@example.com", code(3, 1_003, 3_000), message)
            .unwrap()
            .unwrap();
        let locked = db
            .confirm_code(&[3; 32], Some("b@example.com"), 1_004, lock(2), &c, false)
            .unwrap();
        assert_eq!(locked, Confirmed::Locked, "failures survive a new code");
        let much_later = 1_002 + lock(2).forget_after_ms;
        let lifted = db.confirm_code(
            &[9; 32],
            Some("b@example.com"),
            much_later,
            lock(2),
            &c,
            false,
        );
        assert_eq!(lifted.unwrap(), Confirmed::No, "checked, not locked");
        assert_eq!(
            db.reset("b@example.com").unwrap().unwrap().failures,
            1,
            "a new count"
        );
        assert!(db.unlock("b@example.com").unwrap());
        let named = db.confirm_code(&[3; 32], Some("b@example.com"), 1_005, lock(2), &c, false);
        assert!(matches!(named.unwrap(), Confirmed::Yes { .. }), "unlocked");
        // Unknown accounts get no record, unless as the decoy's failures.
        let nobody = |decoy| {
            let named = Some("nobody@example.com");
            db.confirm_code(&[8; 32], named, 1_006, lock(2), &c, decoy)
                .unwrap()
        };
        nobody(false);
        assert_eq!(db.reset("nobody@example.com").unwrap(), None);
        nobody(true);
        assert_eq!(db.reset(DECOY).unwrap().unwrap().failures, 1);
    }

    #[test]
    fn the_lock_applies_to_the_path_that_names_the_account() {
        let (_d, db) = db_with(&["b@example.com"]);
        let c = conf("127.0.0.1", 5_000);
        db.issue_code("b@example.com", code(3, 0, 3_000), message)
            .unwrap()
            .unwrap();
        for now in [1, 2] {
            db.confirm_code(&[7; 32], Some("b@example.com"), now, lock(2), &c, false)
                .unwrap();
        }
        let named = db
            .confirm_code(&[3; 32], Some("b@example.com"), 3, lock(2), &c, false)
            .unwrap();
        assert_eq!(named, Confirmed::Locked);
        let code_only = db
            .confirm_code(&[3; 32], None, 4, lock(2), &c, false)
            .unwrap();
        assert!(
            matches!(code_only, Confirmed::Yes { .. }),
            "the owner's documented request works"
        );
    }

    #[test]
    fn password_needs_a_live_accepted_confirmation_once() {
        let (_d, db) = db_with(&["a@example.com"]);
        let set = |now| {
            db.complete_reset(
                "a@example.com",
                now,
                |c| c.client == "1.2.3.4",
                "$h",
                message,
            )
        };
        assert_eq!(
            set(0).unwrap(),
            Err(NotReset::NoConfirmation),
            "never confirmed"
        );
        db.issue_code("a@example.com", code(1, 0, 1_000), message)
            .unwrap()
            .unwrap();
        db.confirm_code(&[1; 32], None, 1, lock(100), &conf("5.6.7.8", 500), false)
            .unwrap();
        assert_eq!(
            set(2).unwrap(),
            Err(NotReset::NoConfirmation),
            "other client"
        );
        db.issue_code("a@example.com", code(2, 3, 1_000), message)
            .unwrap()
            .unwrap();
        db.confirm_code(&[2; 32], None, 4, lock(100), &conf("1.2.3.4", 500), false)
            .unwrap();
        assert_eq!(
            set(500).unwrap(),
            Err(NotReset::NoConfirmation),
            "window over"
        );
        db.issue_code("a@example.com", code(3, 501, 1_000), message)
            .unwrap()
            .unwrap();
        db.confirm_code(&[3; 32], None, 502, lock(100), &conf("1.2.3.4", 900), false)
            .unwrap();
        db.issue_code("a@example.com", code(4, 503, 1_000), message)
            .unwrap()
            .unwrap();
        assert_eq!(set(504).unwrap(), Ok(()));
        assert_eq!(
            db.user("a@example.com")
                .unwrap()
                .unwrap()
                .password_hash
                .as_deref(),
            Some("$h")
        );
        assert_eq!(
            db.code_owner(&[4; 32]).unwrap(),
            None,
            "outstanding codes die"
        );
        assert_eq!(set(505).unwrap(), Err(NotReset::NoConfirmation), "used up");
        let missing = db
            .complete_reset("x@example.com", 1, |_| true, "$h", message)
            .unwrap();
        assert_eq!(missing, Err(NotReset::NoAccount));
    }

    #[test]
    fn a_refused_reset_spoils_the_fallback_only_for_its_own_client() {
        let (_d, db) = db_with(&["a@example.com"]);
        let noted = |client, now| db.note_refused_reset("a@example.com", client, now).unwrap();
        assert!(!noted("1.2.3.4", 0), "no live code: nothing to note");
        db.issue_code("a@example.com", code(1, 0, 1_000), message)
            .unwrap()
            .unwrap();
        assert!(noted("1.2.3.4", 1));
        assert!(!noted("1.2.3.4", 2), "noted once");
        assert!(noted("9.9.9.9", 3), "another client");
        db.confirm_code(&[1; 32], None, 4, lock(100), &conf("1.2.3.4", 900), false)
            .unwrap();
        let c = db.confirmation("a@example.com", 5).unwrap().unwrap();
        assert!(c.session_only, "a poller at the confirming address");
        // A stranger elsewhere does not touch the owner's fallback.
        db.issue_code("a@example.com", code(2, 6, 1_000), message)
            .unwrap()
            .unwrap();
        assert!(noted("9.9.9.9", 7));
        db.confirm_code(&[2; 32], None, 8, lock(100), &conf("1.2.3.4", 900), false)
            .unwrap();
        assert!(
            !db.confirmation("a@example.com", 9)
                .unwrap()
                .unwrap()
                .session_only
        );
        assert!(!noted("1.2.3.4", 10), "no live code after the confirmation");
    }
}
