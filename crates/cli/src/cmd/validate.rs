//! `portolan validate FILE...`: every problem of every file, then exit 2 if any is an error.
//! A file with a top-level `site:` key is a site: it is checked and compiled against its
//! profiles (catalog ids or files), as `compile` would; anything else is a profile.

use portolan_model::catalog::{load_file, LoadError};
use portolan_model::{Code, Diagnostic, Severity, Subject};
use serde::Serialize;

use crate::cli::{CatalogArgs, ValidateArgs};
use crate::output::{print_diagnostics, Outcome};

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    diagnostics: Vec<Diagnostic>,
}

fn io_error(name: &str, e: &std::io::Error) -> Vec<Diagnostic> {
    vec![Diagnostic {
        severity: Severity::Error,
        code: Code::Io,
        message: format!("cannot read the file: {e}"),
        help: "check the path".into(),
        file: name.to_string(),
        line: 0,
        column: 0,
        subject: Subject::None,
    }]
}

/// Checks and compiles a site; its diagnostics.
fn site(g: &CatalogArgs, f: &std::path::Path, text: &str) -> anyhow::Result<Vec<Diagnostic>> {
    let profiles = super::SiteProfiles {
        catalog: super::load_catalog(g)?,
        base: f
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
    };
    let name = f.display().to_string();
    let mut diags = match portolan_model::compile::site_text(&name, text, &profiles) {
        Ok(l) => l.warnings,
        Err(d) => d,
    };
    // `accept:` codes are lint's: checked here too, so that validate catches a misspelt one.
    // (Read again only when the site has a top-level `accept:`: a large site parses once.)
    let raw = text
        .lines()
        .any(|l| l.starts_with("accept:"))
        .then(|| serde_saphyr::from_str::<portolan_model::raw_site::RawSite>(text).ok())
        .flatten();
    if let Some(raw) = raw {
        if let Err(d) = portolan_lint::config::site_accepts(&name, &raw) {
            diags.extend(d);
        }
    }
    Ok(diags)
}

pub fn run(g: &CatalogArgs, a: &ValidateArgs) -> anyhow::Result<Outcome> {
    let mut reports = Vec::new();
    for f in &a.files {
        let name = f.display().to_string();
        let text = match portolan_model::diag::read_text(f) {
            Ok(t) => Ok(t),
            Err(portolan_model::diag::ReadError::Io(e)) => Err(e),
            Err(portolan_model::diag::ReadError::NotUtf8(d)) => {
                reports.push(FileReport {
                    file: name,
                    valid: false,
                    diagnostics: vec![*d],
                });
                continue;
            }
        };
        if let Ok(t) = &text {
            if super::validate_mud::is_mud(f, t) {
                let diagnostics = super::validate_mud::diagnostics(&name, t);
                let valid = !diagnostics.iter().any(Diagnostic::is_error);
                reports.push(FileReport {
                    file: name,
                    valid,
                    diagnostics,
                });
                continue;
            }
            if portolan_model::compile::is_site_text(t) {
                let diagnostics = site(g, f, t)?;
                let valid = !diagnostics.iter().any(Diagnostic::is_error);
                reports.push(FileReport {
                    file: name,
                    valid,
                    diagnostics,
                });
                continue;
            }
        }
        if let Err(e) = &text {
            reports.push(FileReport {
                file: name.clone(),
                valid: false,
                diagnostics: io_error(&name, e),
            });
            continue;
        }
        let diagnostics = match load_file(f) {
            Ok(l) => l.warnings,
            Err(LoadError::Invalid(d)) => d,
            Err(LoadError::Io(e)) => io_error(&name, &e),
        };
        let valid = !diagnostics.iter().any(Diagnostic::is_error);
        reports.push(FileReport {
            file: name,
            valid,
            diagnostics,
        });
    }
    let ok = reports.iter().all(|r| r.valid);
    if a.out.json() {
        if !ok {
            // A failure: the one error document, every file's diagnostics in it.
            for r in &reports {
                print_diagnostics(&r.diagnostics);
            }
            return Ok(Outcome::BadInput);
        }
        let files: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                let diags: Vec<crate::contract::Diag> =
                    r.diagnostics.iter().map(Into::into).collect();
                serde_json::json!({"file": r.file, "valid": r.valid, "diagnostics": diags})
            })
            .collect();
        crate::contract::print("validate", &serde_json::json!({ "files": files }))?;
    } else {
        // Each file's diagnostics on stderr, then its summary line on stdout, file by file.
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
    Ok(if ok { Outcome::Ok } else { Outcome::BadInput })
}

fn count(d: &[Diagnostic]) -> (usize, usize) {
    let e = d.iter().filter(|d| d.is_error()).count();
    (e, d.len() - e)
}
