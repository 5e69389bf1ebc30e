//! OpenWrt back end (firewall4, nftables; OpenWrt 22.03 and later): what a router loads to
//! enforce the policy next to its own zones.
//!
//! - `etc/nftables.d/50-portolan.nft`: fw4 includes `/etc/nftables.d/*.nft` inside its
//!   `table inet fw4`, so the file holds Portolan's nftables ruleset (the same plan as
//!   `--target nftables`) as table-level declarations, every set, map and chain named
//!   `portolan_…`. Its base chains hook forward and input one priority before fw4's
//!   (`filter - 1`) with policy accept: the devices' traffic that no profile allows is
//!   dropped there (a drop is final), and what it accepts, with all other traffic, still
//!   meets fw4's zones and forwardings, which must allow the flows (Portolan only narrows).
//! - `etc/config/dhcp-portolan`: `config ipset` sections to add to `/etc/config/dhcp`. The
//!   dnsmasq init script turns each into `--nftset=/<domains>/<4|6>#inet#fw4#<set>` (the
//!   family from the set name's `_v4`/`_v6`; its `dnsmasq_ipset_add`), so dnsmasq adds every
//!   address it resolves for the profiles' names to the include's sets, as `--target
//!   dnsmasq` does for `--target nftables`.
//!
//! fw4 rebuilds its whole table on every reload: the name sets start empty and fill again at
//! the devices' next lookups (addresses already resolved stay reachable through conntrack
//! for established connections only).

use std::fmt::Write as _;

use portolan_model::ir::Policy;

use crate::nftables::FW4_PREFIX;
use crate::{EmitError, File, Options};

/// Where fw4 reads includes from, and the file written there.
pub const INCLUDE: &str = "etc/nftables.d/50-portolan.nft";
/// The UCI sections to merge into `/etc/config/dhcp`.
pub const DHCP: &str = "etc/config/dhcp-portolan";

/// A UCI single-quoted value (names and set names are checked hostnames and object names;
/// a quote would still be refused).
fn uci(v: &str) -> Result<String, EmitError> {
    if v.contains(['\'', '\n', '\r']) {
        return Err(EmitError::Unsafe {
            target: "openwrt",
            what: "UCI value",
            value: v.to_string(),
        });
    }
    Ok(format!("'{v}'"))
}

/// The `config ipset` sections.
fn dhcp(policy: &Policy) -> Result<String, EmitError> {
    let mut o = format!(
        "# Portolan site {}: dnsmasq fills the fw4 include's name sets. Add to /etc/config/dhcp.\n",
        policy.site.replace(['\n', '\r'], " ")
    );
    for (domains, sets) in crate::dnsmasq::fills(policy)? {
        o.push_str("\nconfig ipset\n");
        for s in &sets {
            // `4#inet#portolan#<set>`: the set is the last part.
            let name = s.rsplit('#').next().unwrap_or(s);
            let _ = writeln!(o, "\tlist name {}", uci(&format!("{FW4_PREFIX}{name}"))?);
        }
        for d in &domains {
            let _ = writeln!(o, "\tlist domain {}", uci(d)?);
        }
        o.push_str("\toption table 'fw4'\n\toption table_family 'inet'\n");
    }
    Ok(o)
}

pub fn files(policy: &Policy, opts: &Options) -> Result<Vec<File>, EmitError> {
    Ok(vec![
        File {
            path: INCLUDE.into(),
            text: crate::nftables::fw4_include(policy, opts)?,
        },
        File {
            path: DHCP.into(),
            text: dhcp(policy)?,
        },
    ])
}

/// Both files, each after a `# ==> path <==` line.
pub fn emit(policy: &Policy, opts: &Options) -> Result<String, EmitError> {
    let mut o = String::new();
    for f in files(policy, opts)? {
        let _ = writeln!(o, "# ==> {} <==", f.path);
        o.push_str(&f.text);
    }
    Ok(o)
}
