//! The catalog: the profiles shipped inside the binary (`catalog/*.yaml`), plus any a user adds
//! from a folder or file. Profiles are looked up by id.

use std::fs;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::profile::Profile;
use crate::validate::{profile_text, Loaded};

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// Where a catalog profile came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Shipped in the binary (`catalog/NAME`).
    Embedded(&'static str),
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Embedded(n) => write!(f, "catalog/{n}"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub origin: Origin,
    pub profile: Profile,
}

/// A set of profiles with unique ids.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    /// Site files found in a folder given to [`Catalog::add_path`]: skipped, not profiles
    /// (a project folder often holds its site beside its profiles).
    pub skipped_sites: Vec<PathBuf>,
}

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} problem(s) in catalog profiles", .0.len())]
    Invalid(Vec<Diagnostic>),
    #[error("profile id `{id}` is defined twice: {first} and {second}")]
    Duplicate {
        id: String,
        first: String,
        second: String,
    },
}

impl Catalog {
    /// The shipped profiles. They are validated by the test suite, so an error here is a bug.
    pub fn embedded() -> Result<Catalog, CatalogError> {
        let mut cat = Catalog::default();
        for (name, text) in EMBEDDED {
            let loaded =
                profile_text(&format!("catalog/{name}"), text).map_err(CatalogError::Invalid)?;
            cat.add(Origin::Embedded(name), loaded.value)?;
        }
        Ok(cat)
    }

    /// Adds every `*.yaml`/`*.yml` profile of a folder (or one file).
    pub fn add_path(&mut self, path: &Path) -> Result<(), CatalogError> {
        let files = if path.is_dir() {
            let rd = fs::read_dir(path).map_err(|source| CatalogError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let mut v: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            v.sort();
            v
        } else {
            vec![path.to_path_buf()]
        };
        let mut problems = Vec::new();
        for f in files {
            let is_site = path.is_dir()
                && fs::read_to_string(&f).is_ok_and(|t| crate::compile::is_site_text(&t));
            if is_site {
                self.skipped_sites.push(f);
                continue;
            }
            match load_file(&f) {
                Ok(l) => self.add(Origin::File(f), l.value)?,
                Err(LoadError::Io(source)) => return Err(CatalogError::Io { path: f, source }),
                Err(LoadError::Invalid(d)) => problems.extend(d),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::Invalid(problems))
        }
    }

    fn add(&mut self, origin: Origin, profile: Profile) -> Result<(), CatalogError> {
        if let Some(e) = self.entries.iter().find(|e| e.profile.id == profile.id) {
            return Err(CatalogError::Duplicate {
                id: profile.id,
                first: e.origin.to_string(),
                second: origin.to_string(),
            });
        }
        self.entries.push(Entry { origin, profile });
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Profile> {
        self.entries
            .iter()
            .find(|e| e.profile.id == id)
            .map(|e| &e.profile)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.profile.id.as_str())
    }
}

/// Why a file could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    Io(std::io::Error),
    Invalid(Vec<Diagnostic>),
}

/// Reads and validates one profile file.
pub fn load_file(path: &Path) -> Result<Loaded<Profile>, LoadError> {
    let text = crate::diag::read_text(path).map_err(|e| match e {
        crate::diag::ReadError::Io(e) => LoadError::Io(e),
        crate::diag::ReadError::NotUtf8(d) => LoadError::Invalid(vec![*d]),
    })?;
    profile_text(&path.display().to_string(), &text).map_err(LoadError::Invalid)
}

/// A catalog answers a site's `profile:` by id (file paths are the CLI's business, which
/// reads them relative to the site).
impl crate::compile::ProfileSource for Catalog {
    fn profile(&self, name: &str) -> Result<Profile, crate::ProfileError> {
        self.get(name)
            .cloned()
            .ok_or_else(|| crate::ProfileError::NotInCatalog {
                known: self.ids().map(str::to_string).collect(),
            })
    }
}
