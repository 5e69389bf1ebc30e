//! `portolan completions SHELL` and `portolan man`: generated from the clap definitions in
//! `cli.rs` (clap_complete, clap_mangen), so they never disagree with `--help`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::{Cli, OutputFile};
use crate::output::Outcome;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    ///
    /// bash: `source <(portolan completions bash)`, or save it as
    /// /usr/share/bash-completion/completions/portolan. zsh: save it as `_portolan` in a
    /// folder of `$fpath`. fish: save it as ~/.config/fish/completions/portolan.fish.
    #[arg(value_enum)]
    pub shell: Shell,
    #[command(flatten)]
    pub file: OutputFile,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write the pages of every subcommand (portolan.1, portolan-show.1, ...) into DIR
    /// instead of printing the top page.
    #[arg(long, value_name = "DIR", conflicts_with = "output")]
    pub dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub file: OutputFile,
}

pub fn run_completions(a: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "portolan", &mut buf);
    emit(&a.file, &buf)
}

pub fn run_man(a: &ManArgs) -> anyhow::Result<Outcome> {
    let cmd = Cli::command();
    if let Some(dir) = &a.dir {
        std::fs::create_dir_all(dir)?;
        clap_mangen::generate_to(cmd, dir)?;
        return Ok(Outcome::Ok);
    }
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    emit(&a.file, &buf)
}

fn emit(file: &OutputFile, bytes: &[u8]) -> anyhow::Result<Outcome> {
    crate::write::to_output(file.output.as_deref(), bytes)?;
    Ok(Outcome::Ok)
}
