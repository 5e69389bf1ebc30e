//! `portolan`: the command-line front end. Parses arguments, dispatches to one function per
//! subcommand (`cmd/*.rs`) and maps the outcome to an exit code a script can trust:
//! 0 ok, 1 findings, 2 bad input or usage.

mod cli;
mod cmd;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::output::{Outcome, EXIT_INPUT};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Catalog(c) => cmd::catalog::run(&cli.global, c),
        Command::Show(a) => cmd::show::run(&cli.global, a),
        Command::Doc(a) => cmd::doc::run(&cli.global, a),
        Command::Validate(a) => cmd::validate::run(&cli.global, a),
        Command::Compile(a) => cmd::compile::run(&cli.global, a),
        Command::Schema(a) => cmd::schema::run(a),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Ok(Outcome::BadInput) => ExitCode::from(EXIT_INPUT),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}
