//! `resetgate completions SHELL`: tab completion made from the clap definitions that
//! `--help` shows, so the two cannot drift apart.

use super::Failure;

/// The shells there are completions for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn completions(shell: Shell) -> Result<(), Failure> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut command = super::command();
    clap_complete::generate(shell, &mut command, "resetgate", &mut std::io::stdout());
    Ok(())
}
