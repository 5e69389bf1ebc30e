//! `portolan enforce --status`: the live `device . peer` (and `device . peer . port`) elements, read from the kernel's
//! sets (not from the daemon, which may not be running), each with the group and
//! `profile/flow` of the rule whose set holds it and the seconds it has left.

use std::net::IpAddr;

use portolan_emit::nftables::NameScope;
use portolan_nft::elements::live_pairs;
use portolan_nft::Where;
use serde::Serialize;

use crate::Error;

/// One live element.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Live {
    /// The device's group (`None`: a set of another policy, or a device no group holds).
    pub group: Option<String>,
    pub device: IpAddr,
    pub peer: IpAddr,
    /// The peer's port, for an element of a peer learnt from a DNS SRV record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `profile/flow` of the rule the set belongs to.
    pub flow: Option<String>,
    pub set: String,
    /// Seconds left, as the kernel says.
    pub expires: Option<u64>,
    pub timeout: Option<u64>,
}

/// The live elements in `at`, by group, device and peer.
pub fn status(scopes: &[NameScope], at: &Where) -> Result<Vec<Live>, Error> {
    let mut out: Vec<Live> = live_pairs(at)?
        .into_iter()
        .map(|p| {
            let scope = scopes
                .iter()
                .find(|s| s.addresses.iter().any(|a| a.contains(&p.device)));
            let flow = scope.and_then(|s| {
                s.rules
                    .iter()
                    .find(|r| r.sets.iter().any(|(_, n)| *n == p.set))
                    .map(|r| r.provenance.clone())
            });
            Live {
                group: scope.map(|s| s.group.clone()),
                device: p.device,
                peer: p.peer,
                port: p.port,
                flow,
                set: p.set,
                expires: p.expires,
                timeout: p.timeout,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.group, a.device, a.peer, &a.set).cmp(&(&b.group, b.device, b.peer, &b.set))
    });
    Ok(out)
}
