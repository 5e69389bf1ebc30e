//! The `inet portolan` table as `apply` handles it: its listing as text (what is saved before
//! an apply and loaded again by a rollback), the same table typed, and the objects (sets, maps,
//! chains) it declares with what defines each, read from the typed model.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::exec::{self, Where};
use crate::ruleset::{read_table, Ruleset};
use crate::schema::{ChainType, DataType, Hook, Object as Json, SetFlag};
use crate::{is_dns_filled_set, table_name, TABLE_FAMILY};

/// The current `inet portolan` table as `nft list table` prints it, or `None` if there is
/// none.
pub fn list_table(w: &Where) -> Result<Option<String>> {
    exec::nft_output(w, &["list", "table", TABLE_FAMILY.as_str(), table_name()])
}

/// The current `inet portolan` table with each rule's handle (`nft -a list table`), to show
/// a rule as nft prints it.
pub fn list_table_with_handles(w: &Where) -> Result<Option<String>> {
    exec::nft_output(
        w,
        &["-a", "list", "table", TABLE_FAMILY.as_str(), table_name()],
    )
}

/// The current `inet portolan` table, typed, or `None` if there is none.
pub fn read(w: &Where) -> Result<Option<Ruleset>> {
    read_table(w, TABLE_FAMILY, table_name())
}

/// What kind of object of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Set,
    Map,
    Chain,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Set => "set",
            Kind::Map => "map",
            Kind::Chain => "chain",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What defines an object beyond its name: for a set or map what nft cannot change in place
/// (key type, value type, flags — a default element timeout implies `flags timeout`); for a
/// chain its hook, if it is a base chain (not the policy, which a reload may change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decl {
    Set {
        key: DataType,
        map: Option<DataType>,
        flags: BTreeSet<SetFlag>,
    },
    Chain {
        base: Option<(Option<ChainType>, Hook, Option<i32>)>,
    },
}

/// An object of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    pub decl: Decl,
}

impl Object {
    /// Portolan's DNS-filled sets (named by the emitter, `gk_sensorist_com_v4`): kept across
    /// reloads.
    pub fn dns_filled(&self) -> bool {
        self.kind == Kind::Set && is_dns_filled_set(&self.name)
    }

    /// `set NAME`, `map NAME`, `chain NAME`.
    pub fn label(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }
}

/// Objects by (kind, name).
pub type Objects = BTreeMap<(Kind, String), Object>;

/// The objects of the `inet portolan` table in a ruleset.
pub fn objects(r: &Ruleset) -> Objects {
    let mut out = Objects::new();
    let ours = |family, table: &str| family == TABLE_FAMILY && table == table_name();
    for o in &r.objects {
        let object = match o {
            Json::Set(s) | Json::Map(s) if ours(s.family, &s.table) => {
                let mut flags: BTreeSet<SetFlag> = s.flags.iter().cloned().collect();
                if s.timeout.is_some() {
                    flags.insert(SetFlag::Timeout);
                }
                Object {
                    kind: if s.is_map() { Kind::Map } else { Kind::Set },
                    name: s.name.clone(),
                    decl: Decl::Set {
                        key: s.key.clone(),
                        map: s.map.clone(),
                        flags,
                    },
                }
            }
            Json::Chain(c) if ours(c.family, &c.table) => Object {
                kind: Kind::Chain,
                name: c.name.clone(),
                decl: Decl::Chain {
                    base: c.hook.clone().map(|h| (c.kind.clone(), h, c.prio)),
                },
            },
            _ => continue,
        };
        out.insert((object.kind, object.name.clone()), object);
    }
    out
}

/// A listing without the parts that change by themselves (`expires …` of set elements), to
/// compare two listings of the same table.
pub fn normalize(listing: &str) -> String {
    let mut out = String::with_capacity(listing.len());
    let mut rest = listing;
    while let Some(i) = rest.find(" expires ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " expires ".len()..];
        let end = after.find([',', ' ', '}', '\n']).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list table inet portolan` (nftables 1.0.6) after loading: a DNS-filled set
    /// declared `flags timeout; timeout 3600s` with one element added at run time, an interval
    /// set, a base chain and a regular chain, and a table of another name.
    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "portolan", "handle": 9}}, {"set": {"family": "inet", "name": "gk_example_com_v4", "table": "portolan", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"], "timeout": 3600, "elem": [{"elem": {"val": "192.0.2.99", "expires": 3599}}]}}, {"set": {"family": "inet", "name": "s", "table": "portolan", "type": "ipv4_addr", "handle": 2, "flags": ["interval"], "elem": [{"prefix": {"addr": "1.2.3.0", "len": 24}}]}}, {"chain": {"family": "inet", "table": "portolan", "name": "forward", "handle": 3, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, {"chain": {"family": "inet", "table": "portolan", "name": "c", "handle": 4}}, {"rule": {"family": "inet", "table": "portolan", "chain": "forward", "handle": 5, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@s"}}, {"accept": null}]}}, {"table": {"family": "inet", "name": "other", "handle": 10}}, {"chain": {"family": "inet", "table": "other", "name": "x", "handle": 1}}]}"#;

    #[test]
    fn objects_of_a_listing() {
        let o = objects(&Ruleset::parse(LISTED, "test").expect("json"));
        let names: Vec<String> = o.values().map(Object::label).collect();
        assert_eq!(
            names,
            ["set gk_example_com_v4", "set s", "chain c", "chain forward"]
        );
        assert!(o[&(Kind::Set, "gk_example_com_v4".into())].dns_filled());
        assert!(!o[&(Kind::Set, "s".into())].dns_filled());
        assert_eq!(
            o[&(Kind::Set, "s".into())].decl,
            Decl::Set {
                key: DataType(vec!["ipv4_addr".into()]),
                map: None,
                flags: [SetFlag::Interval].into(),
            }
        );
        assert_eq!(
            o[&(Kind::Chain, "forward".into())].decl,
            Decl::Chain {
                base: Some((Some(ChainType::Filter), Hook::Forward, Some(0)))
            }
        );
        assert_eq!(
            o[&(Kind::Chain, "c".into())].decl,
            Decl::Chain { base: None }
        );
    }

    #[test]
    fn a_default_timeout_reads_as_flags_timeout() {
        // A set with a default timeout but no flags listed must compare equal to one with
        // `flags timeout`, or a reload would recreate (and empty) a DNS-filled set.
        let with_flag = Ruleset::parse(LISTED, "test").expect("json");
        let without = Ruleset::parse(
            &LISTED.replace(
                r#""flags": ["timeout"], "timeout": 3600"#,
                r#""timeout": 3600"#,
            ),
            "test",
        )
        .expect("json");
        let key = (Kind::Set, "gk_example_com_v4".to_string());
        assert_eq!(objects(&with_flag)[&key].decl, objects(&without)[&key].decl);
    }

    #[test]
    fn expiry_is_ignored_when_comparing() {
        let listing = "table inet portolan {\n\tset gk_example_com_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 9.9.9.9 timeout 1h expires 59m59s968ms, 9.9.9.8 }\n\t}\n}\n";
        let a = normalize(listing);
        let b = normalize(&listing.replace("59m59s968ms", "58m1s"));
        assert_eq!(a, b);
        assert!(!a.contains("expires"));
    }
}
