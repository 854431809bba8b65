//! The `resetgate` binary: see `resetgate --help`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    resetgate::cli::main()
}
