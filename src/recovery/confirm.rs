//! Step 2: a code is exchanged for a short window in which the password may be set.

use std::net::IpAddr;
use std::time::SystemTime;

use crate::config::Recovery;
use crate::crypto::{random_token, CodeKey};
use crate::store::confirm::Confirmed;
use crate::store::resets::Confirmation;
use crate::store::{unix_ms, Db, Result};

#[derive(Debug, PartialEq, Eq)]
pub enum Confirm {
    /// The code was used up. `session` (≥128 bits, stored only as a MAC) binds step 3 to
    /// this confirmation.
    Confirmed { email: String, session: String },
    /// No live code matches.
    Invalid,
    /// The account has reached `recovery.max_account_failures`; nothing was checked.
    Locked,
}

/// Codes are shown in groups ("1234 5678 9012"): spaces and dashes are not part of them.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// Consumes the code. `claimed` is the request's optional `email`, normalized. A code-only
/// guess that matches no code is answered after one read; the rest runs on a blocking thread.
pub async fn confirm(
    db: &Db,
    key: &CodeKey,
    config: &Recovery,
    code: &str,
    claimed: Option<&str>,
    client: IpAddr,
    now: SystemTime,
) -> Result<Confirm> {
    let mac = key.mac(&normalize_code(code));
    // The common failure, a code-only guess that matches no code, is answered after one
    // read: no session token (a system call) and its MAC, no store transaction.
    if claimed.is_none() && db.code_owner(&mac)?.is_none() {
        return Ok(Confirm::Invalid);
    }
    let session = random_token();
    let confirmation = Confirmation {
        session_mac: key.mac(&session).to_vec(),
        client: client.to_canonical().to_string(),
        until_ms: unix_ms(now + config.confirm_window),
        session_only: false,
    };
    let (lockout, decoy) = (super::lockout(config), config.hide_unknown_accounts);
    let claimed = claimed.map(str::to_string);
    let found = db
        .blocking(move |db| {
            let claimed = claimed.as_deref();
            db.confirm_code(&mac, claimed, unix_ms(now), lockout, &confirmation, decoy)
        })
        .await?;
    Ok(match found {
        Confirmed::Yes { email, .. } => Confirm::Confirmed { email, session },
        Confirmed::No => Confirm::Invalid,
        Confirmed::Locked => Confirm::Locked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_lose_their_grouping() {
        assert_eq!(normalize_code(" 1234 5678-9012\t"), "123456789012");
    }
}
