//! One module per subcommand, each with `run(...) -> anyhow::Result<Outcome>`.

pub mod apply;
pub mod audit;
pub mod audit_kafka;
pub mod catalog;
pub mod compile;
pub mod doc;
pub mod enforce;
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
pub mod verify;

use std::path::Path;

use anyhow::{bail, Context};
use portolan_model::catalog::{load_file, Catalog, CatalogError, LoadError};
use portolan_model::{Profile, ProfileError};

use crate::cli::Global;
use crate::output::print_diagnostics;

/// The shipped catalog plus any `--catalog` folders.
pub fn load_catalog(g: &Global) -> anyhow::Result<Catalog> {
    let mut cat = Catalog::embedded().map_err(report)?;
    for dir in &g.catalog {
        cat.add_path(dir).map_err(report)?;
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
pub fn resolve_profile(g: &Global, id: &str) -> anyhow::Result<Profile> {
    let cat = load_catalog(g)?;
    if let Some(p) = cat.get(id) {
        return Ok(p.clone());
    }
    let path = Path::new(id);
    if path.is_file() {
        return profile_file(path).map_err(|e| anyhow::anyhow!(e.to_string()));
    }
    let known: Vec<&str> = cat.ids().collect();
    bail!(
        "no profile `{id}` in the catalog (known: {}) and no such file",
        known.join(", ")
    )
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
                for w in &imported.warnings {
                    eprintln!("{}: {w}", path.display());
                }
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
                bail!("profile `{}` has no modes", p.id);
            }
            bail!(
                "profile `{}` has no mode `{m}` (modes: {})",
                p.id,
                modes.join(", ")
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
pub fn load_site(
    g: &Global,
    site: &Path,
    json: bool,
) -> anyhow::Result<Option<portolan_model::ir::Policy>> {
    let text = match portolan_model::diag::read_text(site) {
        Ok(t) => t,
        Err(portolan_model::diag::ReadError::Io(e)) => {
            return Err(e).with_context(|| format!("cannot read {}", site.display()))
        }
        Err(portolan_model::diag::ReadError::NotUtf8(d)) => {
            if json {
                eprintln!("{}", serde_json::to_string_pretty(&[&*d])?);
            } else {
                print_diagnostics(std::slice::from_ref(&*d));
            }
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
    if json {
        if !diags.is_empty() {
            eprintln!("{}", serde_json::to_string_pretty(&diags)?);
        }
    } else {
        print_diagnostics(&diags);
    }
    Ok(policy)
}
