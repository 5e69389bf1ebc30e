//! `portolan mud export | import | verify`: MUD files (RFC 8520), one function each; the work is
//! in `portolan-mud`.

use std::path::PathBuf;

use anyhow::Context;
use portolan_mud::{ExportOptions, ImportOptions, MudError, Problem, VerifyOptions};
use serde::Serialize;

use crate::cli::{CatalogArgs, ExportArgs, Format, ImportArgs, MudCmd, VerifyArgs};
use crate::contract::Diag;
use crate::output::{print_diagnostics, Outcome};
use crate::write;

pub fn run(c: &MudCmd) -> anyhow::Result<Outcome> {
    match c {
        MudCmd::Export(a) => export(&a.cat, a),
        MudCmd::Import(a) => import(a),
        MudCmd::Verify(a) => verify(a),
    }
}

/// A MUD problem as the contract's diagnostic: the JSON Pointer into the file kept.
pub fn problem_diag(p: &Problem, file: &str) -> Diag {
    let d = Diag::error(&p.code.to_string(), p.message.clone()).file(file);
    let d = Diag {
        pointer: Some(if p.path.is_empty() {
            "/".to_string()
        } else {
            p.path.clone()
        }),
        ..d
    };
    if p.is_error() {
        d
    } else {
        d.warning()
    }
}

#[derive(Serialize)]
struct ExportReport<'a> {
    profile: &'a str,
    mode: Option<&'a str>,
    interface: Option<&'a str>,
    mud_url: &'a str,
    aces: usize,
    unexpressed: &'a [String],
    warnings: Vec<Diag>,
    output: Option<String>,
    mud: Option<&'a portolan_mud::schema::MudFile>,
}

fn export(g: &CatalogArgs, a: &ExportArgs) -> anyhow::Result<Outcome> {
    let profile = super::resolve_profile(g, &a.id)?;
    let opts = ExportOptions {
        mode: a.mode.clone(),
        mud_url: a.mud_url.clone(),
        last_update: a.last_update.clone(),
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        cache_validity: a.cache_validity,
        is_supported: !a.unsupported,
        documentation: a.documentation.clone(),
        interface: a.interface.clone(),
        choose: a.choose.iter().cloned().collect(),
    };
    let out = portolan_mud::export(&profile, &opts)?;
    if let Some(path) = &a.file.output {
        write::atomically(path, out.json.as_bytes())?;
    }
    match a.out.format {
        Format::Json => {
            let report = ExportReport {
                profile: &profile.id,
                mode: out.mode.as_deref(),
                interface: out.interface.as_deref(),
                mud_url: &a.mud_url,
                aces: out.aces,
                unexpressed: &out.unexpressed,
                warnings: out
                    .warnings
                    .iter()
                    .map(|w| problem_diag(w, &a.id))
                    .collect(),
                output: a.file.output.as_ref().map(|p| p.display().to_string()),
                mud: a.file.output.is_none().then_some(&out.mud),
            };
            crate::contract::print("mud-export", &report)?;
        }
        Format::Table => {
            for w in &out.warnings {
                eprintln!("{}:{w}", a.id);
            }
            if a.file.output.is_none() {
                print!("{}", out.json);
            } else {
                eprintln!(
                    "{}: {} ACE(s), {} flow(s) only in the portolan extension, {} warning(s)",
                    a.file
                        .output
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string()),
                    out.aces,
                    out.unexpressed.len(),
                    out.warnings.len()
                );
            }
        }
    }
    Ok(Outcome::Ok)
}

#[derive(Serialize)]
struct ImportReport<'a> {
    file: String,
    strict: bool,
    profile_id: &'a str,
    flows: usize,
    extension_used: bool,
    warnings: Vec<Diag>,
    output: Option<String>,
    /// The profile in the profile file format (`portolan schema profile`), unless -o.
    profile: Option<&'a portolan_model::Profile>,
}

