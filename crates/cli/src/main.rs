//! `portolan`: the command-line front end. Parses arguments, dispatches to one function per
//! subcommand (`cmd/*.rs`) and maps the outcome to an exit code a script can trust:
//! 0 ok, 1 findings, 2 bad input or usage.

mod cli;
mod cmd;
mod output;
mod report;
mod table;
mod write;

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
        Command::Lab(a) => cmd::lab::run(&cli.global, a),
        Command::Apply(a) => cmd::apply::run(&cli.global, a),
        Command::ApplyRollback(a) => cmd::apply::rollback(a),
        Command::Enforce(a) => cmd::enforce::run(&cli.global, a),
        Command::Probe(a) => cmd::probe::run(&cli.global, a),
        Command::Responder(a) => cmd::responder::run(a),
        Command::Mud(c) => cmd::mud::run(&cli.global, c),
        Command::Audit(a) => cmd::audit::run(&cli.global, a),
        Command::Learn(a) => cmd::learn::run(&cli.global, a),
        Command::Verify(a) => cmd::verify::run(&cli.global, a),
        Command::Lint(a) => cmd::lint::run(&cli.global, a),
        Command::Scan(a) => cmd::scan::run(&cli.global, a),
        Command::Report(a) => cmd::report::run(&cli.global, a),
        Command::Init(c) => cmd::init::run(&cli.global, c),
        Command::Explain(a) => cmd::explain::run(&cli.global, a),
        Command::Completions(a) => cmd::completions::run_completions(a),
        Command::Man(a) => cmd::completions::run_man(a),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Ok(Outcome::BadInput) => ExitCode::from(EXIT_INPUT),
        Err(e) => {
            if cli.command.json() {
                let v = serde_json::json!({ "error": format!("{e:#}"), "exit": EXIT_INPUT });
                println!("{v}");
            }
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}
