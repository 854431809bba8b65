//! Records the git revision the binary is built from, for `resetgate --version`:
//! `BUILD_GIT_REVISION` from the environment if set (a build outside a checkout), else
//! `git rev-parse --short=12 HEAD`, else "unknown".

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BUILD_GIT_REVISION");
    let rev = std::env::var("BUILD_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(git_rev)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BUILD_GIT_REVISION={rev}");
}

fn git_rev() -> Option<String> {
    let git = Path::new(".git");
    if git.is_dir() {
        // A new commit moves HEAD's branch (or HEAD itself, detached).
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/packed-refs");
        if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
            if let Some(branch) = head.trim().strip_prefix("ref: ") {
                println!("cargo:rerun-if-changed=.git/{branch}");
            }
        }
    }
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !rev.is_empty()).then_some(rev)
}
