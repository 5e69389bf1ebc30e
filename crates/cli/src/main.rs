//! `portolan`: the command-line front end. Parses arguments, dispatches to one function per
//! subcommand (`cmd/*.rs`) and maps the outcome to an exit code a script can trust:
//! 0 ok, 1 findings, 2 bad input or usage. Under `--format json` a failure of any kind
//! (usage, I/O, validation) is one `portolan/error/v1` document on standard output
//! (`contract.rs`); otherwise its diagnostics go to standard error as text.

mod cli;
mod cmd;
mod contract;
mod duration;
mod output;
mod report;
mod table;
mod write;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::contract::Diag;
use crate::output::{Outcome, EXIT_INPUT};

/// mimalloc instead of the C library's malloc. A large site's compile makes and frees millions
/// of small strings and vectors: with glibc, malloc, free and their consolidation took about a
/// third of compiling 100,000 one-device groups, and freeing the planned ruleset alone 0.2 s
/// (bench/README.md, "Allocation").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Whether the raw command line asks for a JSON answer (`--format json`, `--format=json`,
/// lint's `sarif`), read before clap has parsed it so that a usage error can answer in JSON.
fn asks_json(args: &[std::ffi::OsString]) -> bool {
    let json = |v: &str| matches!(v, "json" | "sarif");
    // Options end at `--`: what follows is an argument.
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let args = &args[..end];
    args.iter().enumerate().any(|(i, a)| {
        let a = a.to_string_lossy();
        if let Some(v) = a.strip_prefix("--format=") {
            return json(v);
        }
        a == "--format" && args.get(i + 1).is_some_and(|v| json(&v.to_string_lossy()))
    })
}

/// A clap error as one diagnostic: what is wrong as the message, clap's tip and the usage
/// line as the help.
fn usage_diag(e: &clap::Error) -> Diag {
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let usage = lines
        .iter()
        .position(|l| {
            ["Usage:", "tip:", "For more information"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .unwrap_or(lines.len());
    let message = lines[..usage]
        .join(" ")
        .trim_start_matches("error: ")
        .to_string();
    let d = Diag::error("usage", message);
    if usage == lines.len() {
        d
    } else {
        d.help(lines[usage..].join(" "))
    }
}

fn print_error_document(mut diags: Vec<Diag>) -> ExitCode {
    diags.extend(contract::take());
    // Errors first, in the order met, then the warnings met on the way.
    diags.sort_by_key(|d| !d.is_error());
    let doc = contract::error_document(&diags);
    println!(
        "{}",
        contract::pretty(&doc).unwrap_or_else(|_| doc.to_string())
    );
    ExitCode::from(EXIT_INPUT)
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let info = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if asks_json(&args) && !info {
                return print_error_document(vec![usage_diag(&e)]);
            }
            e.exit();
        }
    };
    let json = cli.command.json();
    contract::set_json(json);
    let result = match &cli.command {
        Command::Catalog(c) => cmd::catalog::run(c),
        Command::Show(a) => cmd::show::run(&a.cat, a),
        Command::Doc(a) => cmd::doc::run(&a.cat, a),
        Command::Validate(a) => cmd::validate::run(&a.cat, a),
        Command::Compile(a) => cmd::compile::run(&a.cat, a),
        Command::Schema(a) => cmd::schema::run(a),
        Command::Lab(a) => cmd::lab::run(&a.cat, a),
        Command::Apply(a) => cmd::apply::run(&a.cat, a),
        Command::ApplyRollback(a) => cmd::apply::rollback(a),
        Command::Enforce(a) => cmd::enforce::run(&a.cat, a),
        Command::Probe(a) => cmd::probe::run(&a.cat, a),
        Command::Responder(a) => cmd::responder::run(a),
        Command::Mud(c) => cmd::mud::run(c),
        Command::Audit(a) => cmd::audit::run(&a.cat, a),
        Command::Learn(a) => cmd::learn::run(a),
        Command::Verify(a) => cmd::verify::run(&a.cat, a),
        Command::Lint(a) => cmd::lint::run(&a.cat, a),
        Command::Scan(a) => cmd::scan::run(&a.cat, a),
        Command::Report(a) => cmd::report::run(&a.cat, a),
        Command::Init(c) => cmd::init::run(c),
        Command::Explain(a) => cmd::explain::run(&a.cat, a),
        Command::Completions(a) => cmd::completions::run_completions(a),
        Command::Man(a) => cmd::completions::run_man(a),
    };
    let bad = match &result {
        Ok(Outcome::Ok) => return finish(json, ExitCode::SUCCESS),
        Ok(Outcome::Findings) => return finish(json, ExitCode::from(1)),
        Ok(Outcome::BadInput) => Vec::new(),
        Err(e) => vec![contract::diag_of(e)],
    };
    if json {
        if contract::printed() {
            // A stream (audit's lines) already begun: its end says what went wrong.
            for d in bad.into_iter().chain(contract::take()) {
                eprintln!("{d}");
            }
            return ExitCode::from(EXIT_INPUT);
        }
        let mut bad = bad;
        if bad.is_empty() && !contract::has_error() {
            bad.push(Diag::error(
                "invalid-input",
                "the input was refused (see the diagnostics)",
            ));
        }
        return print_error_document(bad);
    }
    if let Err(e) = result {
        match e.downcast_ref::<contract::Failure>() {
            Some(f) => eprintln!("{}", f.0),
            None => eprintln!("error: {e:#}"),
        }
    }
    ExitCode::from(EXIT_INPUT)
}

/// A run that did not fail: in JSON, the warnings it met go to standard error as text.
fn finish(json: bool, code: ExitCode) -> ExitCode {
    if json {
        for d in contract::take() {
            eprintln!("{d}");
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_read_from_the_raw_command_line() {
        let a = |s: &[&str]| -> Vec<std::ffi::OsString> { s.iter().map(Into::into).collect() };
        assert!(asks_json(&a(&[
            "portolan", "show", "x", "--format", "json"
        ])));
        assert!(asks_json(&a(&["portolan", "show", "--format=json", "x"])));
        assert!(asks_json(&a(&[
            "portolan", "lint", "x", "--format", "sarif"
        ])));
        assert!(!asks_json(&a(&[
            "portolan", "doc", "x", "--format", "markdown"
        ])));
        assert!(!asks_json(&a(&[
            "portolan", "show", "--", "--format", "json"
        ])));
        assert!(!asks_json(&a(&["portolan", "show", "--format"])));
    }
}
