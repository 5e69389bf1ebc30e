//! A ruleset as the kernel holds it, typed: parsed from `nft -j list ruleset` JSON, read from
//! a live namespace, or from a `.nft` file by loading it into a scratch namespace.
//!
//! Why a scratch namespace for a file: `nft -j -c -f FILE` (nft 1.0.6) checks the file but
//! prints nothing, and `nft -j --echo -c -f FILE` prints only the `metainfo` object; a `list
//! ruleset` appended to the file lists nft's own cache (every handle 0), not what the kernel
//! made of it (nft drops a `meta l4proto` a port match implies, merges sets, sorts elements).
//! So the file is loaded into a namespace created for the purpose, listed, and the namespace
//! removed.

use std::path::Path;

use crate::error::{Error, Result};
use crate::exec::{self, Where};
use crate::expr::Statement;
use crate::schema::{Chain, Family, Hook, Metainfo, Nftables, Object, Rule, Set, Table};
use crate::scratch::Scratch;

/// Every object of a listing, in `nft`'s order (tables, then each table's sets, maps,
/// chains and rules).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ruleset {
    pub objects: Vec<Object>,
}

impl Ruleset {
    /// Parses libnftables-json (`{"nftables": [...]}`). `source` names where it came from, for
    /// the error.
    pub fn parse(json: &str, source: &str) -> Result<Ruleset> {
        let n: Nftables = serde_json::from_str(json).map_err(|e| Error::Json {
            command: source.to_string(),
            source: e,
        })?;
        Ok(Ruleset {
            objects: n.nftables,
        })
    }

    /// Back to libnftables-json.
    pub fn to_json(&self) -> String {
        let n = Nftables {
            nftables: self.objects.clone(),
        };
        serde_json::to_string(&n).unwrap_or_default()
    }

    pub fn metainfo(&self) -> Option<&Metainfo> {
        self.objects.iter().find_map(|o| match o {
            Object::Metainfo(m) => Some(m),
            _ => None,
        })
    }

    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.objects.iter().filter_map(|o| match o {
            Object::Table(t) => Some(t),
            _ => None,
        })
    }

    pub fn chains(&self) -> impl Iterator<Item = &Chain> {
        self.objects.iter().filter_map(|o| match o {
            Object::Chain(c) => Some(c),
            _ => None,
        })
    }

    /// Sets and maps.
    pub fn sets(&self) -> impl Iterator<Item = &Set> {
        self.objects.iter().filter_map(|o| match o {
            Object::Set(s) | Object::Map(s) => Some(s),
            _ => None,
        })
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.objects.iter().filter_map(|o| match o {
            Object::Rule(r) => Some(r),
            _ => None,
        })
    }

    /// The objects this model does not know.
    pub fn unknown_objects(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.objects.iter().filter_map(|o| match o {
            Object::Unknown(v) => Some(v),
            _ => None,
        })
    }

    pub fn chain(&self, family: Family, table: &str, name: &str) -> Option<&Chain> {
        self.chains()
            .find(|c| c.family == family && c.table == table && c.name == name)
    }

    /// The base chains of `hook`, in the order the kernel runs them: lower priority first
    /// (chains of equal priority run in an order the kernel does not promise).
    pub fn base_chains(&self, hook: &Hook) -> Vec<&Chain> {
        let mut v: Vec<&Chain> = self
            .chains()
            .filter(|c| c.hook.as_ref() == Some(hook))
            .collect();
        v.sort_by_key(|c| c.prio.unwrap_or(0));
        v
    }

    /// The set or map `name` of a table.
    pub fn set(&self, family: Family, table: &str, name: &str) -> Option<&Set> {
        self.sets()
            .find(|s| s.family == family && s.table == table && s.name == name)
    }

    /// The rules of a chain, in order.
    pub fn rules_of<'a>(
        &'a self,
        family: Family,
        table: &'a str,
        chain: &'a str,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules()
            .filter(move |r| r.family == family && r.table == table && r.chain == chain)
    }

    /// Only the objects of one table.
    pub fn table(&self, family: Family, name: &str) -> Ruleset {
        let objects = self
            .objects
            .iter()
            .filter(|o| match o {
                Object::Metainfo(_) => true,
                Object::Table(t) => t.family == family && t.name == name,
                Object::Chain(c) => c.family == family && c.table == name,
                Object::Rule(r) => r.family == family && r.table == name,
                Object::Set(s) | Object::Map(s) => s.family == family && s.table == name,
                Object::Element(e) => e.family == family && e.table == name,
                Object::Unknown(_) => false,
            })
            .cloned()
            .collect();
        Ruleset { objects }
    }

    /// The rules holding a statement or expression this model does not know, with the
    /// statements' positions: what a reader must report as "unsupported here".
    pub fn unsupported(&self) -> impl Iterator<Item = (&Rule, Vec<(usize, &Statement)>)> {
        self.rules().filter_map(|r| {
            let v: Vec<_> = r.unknown_statements().collect();
            (!v.is_empty()).then_some((r, v))
        })
    }
}

/// `nft -j ARGS` in `w`, parsed; `None` when nft says the object does not exist.
fn list_json(w: &Where, args: &[&str]) -> Result<Option<Ruleset>> {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let shown = exec::show(&w.command("nft", &all));
    match exec::nft_output(w, &all)? {
        Some(json) => Ruleset::parse(&json, &shown).map(Some),
        None => Ok(None),
    }
}

/// The whole ruleset of a namespace (`nft -j list ruleset`).
pub fn read_live(w: &Where) -> Result<Ruleset> {
    Ok(list_json(w, &["list", "ruleset"])?.unwrap_or_default())
}

/// One table of a namespace (`nft -j list table FAMILY NAME`), or `None` if there is none.
pub fn read_table(w: &Where, family: Family, name: &str) -> Result<Option<Ruleset>> {
    list_json(w, &["list", "table", family.as_str(), name])
}

/// A `.nft` file as the kernel lists it once loaded: loaded into a scratch namespace,
/// listed, and the namespace removed. Nothing is loaded anywhere else. A file nft refuses
/// is [`Error::Rejected`].
pub fn read_file(file: &Path) -> Result<Ruleset> {
    let scratch = Scratch::new("read")?;
    exec::run_file(&scratch.at(), file, false)?;
    let r = read_live(&scratch.at())?;
    scratch.remove()?;
    Ok(r)
}

/// A ruleset text as the kernel lists it once loaded (see [`read_file`]).
pub fn read_text(text: &str) -> Result<Ruleset> {
    let scratch = Scratch::new("read")?;
    let file = scratch.write("ruleset.nft", text)?;
    exec::run_file(&scratch.at(), &file, false)?;
    let r = read_live(&scratch.at())?;
    scratch.remove()?;
    Ok(r)
}
