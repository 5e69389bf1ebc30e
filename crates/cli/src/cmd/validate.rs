//! `portolan validate FILE...`: every problem of every file, then exit 2 if any is an error.

use portolan_model::catalog::{load_file, LoadError};
use portolan_model::{Diagnostic, Severity};
use serde::Serialize;

use crate::cli::{Format, Global, ValidateArgs};
use crate::output::{print_diagnostics, Outcome};

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    diagnostics: Vec<Diagnostic>,
}

pub fn run(_g: &Global, a: &ValidateArgs) -> anyhow::Result<Outcome> {
    let mut reports = Vec::new();
    for f in &a.files {
        let name = f.display().to_string();
        let diagnostics = match load_file(f) {
            Ok(l) => l.warnings,
            Err(LoadError::Invalid(d)) => d,
            Err(LoadError::Io(e)) => vec![Diagnostic {
                severity: Severity::Error,
                code: "io",
                message: format!("cannot read the file: {e}"),
                help: "check the path".into(),
                file: name.clone(),
                line: 0,
                column: 0,
            }],
        };
        let valid = !diagnostics.iter().any(Diagnostic::is_error);
        reports.push(FileReport {
            file: name,
            valid,
            diagnostics,
        });
    }
    let ok = reports.iter().all(|r| r.valid);
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
        Format::Table => {
            for r in &reports {
                print_diagnostics(&r.diagnostics);
                let (e, w) = count(&r.diagnostics);
                if r.valid {
                    println!("{}: ok ({w} warning(s))", r.file);
                } else {
                    println!("{}: {e} error(s), {w} warning(s)", r.file);
                }
            }
        }
    }
    Ok(if ok { Outcome::Ok } else { Outcome::BadInput })
}

fn count(d: &[Diagnostic]) -> (usize, usize) {
    let e = d.iter().filter(|d| d.is_error()).count();
    (e, d.len() - e)
}
