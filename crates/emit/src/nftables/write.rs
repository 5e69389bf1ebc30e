//! Writing the nftables output: the header (what is documented, not enforced, and where
//! DHCP is admitted from any MAC), the DNS-filled sets, the flush, and the table in an order
//! `nft -f` accepts in one transaction.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use portolan_model::ir::Policy;

use super::{Sets, T, TABLE};
use crate::names::safe_text;
use crate::{EmitError, Options};

/// Everything the output holds, gathered.
pub(super) struct Written<'a> {
    pub(super) policy: &'a Policy,
    pub(super) opts: &'a Options,
    pub(super) sets: &'a Sets,
    pub(super) maps: &'a BTreeMap<String, Vec<String>>,
    pub(super) chains: &'a [(String, Vec<String>)],
    pub(super) notes: &'a [String],
    pub(super) forward_cast: &'a [String],
    pub(super) input_dhcp: &'a [String],
    pub(super) input_unlisted: &'a [String],
    pub(super) has_v6: bool,
    pub(super) limit: &'a str,
}

/// (type, flags) of a map by its name.
fn map_kind(m: &str) -> (&'static str, bool) {
    let ty = if m.contains('4') {
        "ipv4_addr"
    } else {
        "ipv6_addr"
    };
    (ty, !m.ends_with('h'))
}

