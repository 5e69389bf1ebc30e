//! One module per subcommand, each with `run(...) -> anyhow::Result<Outcome>`.

pub mod apply;
pub mod audit;
pub mod audit_kafka;
pub mod catalog;
pub mod compile;
pub mod completions;
pub mod doc;
pub mod enforce;
pub mod explain;
pub mod init;
pub mod lab;
pub mod learn;
pub mod lint;
pub mod mud;
pub mod probe;
pub mod report;
pub mod responder;
pub mod scan;
mod scan_lab;
pub mod schema;
pub mod show;
pub mod validate;
mod validate_mud;
pub mod verify;

use std::path::Path;

use portolan_model::catalog::{load_file, Catalog, CatalogError, LoadError};
use portolan_model::{Profile, ProfileError};

use crate::cli::CatalogArgs;
use crate::output::print_diagnostics;

/// The shipped catalog plus any `--catalog` folders.
pub fn load_catalog(g: &CatalogArgs) -> anyhow::Result<Catalog> {
    let mut cat = Catalog::embedded().map_err(report)?;
    for dir in &g.catalog {
        cat.add_path(dir).map_err(report)?;
    }
    for f in &cat.skipped_sites {
        eprintln!(
            "note: {} is a site, not a profile; the catalog skips it",
            f.display()
        );
    }
    Ok(cat)
}

fn report(e: CatalogError) -> anyhow::Error {
    if let CatalogError::Invalid(d) = &e {
        print_diagnostics(d);
    }
    anyhow::Error::new(e)
}

/// A profile by catalog id, or from a file when the argument names one.
pub fn resolve_profile(g: &CatalogArgs, id: &str) -> anyhow::Result<Profile> {
    let cat = load_catalog(g)?;
    if let Some(p) = cat.get(id) {
        return Ok(p.clone());
    }
    let path = Path::new(id);
    if path.is_file() {
        return profile_file(path).map_err(|e| anyhow::anyhow!(e.to_string()));
    }
    let known: Vec<&str> = cat.ids().collect();
    let near = portolan_model::suggest::did_you_mean(id, known.iter().copied());
    Err(crate::contract::Failure(
        crate::contract::Diag::error(
            "unknown-profile",
            format!(
                "no profile `{id}` in the catalog and no such file{}",
                if near.is_empty() {
                    String::new()
                } else {
                    format!("; {near}")
                }
            ),
        )
        .help(format!("known: {}", known.join(", "))),
    )
    .into())
}

/// A profile from a file: YAML in the profile format, or a MUD file (`.json`, RFC 8520),
/// imported leniently with its repairs printed as warnings. Diagnostics go to stderr;
/// `Err` is a one-line reason.
pub fn profile_file(path: &Path) -> Result<Profile, ProfileError> {
    if path.extension().is_some_and(|e| e == "json") {
        let bytes = std::fs::read(path).map_err(|source| ProfileError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        let opts = portolan_mud::ImportOptions {
            strict: false,
            file: path.display().to_string(),
        };
        return match portolan_mud::import(&bytes, &opts) {
            Ok(imported) => {
                crate::contract::push(
                    imported
                        .warnings
                        .iter()
                        .map(|w| mud::problem_diag(w, &path.display().to_string())),
                );
                Ok(imported.profile)
            }
            Err(e) => Err(ProfileError::NotMud {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        };
    }
    match load_file(path) {
        Ok(l) => Ok(l.value),
        Err(LoadError::Invalid(d)) => {
            print_diagnostics(&d);
            Err(ProfileError::file(path, LoadError::Invalid(d)))
        }
        Err(e) => Err(ProfileError::file(path, e)),
    }
}

/// Checks `--mode` against the profile.
pub fn check_mode(p: &Profile, mode: Option<&str>) -> anyhow::Result<()> {
    if let Some(m) = mode {
        if !p.has_mode(m) {
            let modes: Vec<&str> = p.modes.iter().map(|m| m.id.as_str()).collect();
            if modes.is_empty() {
                return crate::contract::fail(
                    "unknown-mode",
                    format!("profile `{}` has no modes", p.id),
                );
            }
            return crate::contract::fail(
                "unknown-mode",
                format!(
                    "profile `{}` has no mode `{m}` (modes: {})",
                    p.id,
                    modes.join(", ")
                ),
            );
        }
    }
    Ok(())
}

/// Profiles for sites: catalog ids, or files relative to the site's folder.
pub struct SiteProfiles {
    pub catalog: Catalog,
    pub base: std::path::PathBuf,
}

impl portolan_model::compile::ProfileSource for SiteProfiles {
    fn profile(&self, name: &str) -> Result<Profile, ProfileError> {
        if let Some(p) = self.catalog.get(name) {
            return Ok(p.clone());
        }
        let path = self.base.join(name);
        let is_file_name =
            name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json");
        if !is_file_name {
            let known = self.catalog.ids().map(str::to_string).collect();
            return Err(ProfileError::NotInCatalog { known });
        }
        profile_file(&path)
    }
}

/// Loads and compiles a site; diagnostics are printed, and `None` means bad input.
/// (`_json`: diagnostics follow the run's `--format` through `crate::contract`.)
pub fn load_site(
    g: &CatalogArgs,
    site: &Path,
    _json: bool,
) -> anyhow::Result<Option<portolan_model::ir::Policy>> {
    let text = match portolan_model::diag::read_text(site) {
        Ok(t) => t,
        Err(portolan_model::diag::ReadError::Io(e)) => {
            return Err(crate::contract::unreadable(site, &e));
        }
        Err(portolan_model::diag::ReadError::NotUtf8(d)) => {
            print_diagnostics(std::slice::from_ref(&*d));
            return Ok(None);
        }
    };
    let profiles = SiteProfiles {
        catalog: load_catalog(g)?,
        base: site.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let result = portolan_model::compile::site_text(&site.display().to_string(), &text, &profiles);
    let (policy, diags) = match result {
        Ok(l) => (Some(l.value), l.warnings),
        Err(d) => (None, d),
    };
    print_diagnostics(&diags);
    Ok(policy)
}
