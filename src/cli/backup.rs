//! `resetgate backup FILE` (while the service runs, through its admin API) and
//! `resetgate restore FILE` (into an empty data directory, with the service stopped).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::target::Target;
use super::Failure;
use crate::config::Config;

pub fn backup(config: Config, file: &Path) -> Result<(), Failure> {
    super::runtime()?.block_on(async move {
        let copy = Target::connect(config).await?.backup().await??;
        write_private(file, &copy)
            .map_err(|e| Failure::runtime(format!("{}: {e}", file.display())))?;
        let records = copy
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            .saturating_sub(1);
        super::say(
            format!("backed up {records} records to {}", file.display()),
            serde_json::json!({ "records": records, "file": file }),
        );
        Ok(())
    })
}

/// Writes `bytes` to `file` readable by this user only, whatever was there before: a fresh
/// file (`O_EXCL`, mode 0600) next to it, synced, then renamed over it. The copy holds
/// password hashes and live codes; an existing file's wider mode must not carry over.
fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = file.file_name().ok_or(std::io::ErrorKind::InvalidInput)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = file.with_file_name(tmp_name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

pub fn restore(config: Config, file: &Path) -> Result<(), Failure> {
    let input = std::fs::File::open(file)
        .map_err(|e| Failure::runtime(format!("{}: {e}", file.display())))?;
    super::runtime()?.block_on(async move {
        let Target::Direct(admin, _) = Target::connect(config).await? else {
            return Err(Failure::refused(
                "the service is running: stop it, then restore into an empty data directory",
            ));
        };
        let records = admin
            .restore(std::io::BufReader::new(input))
            .await
            .map_err(|e| Failure::refused(e.to_string()))?;
        super::say(
            format!("restored {records} records"),
            serde_json::json!({ "records": records }),
        );
        Ok(())
    })
}