pub(super) fn write(w: Written) -> Result<String, EmitError> {
    let mut o = String::new();
    let site = safe_text(T, "site name", &w.policy.site)?;
    writeln!(o, "#!/usr/sbin/nft -f").ok();
    writeln!(
        o,
        "# Portolan policy for site {site}: generated, do not edit."
    )
    .ok();
    writeln!(
        o,
        "# Every rule's comment names the profile/flow row it enforces."
    )
    .ok();
    for d in &w.policy.documented {
        writeln!(
            o,
            "# not enforced here: {}/{} for {}: {}",
            d.profile,
            d.flow,
            d.group,
            d.reason.replace(['\n', '\r'], " ")
        )
        .ok();
    }
    for n in w.notes {
        writeln!(o, "{n}").ok();
    }
    writeln!(o, "\n# 1. The table and the DNS-filled sets: declared, never flushed, so their elements survive a reload.").ok();
    writeln!(o, "table {TABLE} {{").ok();
    let dns_timeout = w.opts.dns_timeout_secs();
    for s in w.sets.dynamic.values() {
        writeln!(
            o,
            "\tset {} {{\n\t\ttype {}\n\t\tflags timeout\n\t\ttimeout {dns_timeout}s\n\t}}",
            s.name, s.ty
        )
        .ok();
    }
    writeln!(o, "}}").ok();
    for s in w.sets.dynamic.values().filter(|s| !s.elements.is_empty()) {
        writeln!(
            o,
            "add element {TABLE} {} {{ {} }}",
            s.name,
            s.elements.join(", ")
        )
        .ok();
    }
    writeln!(o, "\n# 2. Every rule goes; chains are declared, static sets and maps emptied, all refilled below.").ok();
    writeln!(o, "flush table {TABLE}").ok();
    if !w.sets.statics.is_empty() || !w.maps.is_empty() {
        writeln!(o, "table {TABLE} {{").ok();
        // A map's elements may only jump to chains that existed when the map was declared.
        for (name, _) in w.chains {
            writeln!(o, "\tchain {name} {{ }}").ok();
        }
        for s in w.sets.statics.values() {
            writeln!(o, "\tset {} {{ type {}; flags interval; }}", s.name, s.ty).ok();
        }
        for m in w.maps.keys() {
            let (ty, interval) = map_kind(m);
            let flags = if interval { " flags interval;" } else { "" };
            writeln!(o, "\tmap {m} {{ type {ty} : verdict;{flags} }}").ok();
        }
        writeln!(o, "}}").ok();
        for s in w.sets.statics.values() {
            writeln!(o, "flush set {TABLE} {}", s.name).ok();
        }
        for m in w.maps.keys() {
            writeln!(o, "flush map {TABLE} {m}").ok();
        }
    }
    writeln!(
        o,
        "\n# 3. Static sets, and the chains of zones, device classes and groups."
    )
    .ok();
    writeln!(o, "table {TABLE} {{").ok();
    for s in w.sets.statics.values() {
        writeln!(
            o,
            "\tset {} {{\n\t\ttype {}\n\t\tflags interval\n\t\telements = {{ {} }}\n\t}}",
            s.name,
            s.ty,
            s.elements.join(", ")
        )
        .ok();
    }
    for (name, rules) in w.chains {
        writeln!(o, "\tchain {name} {{").ok();
        for r in rules {
            writeln!(o, "\t\t{r}").ok();
        }
        writeln!(o, "\t}}").ok();
    }
    writeln!(o, "}}").ok();
    writeln!(
        o,
        "\n# 4. The maps that jump to those chains, and the hooks that look them up."
    )
    .ok();
    writeln!(o, "table {TABLE} {{").ok();
    for (m, els) in w.maps {
        let (ty, interval) = map_kind(m);
        let flags = if interval { "\t\tflags interval\n" } else { "" };
        writeln!(
            o,
            "\tmap {m} {{\n\t\ttype {ty} : verdict\n{flags}\t\telements = {{ {} }}\n\t}}",
            els.join(",\n\t\t\t")
        )
        .ok();
    }
    let vmaps = |o: &mut String, prefix: &str, names: &[&str], dir: &str| {
        for n in names {
            for f in ["4h", "4", "6h", "6"] {
                let m = format!("{n}{f}");
                if w.maps.contains_key(&m) {
                    let ipk = if f.starts_with('4') { "ip" } else { "ip6" };
                    writeln!(o, "\t\t{prefix}{ipk} {dir} vmap @{m}").ok();
                }
            }
        }
    };
    writeln!(o, "\tchain forward {{").ok();
    writeln!(
        o,
        "\t\ttype filter hook forward priority filter; policy drop;"
    )
    .ok();
    vmaps(&mut o, "", &["zones"], "saddr");
    writeln!(
        o,
        "\t\tct state established,related accept comment \"return traffic\""
    )
    .ok();
    writeln!(o, "\t\tct state invalid drop").ok();
    for r in w.forward_cast {
        writeln!(o, "\t\t{r}").ok();
    }
    vmaps(&mut o, "", &["fwd_src"], "saddr");
    vmaps(&mut o, "", &["fwd_dst"], "daddr");
    vmaps(&mut o, "", &["drop_src"], "saddr");
    vmaps(&mut o, "", &["drop_dst"], "daddr");
    writeln!(
        o,
        "\t\t{} log prefix \"portolan unmatched: \" level info",
        w.limit
    )
    .ok();
    writeln!(o, "\t}}").ok();
    writeln!(o, "\tchain input {{").ok();
    writeln!(
        o,
        "\t\ttype filter hook input priority filter; policy accept;"
    )
    .ok();
    // The firewall's own packets to its own addresses come in on `lo`.
    vmaps(&mut o, "iif != \"lo\" ", &["zones"], "saddr");
    writeln!(o, "\t\tct state established,related accept").ok();
    writeln!(o, "\t\tct state invalid drop").ok();
    for r in w.input_dhcp.iter().chain(w.input_unlisted) {
        writeln!(o, "\t\t{r}").ok();
    }
    // IPv6 devices resolve the firewall's link-layer address (and answer its own
    // solicitations) with ICMPv6 neighbour discovery, which plays ARP's role and, unlike ARP,
    // passes this chain: without it no IPv6 device reaches the firewall or through it. Only
    // on-link messages (hop limit 255, RFC 4861).
    if w.has_v6 {
        writeln!(o, "\t\ticmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }} ip6 hoplimit 255 accept comment \"IPv6 neighbour discovery\"").ok();
    }
    vmaps(&mut o, "", &["local_src", "drop_src"], "saddr");
    writeln!(o, "\t}}").ok();
    writeln!(o, "}}").ok();
    Ok(o)
}