fn import(a: &ImportArgs) -> anyhow::Result<Outcome> {
    let name = a.file.display().to_string();
    let bytes = crate::contract::read(&a.file)?;
    let result = portolan_mud::import(
        &bytes,
        &ImportOptions {
            strict: a.strict,
            file: name.clone(),
        },
    );
    let json = a.out.json();
    let imported = match &result {
        Ok(i) => i,
        Err(MudError::Refused { problems }) => {
            crate::contract::push(problems.iter().map(|p| problem_diag(p, &name)));
            if !json {
                eprintln!("{name}: refused");
            }
            return Ok(Outcome::BadInput);
        }
        Err(MudError::Profile { diagnostics, .. }) => {
            print_diagnostics(diagnostics);
            if !json {
                eprintln!("{name}: refused");
            }
            return Ok(Outcome::BadInput);
        }
        Err(e) => {
            return Err(crate::contract::Failure(
                Diag::error("invalid-input", e.to_string()).file(&name),
            )
            .into())
        }
    };
    if let Some(path) = &a.to.output {
        write::atomically(path, imported.yaml.as_bytes())?;
    }
    if json {
        let report = ImportReport {
            file: name.clone(),
            strict: a.strict,
            profile_id: &imported.profile.id,
            flows: imported.profile.flows.len(),
            extension_used: imported.extension_used,
            warnings: imported
                .warnings
                .iter()
                .map(|w| problem_diag(w, &name))
                .collect(),
            output: a.to.output.as_ref().map(|p| p.display().to_string()),
            profile: a.to.output.is_none().then_some(&imported.profile),
        };
        crate::contract::print("mud-import", &report)?;
    } else {
        for w in &imported.warnings {
            eprintln!("{name}:{w}");
        }
        match &a.to.output {
            None => print!("{}", imported.yaml),
            Some(_) => eprintln!(
                "{name}: imported `{}`, {} flow(s), {} warning(s)",
                imported.profile.id,
                imported.profile.flows.len(),
                imported.warnings.len()
            ),
        }
    }
    Ok(Outcome::Ok)
}

#[derive(Serialize)]
struct VerifyReport<'a> {
    file: String,
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<&'a portolan_mud::Verified>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The signature file a MUD file names in `mud-signature` (a URI of its detached signature,
/// RFC 8520 section 13), looked for next to the MUD file under the URL's last path segment.
fn signature_beside(file: &std::path::Path, content: &[u8]) -> anyhow::Result<PathBuf> {
    let doc: serde_json::Value = serde_json::from_slice(content)
        .with_context(|| format!("{} is not JSON", file.display()))?;
    let url = doc
        .pointer("/ietf-mud:mud/mud-signature")
        .and_then(serde_json::Value::as_str)
        .with_context(|| {
            format!(
                "{} names no mud-signature: give the signature with --signature",
                file.display()
            )
        })?;
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .with_context(|| format!("mud-signature `{url}` names no file"))?;
    Ok(file
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join(last))
}

fn verify(a: &VerifyArgs) -> anyhow::Result<Outcome> {
    let read = |p: &PathBuf| crate::contract::read(p);
    let content = read(&a.file)?;
    let sig_path = match &a.signature {
        Some(p) => p.clone(),
        None => signature_beside(&a.file, &content)?,
    };
    let signature = read(&sig_path)?;
    let ca = read(&a.ca)?;
    let at = match &a.at {
        None => None,
        Some(t) => {
            let secs = time_secs(t)?;
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        }
    };
    let opts = VerifyOptions {
        at,
        signer_subject: a.signer_subject.clone(),
    };
    let name = a.file.display().to_string();
    let result = portolan_mud::verify(&content, &signature, &ca, &opts);
    let outcome = match &result {
        Ok(_) => Outcome::Ok,
        Err(MudError::SignatureRefused(_)) => Outcome::Findings,
        Err(_) => Outcome::BadInput,
    };
    if outcome == Outcome::BadInput {
        let e = result.err().map_or_else(String::new, |e| e.to_string());
        return Err(crate::contract::Failure(Diag::error("invalid-input", e).file(name)).into());
    }
    match a.out.format {
        Format::Json => {
            let report = VerifyReport {
                file: name,
                verified: result.is_ok(),
                signer: result.as_ref().ok(),
                reason: result.as_ref().err().map(ToString::to_string),
            };
            crate::contract::print("mud-verify", &report)?;
        }
        Format::Table => match &result {
            Ok(v) => println!(
                "{name}: signature verified: signed by `{}` ({}, {}), chain: {}",
                v.signer,
                v.digest,
                if v.signed_attributes {
                    "signed attributes"
                } else {
                    "no signed attributes"
                },
                v.chain.join(" <- ")
            ),
            Err(e) => eprintln!("{name}: {e}"),
        },
    }
    Ok(outcome)
}

/// Seconds since the epoch of an RFC 3339 time.
fn time_secs(t: &str) -> anyhow::Result<u64> {
    let secs = portolan_mud::timestamp::unix_seconds(t)
        .with_context(|| format!("--at `{t}` is not an RFC 3339 time with a time zone"))?;
    u64::try_from(secs).context("--at is before 1970")
}
