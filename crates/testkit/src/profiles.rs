//! One profile source for every test: what a site's `profile:` names is looked up, in this
//! order, among the profiles given inline (by name, or by their own id), the shipped catalog
//! (unless the test leaves it out), profile files relative to a folder (names ending in
//! `.yaml`), and last a fallback the test supplies (MUD files, say).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portolan_model::catalog::{load_file, Catalog};
use portolan_model::compile::{site_text, ProfileSource};
use portolan_model::ir::Policy;
use portolan_model::validate::profile_text;
use portolan_model::{Diagnostic, Profile, ProfileError};

type Fallback = Box<dyn Fn(&str) -> Result<Profile, ProfileError> + Send + Sync>;

/// Profiles a test's sites may name.
#[derive(Default)]
pub struct Profiles {
    inline: BTreeMap<String, Profile>,
    catalog: Option<Catalog>,
    base: Option<PathBuf>,
    fallback: Option<Fallback>,
}

impl Profiles {
    /// The shipped catalog.
    pub fn catalog() -> Profiles {
        Profiles {
            catalog: Some(Catalog::embedded().expect("the shipped catalog is valid")),
            ..Profiles::default()
        }
    }

    /// Nothing but what the test adds.
    pub fn none() -> Profiles {
        Profiles::default()
    }

    /// Also profile files (`*.yaml`) relative to `base`, as a site names them.
    pub fn files(mut self, base: &Path) -> Profiles {
        self.base = Some(base.to_path_buf());
        self
    }

    /// Also `p` under its own id.
    pub fn with(self, p: Profile) -> Profiles {
        let id = p.id.clone();
        self.named(&id, p)
    }

    /// Also `p` under `name`.
    pub fn named(mut self, name: &str, p: Profile) -> Profiles {
        self.inline.insert(name.to_string(), p);
        self
    }

    /// Also the profile of YAML `text` under `name`; `Err` with its diagnostics.
    pub fn try_with_text(self, name: &str, text: &str) -> Result<Profiles, Vec<Diagnostic>> {
        let p = profile_text(name, text)?.value;
        Ok(self.named(name, p))
    }

    /// Also the profile of YAML `text` under `name`; panics when it does not validate.
    pub fn with_text(self, name: &str, text: &str) -> Profiles {
        self.try_with_text(name, text)
            .unwrap_or_else(|d| panic!("profile {name} is refused: {d:?}"))
    }

    /// Last, `f` answers what nothing else does.
    pub fn or_else(
        mut self,
        f: impl Fn(&str) -> Result<Profile, ProfileError> + Send + Sync + 'static,
    ) -> Profiles {
        self.fallback = Some(Box::new(f));
        self
    }

    /// Compiles site `text` (named `file` in diagnostics) with these profiles; panics with the
    /// diagnostics when the site is refused.
    pub fn compile(&self, file: &str, text: &str) -> Policy {
        match site_text(file, text, self) {
            Ok(l) => l.value,
            Err(d) => panic!(
                "{file} does not compile:\n{}",
                d.iter().map(|d| format!("  {d}\n")).collect::<String>()
            ),
        }
    }
}

impl ProfileSource for Profiles {
    fn profile(&self, name: &str) -> Result<Profile, ProfileError> {
        if let Some(p) = self.inline.get(name) {
            return Ok(p.clone());
        }
        if let Some(p) = self.catalog.as_ref().and_then(|c| c.get(name)) {
            return Ok(p.clone());
        }
        if let (Some(base), true) = (&self.base, name.ends_with(".yaml")) {
            let path = base.join(name);
            return load_file(&path)
                .map(|l| l.value)
                .map_err(|e| ProfileError::file(path, e));
        }
        match &self.fallback {
            Some(f) => f(name),
            None => Err(ProfileError::NotInCatalog {
                known: self.inline.keys().cloned().collect(),
            }),
        }
    }
}

/// A site file compiled against the catalog and the profile files beside it.
pub fn compile_file(path: &Path) -> Policy {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Profiles::catalog()
        .files(path.parent().expect("a site file is in a folder"))
        .compile(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = "portolan: 1\nid: mini\nvendor: V\nproduct: P\nsources:\n  - {id: d, title: T, file: d.txt}\nendpoints: []\nflows: []\nlistens: none\n";

    #[test]
    fn inline_then_catalog_then_fallback() {
        let p = Profiles::catalog().with_text("mini", MINI).or_else(|n| {
            Err(ProfileError::NotMud {
                path: n.into(),
                reason: "fallback".into(),
            })
        });
        assert_eq!(p.profile("mini").map(|p| p.id).ok(), Some("mini".into()));
        assert_eq!(
            p.profile("oscar-templog-gateway").map(|p| p.id).ok(),
            Some("oscar-templog-gateway".into())
        );
        assert_eq!(
            p.profile("x").map(|p| p.id).map_err(|e| e.to_string()),
            Err("x is not a usable MUD file: fallback".into())
        );
        assert!(Profiles::none().profile("oscar-templog-gateway").is_err());
    }
}
