//! iptables back end: `ipset restore`, `iptables-restore` and `ip6tables-restore` input in one
//! file, with the semantics of the nftables back end.
//!
//! # Format and loading
//!
//! The output is one text file of four sections. Each starts with a marker line `#> NAME` and
//! runs to the next marker; every other line starting with `#` is a comment, which all three
//! tools skip. [`section`] extracts one.
//!
//! | section     | load with                    | what it does                                  |
//! |-------------|------------------------------|-----------------------------------------------|
//! | `ipset`     | `ipset restore -exist`       | creates and refills the sets (run it first)   |
//! | `iptables`  | `iptables-restore -w`        | replaces the IPv4 `filter` table, one commit  |
//! | `ip6tables` | `ip6tables-restore -w`       | replaces the IPv6 `filter` table, one commit  |
//! | `dnsmasq`   | copy into `dnsmasq.conf`     | `ipset=` lines filling the name sets          |
//!
//! ```sh
//! sec() { awk -v s="#> $1" '/^#> /{on=($0==s);next} on' policy.iptables; }
//! sec ipset | ipset restore -exist && sec iptables | iptables-restore -w \
//!   && sec ip6tables | ip6tables-restore -w
//! ```
//!
//! # Layout
//!
//! - Spoofing first, as in nftables: each zone that names an interface has a `hash:net` set of
//!   its addresses (`z4_<zone>`: its networks, or its devices where it lists none; another
//!   zone's prefixes nested inside are `nomatch`), and `PORTOLAN-FORWARD` and `PORTOLAN-INPUT`
//!   start with one rule per zone sending its addresses that arrive on another interface to
//!   `Z-<zone>` (log `portolan spoofed <zone>: `, drop).
//! - Groups of one zone with identical rules share a *class*, as in nftables. Each class has a
//!   `hash:net` set of its devices per family (`d4_<group>`), and chains named after its first
//!   group: `K-<group>-OUT` (device initiates), `-IN` (peer initiates), `-LOCAL` (services of
//!   the firewall), `-DROPS` and `-DROPD` (log and drop, device as source or destination).
//!   `PORTOLAN-FORWARD` and `PORTOLAN-INPUT`, jumped to from the built-in chains, dispatch with
//!   one `-m set --match-set` rule per class: a packet costs a number of set lookups that
//!   grows with the number of classes, never with the number of devices.
//! - Broadcast and multicast rules match the broadcast or group address and the zone's
//!   interface (`-i`, a site's trailing `*` written `+`); DHCP discovery is admitted in
//!   `PORTOLAN-INPUT` from the devices' MACs where the site gives them (`-m mac`, one rule per
//!   MAC), and other DHCP broadcasts on that interface go to `PORTOLAN-UNLISTED` (log, drop).
//! - Static peers are `hash:net` sets, or `hash:net,port` when the flow has ports (matched
//!   `dst,dst` or `src,dst`). Hostnames and wildcard domains are `hash:ip` sets with a default
//!   timeout ([`Options::dns_timeout`], one hour), named as the nftables sets are, filled at
//!   compile time (`--resolve`, each element with its record's TTL) or by dnsmasq (`ipset=`
//!   lines of the last section; those elements get the default timeout).
//! - Established and related traffic is accepted, invalid traffic dropped; a device's
//!   unmatched traffic is logged, rate-limited, with the prefix `portolan <group>: `, then
//!   dropped. Every rule carries `-m comment --comment "profile/flow"`.
//!
//! # Reloading
//!
//! The name sets are created with `-exist` and never flushed, so their elements survive a
//! reload, as in nftables. Each static set is filled in a twin (`t_<name>`) and swapped in
//! with `ipset swap`, so a set never appears half-filled. A set's name says its type (`d`,
//! `s`: `hash:net`; `p`: `hash:net,port`; `n`, `w`: `hash:ip`) and family, so a reload never
//! meets an existing set of another type.
//!
//! # Limits against nftables
//!
//! - Two commits per family, not one transaction: between `ipset restore` and
//!   `iptables-restore` the old rules already see the new static sets' contents.
//! - The restore input replaces the whole `filter` table (nftables owns only `inet portolan`):
//!   other rules in that table are removed. Built-in policies: `FORWARD` drop, `INPUT` and
//!   `OUTPUT` accept.
//! - Dispatch costs one set lookup per class (nftables: one verdict-map lookup). Dropped
//!   traffic of a class shared by several groups walks that class's addresses to find the log
//!   prefix (one rule per address), and each address has its own log rate bucket.
//! - `--log-prefix` holds 29 characters: a group id past 18 characters is written as its
//!   first 9 characters, `~` and a hash of the whole id, so prefixes stay distinct.
//! - ipset has no interval sets: a `hash:net,port` set stores each port of a range; flows
//!   whose ranges would need more than 4096 entries match the ports in the rule instead, with
//!   `multiport` (15 ports or ranges per rule). `hash:net` cannot hold a /0, so `any` is
//!   stored as its two halves.
//! - A set's parameters are fixed when it is created: changing `dns_timeout` needs the name
//!   sets destroyed first (`ipset restore -exist` refuses to redeclare them otherwise).
//! - Sets stay after the site stops using them (a set cannot be destroyed while the old rules
//!   refer to it); `ipset destroy` the unreferenced ones to tidy up.
//!
//! # Code
//!
//! The module plans the output as a value first (`plan.rs`: a [`ruleset::Ruleset`] of sets,
//! chains and dispatch rules per family), then renders it (`ruleset.rs`, `impl Display`).

use portolan_model::ir::Policy;

use crate::{EmitError, Options};

mod matches;
mod plan;
mod ruleset;
mod scope;

const T: &str = "iptables";
/// The section markers of the output, in order.
pub const SECTIONS: [&str; 4] = ["ipset", "iptables", "ip6tables", "dnsmasq"];
/// Above this many `address,port` entries a static set holds addresses only.
const PORT_SET_LIMIT: u64 = 4096;
/// `--log-prefix` length limit of the LOG target.
const LOG_PREFIX_MAX: usize = 29;

/// The text of one section (`ipset`, `iptables`, `ip6tables`, `dnsmasq`) of an output.
pub fn section(text: &str, name: &str) -> String {
    let marker = format!("#> {name}");
    let mut on = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#> ") {
            on = line == marker;
            continue;
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Printable ASCII for `#` comment lines.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Emits the ruleset.
pub fn emit(policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    Ok(plan::plan(policy, opts)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_on_markers() {
        let text = "# head\n#> ipset\ncreate a\n#> iptables\n*filter\nCOMMIT\n#> dnsmasq\nx\n";
        assert_eq!(section(text, "ipset"), "create a\n");
        assert_eq!(section(text, "iptables"), "*filter\nCOMMIT\n");
        assert_eq!(section(text, "ip6tables"), "");
        assert_eq!(section(text, "dnsmasq"), "x\n");
    }
}
