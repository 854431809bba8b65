//! `resetgate check-mail`: the mail-authentication checks ([`crate::mail_check`]) as a
//! table, one line per check, and the record to publish under each that misses one; or
//! `--print-dkim-record`: the DKIM key's TXT record alone, to paste into a zone.

use super::Failure;
use crate::config::Config;
use crate::mail_check::{self, Record, Report};

pub fn run(config: Config, print_dkim_record: bool) -> Result<(), Failure> {
    if print_dkim_record {
        return print_record(&config);
    }
    let report = super::runtime()?.block_on(mail_check::run(&config))?;
    let code = report.exit_code();
    if super::json_output() {
        super::print_json(&serde_json::json!({
            "checks": report.checks,
            "exit_code": code,
        }));
    } else {
        print!("{}", table(&report));
    }
    match code {
        0 => Ok(()),
        code => Err(Failure::reported(code)),
    }
}

/// One line per check (`dkim  pass  the reason`), and the record to publish indented below.
fn table(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.checks {
        out.push_str(&format!(
            "{:<6} {:<8} {}\n",
            c.check,
            c.status.name(),
            c.reason
        ));
        if let Some(record) = &c.publish {
            out.push_str(&format!("{:16}publish: {}\n", "", record.zone_line()));
        }
    }
    out
}

fn print_record(config: &Config) -> Result<(), Failure> {
    let signer = crate::outbox::dkim::Signer::from_config(&config.mail.dkim)?.ok_or_else(|| {
        Failure::config(
            "mail.dkim is not set: set domain, selector and key_file (docs/mail-auth.md) first",
        )
    })?;
    let record = Record::txt(signer.record_name(), signer.record());
    super::say(record.zone_line(), &record);
    Ok(())
}
