//! `portolan lint TARGET...`: profiles (catalog ids or files) and sites, each linted by
//! `portolan-lint`; the findings printed for people, as JSON, or as SARIF 2.1.0; exit 1 when
//! one reaches `--deny`, 2 on bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use portolan_lint::{Config, Conntrack, Level, ProfileDoc, Report};
use portolan_model::catalog::{Catalog, Origin, EMBEDDED};
use portolan_model::raw_site::RawSite;

use crate::cli::{CatalogArgs, DenyLevel, LintArgs, LintFormat};
use crate::output::{print_diagnostics, Outcome};

/// Where the kernel keeps the conntrack timeouts of the current network namespace.
pub(crate) const PROC_NETFILTER: &str = "/proc/sys/net/netfilter";

pub fn run(g: &CatalogArgs, a: &LintArgs) -> anyhow::Result<Outcome> {
    let catalog = super::load_catalog(g)?;
    let config = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            match portolan_lint::config::parse(&path.display().to_string(), &text) {
                Ok(c) => c,
                Err(d) => {
                    print_diagnostics(&d);
                    return Ok(Outcome::BadInput);
                }
            }
        }
        None => Config::default(),
    };
    let conntrack = if a.conntrack_from_kernel {
        Some(Conntrack::from_proc(Path::new(PROC_NETFILTER)).map_err(|e| anyhow::anyhow!("{e}"))?)
    } else {
        config.conntrack
    };
    let mut reports = Vec::new();
    let mut bad = false;
    for target in &a.targets {
        match lint_target(g, &catalog, target, &config, conntrack)? {
            Some(r) => reports.push(r),
            None => bad = true,
        }
    }
    if bad && a.format != LintFormat::Table {
        // Under json or sarif, bad input is the one error document alone.
        return Ok(Outcome::BadInput);
    }
    match a.format {
        LintFormat::Json => {
            crate::contract::print("lint", &serde_json::json!({ "targets": reports }))?;
        }
        LintFormat::Sarif => println!(
            "{}",
            serde_json::to_string_pretty(&portolan_lint::sarif::log(&reports))?
        ),
        LintFormat::Table => print!("{}", human(&reports)),
    }
    let deny = match a.deny {
        DenyLevel::Note => Level::Note,
        DenyLevel::Warning => Level::Warning,
        DenyLevel::Error => Level::Error,
    };
    Ok(if bad {
        Outcome::BadInput
    } else if reports.iter().any(|r| r.worst().is_some_and(|w| w >= deny)) {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

/// One target linted; `None` when it was bad input (its diagnostics already printed).
fn lint_target(
    g: &CatalogArgs,
    catalog: &Catalog,
    target: &str,
    config: &Config,
    conntrack: Option<Conntrack>,
) -> anyhow::Result<Option<Report>> {
    let path = Path::new(target);
    if !path.is_file() {
        return Ok(match catalog_doc(catalog, target)? {
            Some(doc) => Some(portolan_lint::profile(&doc, config, conntrack)),
            None => {
                let known: Vec<&str> = catalog.ids().collect();
                crate::contract::push([crate::contract::Diag::error(
                    "unknown-profile",
                    format!("`{target}` is neither a file nor a catalog profile"),
                )
                .help(format!("known: {}", known.join(", ")))]);
                None
            }
        });
    }
    let text = match portolan_model::diag::read_text(path) {
        Ok(t) => t,
        Err(portolan_model::diag::ReadError::Io(e)) => {
            return Err(crate::contract::unreadable(path, &e))
        }
        Err(portolan_model::diag::ReadError::NotUtf8(d)) => {
            print_diagnostics(std::slice::from_ref(&*d));
            return Ok(None);
        }
    };
    if portolan_model::compile::is_site_text(&text) {
        return site(g, catalog, path, &text, config, conntrack);
    }
    let doc = match file_doc(path, &text) {
        Some(d) => d,
        None => return Ok(None),
    };
    Ok(Some(portolan_lint::profile(&doc, config, conntrack)))
}

/// A catalog profile with its text, for positions.
fn catalog_doc(catalog: &Catalog, id: &str) -> anyhow::Result<Option<ProfileDoc>> {
    let Some(entry) = catalog.entries.iter().find(|e| e.profile.id == id) else {
        return Ok(None);
    };
    let (name, text) = match &entry.origin {
        Origin::Embedded(n) => {
            let text = EMBEDDED
                .iter()
                .find(|(f, _)| f == n)
                .map(|(_, t)| t.to_string());
            (format!("catalog/{n}"), text)
        }
        Origin::File(p) => (p.display().to_string(), std::fs::read_to_string(p).ok()),
    };
    Ok(Some(match text {
        Some(t) => ProfileDoc::from_text(&name, &t).map_err(|d| {
            print_diagnostics(&d);
            anyhow::anyhow!("catalog profile `{id}` does not validate")
        })?,
        None => ProfileDoc::without_source(&name, entry.profile.clone()),
    }))
}

/// A profile file: YAML with positions, or a MUD file (imported, no positions).
fn file_doc(path: &Path, text: &str) -> Option<ProfileDoc> {
    let name = path.display().to_string();
    if path.extension().is_some_and(|e| e == "json") {
        return super::profile_file(path)
            .map_err(|e| {
                crate::contract::push([crate::contract::Diag::error(
                    "invalid-input",
                    e.to_string(),
                )
                .file(&name)]);
            })
            .ok()
            .map(|p| ProfileDoc::without_source(&name, p));
    }
    ProfileDoc::from_text(&name, text)
        .map_err(|d| print_diagnostics(&d))
        .ok()
}

fn site(
    g: &CatalogArgs,
    catalog: &Catalog,
    path: &Path,
    text: &str,
    config: &Config,
    conntrack: Option<Conntrack>,
) -> anyhow::Result<Option<Report>> {
    let name = path.display().to_string();
    let Some(policy) = super::load_site(g, path, false)? else {
        return Ok(None);
    };
    // Compiled already, so this parses; the mirror gives the site's lines.
    let raw: RawSite =
        serde_saphyr::from_str(text).with_context(|| format!("cannot read {name} again"))?;
    let base: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut docs = BTreeMap::new();
    for d in &raw.devices.value {
        let p = &d.profile.value;
        let doc = match catalog_doc(catalog, p)? {
            Some(doc) => Some(doc),
            None => {
                let file = base.join(p);
                std::fs::read_to_string(&file)
                    .ok()
                    .and_then(|t| file_doc(&file, &t))
            }
        };
        if let Some(doc) = doc {
            docs.insert(doc.profile.id.clone(), doc);
        }
    }
    // The site's own acceptances (which `portolan_lint::site` adds to the configuration's):
    // a code lint does not know is bad input.
    if let Err(d) = portolan_lint::config::site_accepts(&name, &raw) {
        print_diagnostics(&d);
        return Ok(None);
    }
    Ok(Some(portolan_lint::site(
        &name, &raw, &policy, &docs, config, conntrack,
    )))
}

/// The findings for people: one block each, then the acceptances and a summary per target.
fn human(reports: &[Report]) -> String {
    let mut s = String::new();
    for r in reports {
        for f in &r.findings {
            let about = match (f.provenance(), &f.device) {
                (Some(p), Some(d)) => format!(" {p} ({d})"),
                (Some(p), None) => format!(" {p}"),
                (None, Some(d)) => format!(" ({d})"),
                (None, None) => String::new(),
            };
            s.push_str(&format!("{}[{}] {}{about}\n", f.level, f.code, f.location));
            s.push_str(&format!("  {}\n", f.reason));
            for c in &f.citations {
                s.push_str(&format!("  cites: {c} <{}>\n", c.url));
            }
            s.push_str(&format!("  remedy: {}\n", f.remedy));
        }
        for a in &r.accepted {
            s.push_str(&format!(
                "accepted[{}] {} {}: {}\n  accepted at {}: {}\n",
                a.finding.code,
                a.finding.location,
                a.finding.provenance().unwrap_or_default(),
                a.finding.reason,
                a.accepted_at,
                a.reason
            ));
        }
        for n in &r.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        let count = |l: Level| r.findings.iter().filter(|f| f.level == l).count();
        s.push_str(&format!(
            "{}: {} error(s), {} warning(s), {} note(s), {} accepted\n",
            r.target,
            count(Level::Error),
            count(Level::Warning),
            count(Level::Note),
            r.accepted.len()
        ));
    }
    s
}
