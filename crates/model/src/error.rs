//! The model crate's error type: what one of its library functions cannot do. Problems in a
//! file are not errors but [`Diagnostic`]s, every one reported at once.

use std::path::PathBuf;

use crate::catalog::{CatalogError, LoadError};
use crate::diag::Diagnostic;

/// Why a profile a site names (`profile:`) could not be had. Compile reports it as
/// `unknown-profile` at the name, with this as the reason.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Neither a catalog id (the catalog's ids are listed) nor a profile file.
    #[error("not in the catalog (known: {})", .known.join(", "))]
    NotInCatalog { known: Vec<String> },
    /// The profile file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The profile file does not validate: its diagnostics.
    #[error("{} is not a valid profile", .path.display())]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
    /// A MUD file that cannot be imported as a profile, and why.
    #[error("{} is not a usable MUD file: {reason}", .path.display())]
    NotMud { path: PathBuf, reason: String },
    /// The catalog itself could not be loaded.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl ProfileError {
    /// A profile file that [`crate::catalog::load_file`] could not load.
    pub fn file(path: impl Into<PathBuf>, e: LoadError) -> Self {
        let path = path.into();
        match e {
            LoadError::Io(source) => ProfileError::Unreadable { path, source },
            LoadError::Invalid(diagnostics) => ProfileError::Invalid { path, diagnostics },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_before() {
        let e = ProfileError::NotInCatalog {
            known: vec!["a".into(), "b".into()],
        };
        assert_eq!(e.to_string(), "not in the catalog (known: a, b)");
        let e = ProfileError::file(
            "p.yaml",
            LoadError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "gone")),
        );
        assert_eq!(e.to_string(), "cannot read p.yaml: gone");
        let e = ProfileError::file("p.yaml", LoadError::Invalid(Vec::new()));
        assert_eq!(e.to_string(), "p.yaml is not a valid profile");
    }
}
