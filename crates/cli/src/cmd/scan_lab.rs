//! `scan --from ZONE`: the site's policy in the lab's namespaces (`portolan_lab::stand`),
//! the device's lab address answering in its zone's namespace (every port closed unless
//! something listens: a reset says the SYN got through the firewall), and the scan sent
//! from an address of ZONE that no device has and no narrower peer names (the lab's zone
//! stranger; for a zone without networks, such as the WAN, an address no rule names) — what
//! any host of that zone can reach.

use anyhow::{bail, Context};
use portolan_model::ir::Policy;
use portolan_scan::{Options, Scan};

pub fn run<F>(
    policy: &Policy,
    zone: &str,
    device: Option<&str>,
    opts: &Options,
    tick: &F,
) -> anyhow::Result<Scan>
where
    F: Fn(usize, usize) + Sync + Send + Clone + 'static,
{
    let Some(device) = device else {
        bail!("--from needs a site and --device")
    };
    if !policy.zones.iter().any(|z| z.id == zone) {
        let ids: Vec<&str> = policy.zones.iter().map(|z| z.id.as_str()).collect();
        bail!(
            "--from {zone}: no such zone in the site (zones: {})",
            ids.join(", ")
        );
    }
    let stand = portolan_lab::stand::Stand::up(policy, &|line| eprintln!("{line}"))?;
    let topo = &stand.topo;
    let (zi, space) = topo
        .spaces
        .iter()
        .enumerate()
        .find(|(_, s)| s.zone.as_deref() == Some(zone))
        .with_context(|| format!("the lab has no namespace for zone `{zone}`"))?;
    // The device's lab address: the site's own when it is one host, else the lab's pick.
    let hosts = topo.group_hosts.get(device).cloned().unwrap_or_default();
    let target = if hosts.contains(&opts.target) {
        opts.target
    } else {
        *hosts
            .iter()
            .find(|h| h.is_ipv4() == opts.target.is_ipv4())
            .with_context(|| format!("the lab placed no address of `{device}`"))?
    };
    // A host of the zone no device has and no narrower peer names; for a zone without
    // networks of its own (the WAN: everything else), an address no rule names.
    let source = topo
        .zone_strangers
        .iter()
        .chain(topo.book.strangers.iter())
        .find(|a| topo.host_space.get(a) == Some(&zi) && a.is_ipv4() == target.is_ipv4())
        .copied()
        .with_context(|| {
            format!(
                "zone `{zone}` has no free address in the lab to scan from (its networks are full)"
            )
        })?;
    if topo.host_space.get(&target) == Some(&zi) {
        eprintln!(
            "note: `{device}` sits in zone `{zone}` itself: the scan does not cross the firewall"
        );
    }
    let mut o = opts.clone();
    o.target = target;
    o.source = Some(source);
    let t = tick.clone();
    let scan = portolan_net::netns::run_in(&space.netns, move || {
        portolan_scan::run(&o, &|d, n| t(d, n))
    })??;
    drop(stand);
    Ok(scan)
}
