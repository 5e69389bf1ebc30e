//! Everything that reads, writes or applies nftables, shared by `lab`, `apply`, `verify` and
//! `enforce`.
//!
//! - [`schema`] and [`expr`]: a typed model of libnftables-json (`nft -j list ruleset`):
//!   tables, chains, sets and maps, rules, their statements and expressions. What the model
//!   does not know still parses, kept as raw JSON, so a reader can say "unsupported here".
//! - [`ruleset`]: a [`Ruleset`] read from a live namespace ([`read_live`]) or from a `.nft`
//!   file loaded into a scratch namespace ([`read_file`], [`scratch`]).
//! - [`exec`]: running `nft` in a namespace ([`Where`]).
//! - [`elements`] and [`commit`]: enforce's `device . peer` elements, written through one
//!   committer thread per namespace (libnftables in-process, batching concurrent requests).
//! - [`iptables`]: iptables rulesets typed from `iptables-save`, `ip6tables-save` and
//!   `ipset save`, for the readers that must also judge an iptables firewall.
//! - [`apply`]: `portolan apply SITE`, the atomic load of a ruleset into the host or a named
//!   namespace, with the previous table saved, stale objects removed in the same transaction
//!   (decided on the typed objects of [`table`]), and a `commit confirmed` style rollback
//!   timer; [`diff`] shows what a load would change without loading it.
//!
//! The table Portolan owns and the predicate saying which of its sets are DNS-filled come from
//! the emitter, which names them ([`portolan_emit::names`]); they are re-exported here so that
//! readers import them from the crate that reads tables.

pub mod apply;
pub mod commit;
pub mod diff;
pub mod elements;
pub mod error;
pub mod exec;
pub mod expr;
pub mod iptables;
pub(crate) mod netlink;
pub mod ruleset;
pub mod schema;
pub mod scratch;
pub mod table;

pub use error::{Error, Result};
pub use exec::Where;
pub use portolan_emit::names::is_dns_filled_set;
pub use ruleset::{read_file, read_live, read_table, read_text, Ruleset};
pub use schema::Family;

/// The table every Portolan object lives in, as `nft` commands spell it: `inet portolan`.
pub use portolan_emit::nftables::TABLE;

/// [`TABLE`]'s family.
pub const TABLE_FAMILY: Family = Family::Inet;

/// [`TABLE`]'s name.
pub fn table_name() -> &'static str {
    TABLE
        .strip_prefix(TABLE_FAMILY.as_str())
        .map(str::trim_start)
        .unwrap_or(TABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_inet_portolan() {
        assert_eq!(TABLE, "inet portolan");
        assert_eq!(table_name(), "portolan");
        assert_eq!(format!("{TABLE_FAMILY} {}", table_name()), TABLE);
    }
}
