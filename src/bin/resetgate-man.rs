//! `resetgate-man DIR`: writes resetgate's manual pages into DIR, `resetgate.1` and one
//! page per command (`resetgate-users-add.1`, …), from the clap definitions `--help` shows.
//! A packaging tool (debian/build-package), built with `--features man-pages`; the
//! service's own binary does without clap_mangen.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: resetgate-man DIR");
        return ExitCode::from(2);
    };
    let dir = std::path::PathBuf::from(dir);
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| clap_mangen::generate_to(resetgate::cli::command(), &dir));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resetgate-man: writing into {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
