//! What the iptables output adds to the per-class chains to tie addresses to interfaces: the
//! spoofing check of each zone (`z4_<zone>` sets, `Z-<zone>` chains), DHCP discovery admitted
//! by interface and MAC, and the interface options of broadcast and multicast rules.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use portolan_model::ir::{Initiator, Mac, Policy};

use super::matches::{chain_base, interface, l4, labelled_log_prefix, set_nets};
use super::plan::ClassNames;
use super::ruleset::{line, push, Dispatch, IpSet, Table};
use super::{plain, T};
use crate::classes::Class;
use crate::names::{object, safe_text, Family};
use crate::zones::Ownership;
use crate::EmitError;

/// Options of `-i`/`-o` for a list of interfaces, one rule each; `[""]` when any.
pub(super) fn if_options(flag: &str, ifs: Option<&Vec<String>>) -> Vec<String> {
    match ifs {
        Some(v) if !v.is_empty() => v.iter().map(|i| format!("{flag} {i} ")).collect(),
        _ => vec![String::new()],
    }
}

/// Each zone's addresses arriving on another interface: logged and dropped, first thing in
/// `PORTOLAN-FORWARD` and `PORTOLAN-INPUT`.
pub(super) fn spoofing(
    policy: &Policy,
    tables: &mut BTreeMap<Family, Table>,
    dispatch: &mut BTreeMap<Family, Dispatch>,
    statics: &mut Vec<IpSet>,
    limit: &str,
) -> Result<(), EmitError> {
    let own = Ownership::of(policy, T)?;
    for fam in [Family::V4, Family::V6] {
        let t = tables.entry(fam).or_default();
        let d = dispatch.entry(fam).or_default();
        for (zi, zone) in own.zones.iter().enumerate() {
            let (mine, inner) = own.own_and_inner(zi);
            let mine: Vec<IpNet> = mine.into_iter().filter(|n| Family::of(n) == fam).collect();
            if mine.is_empty() {
                continue;
            }
            let set = object(&[&format!("z{}", fam.n()), &zone.id]);
            let mut elements: Vec<String> = mine
                .iter()
                .flat_map(set_nets)
                .map(|n| n.to_string())
                .collect();
            elements.extend(
                inner
                    .iter()
                    .filter(|n| Family::of(n) == fam)
                    .map(|n| format!("{n} nomatch")),
            );
            statics.push(IpSet {
                name: set.clone(),
                ty: "hash:net",
                fam,
                elements,
            });
            let chain = chain_base("Z", &zone.id);
            t.chain(&chain);
            let prefix = labelled_log_prefix("spoofed ", &zone.id)?;
            let ifc = interface(&zone.interface);
            t.add(
                &chain,
                limit,
                "portolan spoofed",
                &format!("LOG --log-prefix \"{prefix}\" --log-level info"),
            );
            t.add(&chain, "", "portolan spoofed", "DROP");
            d.spoof.push(format!(
                "-m set --match-set {set} src ! -i {ifc} -m comment --comment \"portolan spoofed {}\" -j {chain}",
                safe_text(T, "zone id", &zone.id)?
            ));
        }
    }
    Ok(())
}

/// A DHCP broadcast admitted on one interface for one flow.
type DhcpKey = (Option<String>, String, String);

/// Who may send a [`DhcpKey`]'s broadcast: the MACs, each group with MACs (its MACs and
/// IPv4 addresses, for its own-address broadcasts), and whether any MAC may.
#[derive(Default)]
struct DhcpFrom {
    macs: BTreeSet<Mac>,
    owners: Vec<(BTreeSet<Mac>, Vec<IpNet>)>,
    any: bool,
}

/// DHCP broadcasts in `PORTOLAN-INPUT`, as the nftables output has them: from 0.0.0.0 (a
/// client without an address, RFC 2131 sections 4.1 and 4.4.1) on the zone's interface,
/// from the groups' MACs where the site gives them (a note in `notes` where it does not); a
/// device's broadcast from its own address (REBINDING) goes through the dispatch to its
/// class's `-LOCAL` chain, so a group whose profile has no DHCP flow is dropped. On an
/// interface whose devices all have MACs, the own-address broadcasts of the groups with MACs
/// are admitted from their MACs and addresses, and other DHCP broadcasts go to
/// `PORTOLAN-UNLISTED`.
pub(super) fn dhcp(
    classes: &[Class],
    names: &[ClassNames],
    tables: &mut BTreeMap<Family, Table>,
    dispatch: &mut BTreeMap<Family, Dispatch>,
    notes: &mut Vec<String>,
    limit: &str,
) -> Result<(), EmitError> {
    let mut dhcp: BTreeMap<DhcpKey, DhcpFrom> = BTreeMap::new();
    let mut any_mac = crate::AnyMac::default();
    for (c, n) in classes.iter().zip(names) {
        for r in c
            .rules
            .iter()
            .filter(|r| r.is_dhcp_broadcast() && r.initiator == Initiator::Device)
        {
            let cm = safe_text(T, "comment", &r.provenance())?;
            for m in l4(r, Family::V4, true)?.unwrap_or_default() {
                let e = dhcp
                    .entry((n.interface.clone(), m, cm.clone()))
                    .or_default();
                for g in &c.groups {
                    if g.macs.is_empty() {
                        e.any = true;
                        any_mac.add(n.interface.as_deref(), cm.clone(), &plain(&g.id));
                    } else {
                        e.macs.extend(g.macs.iter().copied());
                        let v4: Vec<IpNet> = g
                            .addresses
                            .iter()
                            .filter(|a| Family::of(a) == Family::V4)
                            .copied()
                            .collect();
                        if !v4.is_empty() {
                            e.owners.push((g.macs.iter().copied().collect(), v4));
                        }
                    }
                }
            }
        }
    }
    notes.extend(any_mac.lines());
    if let Some(d) = dispatch.get_mut(&Family::V4) {
        let mut drops = Vec::new();
        // The lines that grow with the devices (one per MAC admitted, one per owner's address)
        // are deduplicated by hash, not by `push`'s scan of the list: 100,000 one-device
        // groups with MACs took 29 s to compile for iptables (`bench/growth.sh`).
        let mut seen: rustc_hash::FxHashSet<String> = d.dhcp.iter().cloned().collect();
        let mut once = |list: &mut Vec<String>, l: String| {
            portolan_model::work::visit(1);
            if seen.insert(l.clone()) {
                list.push(l);
            }
        };
        for ((ifc, m, cm), from) in &dhcp {
            let iif = ifc.as_ref().map(|i| format!("-i {i} ")).unwrap_or_default();
            let macs: Vec<String> = if from.any {
                vec![String::new()]
            } else {
                from.macs
                    .iter()
                    .map(|x| format!("-m mac --mac-source {x} "))
                    .collect()
            };
            for mac in macs {
                once(
                    &mut d.dhcp,
                    line(
                        "PORTOLAN-INPUT",
                        &format!("{iif}{mac}-s 0.0.0.0/32 -d 255.255.255.255 {m}"),
                        cm,
                        "ACCEPT",
                    ),
                );
            }
            if !dhcp.iter().any(|((i, _, _), x)| i == ifc && x.any) {
                for (macs, addrs) in &from.owners {
                    for x in macs {
                        for a in addrs {
                            once(
                                &mut d.dhcp,
                                line(
                                    "PORTOLAN-INPUT",
                                    &format!(
                                        "{iif}-m mac --mac-source {x} -s {a} -d 255.255.255.255 {m}"
                                    ),
                                    cm,
                                    "ACCEPT",
                                ),
                            );
                        }
                    }
                }
                push(
                    &mut drops,
                    line(
                        "PORTOLAN-INPUT",
                        &format!("{iif}-d 255.255.255.255 -p udp -m udp --dport 67"),
                        "portolan unlisted mac",
                        "PORTOLAN-UNLISTED",
                    ),
                );
            }
        }
        let unlisted = !drops.is_empty();
        d.dhcp.extend(drops);
        if unlisted {
            if let Some(t) = tables.get_mut(&Family::V4) {
                t.chain("PORTOLAN-UNLISTED");
                t.add(
                    "PORTOLAN-UNLISTED",
                    limit,
                    "portolan unlisted mac",
                    "LOG --log-prefix \"portolan unlisted mac: \" --log-level info",
                );
                t.add("PORTOLAN-UNLISTED", "", "portolan unlisted mac", "DROP");
            }
        }
    }
    Ok(())
}
