//! Profile declarations nothing uses: a feature no flow is conditioned on, a param no host,
//! port, protocol or region condition refers to. Warnings, like unused endpoints: a site could
//! enable or set them and change nothing.

use std::collections::BTreeSet;

use super::pos;
use crate::diag::{Code, Sink};
use crate::ports::PortSpec;
use crate::profile::{Condition, Endpoint, Flow, ListenPorts, Listens};
use crate::protocol::Protocol;
use crate::raw::RawProfile;
use crate::syntax::template_params;

/// Features no flow is conditioned on and params nothing refers to: warnings, like unused
/// endpoints, since a site could enable or set them and change nothing.
pub(super) fn unused_declarations(
    sink: &mut Sink,
    raw: &RawProfile,
    endpoints: &[Endpoint],
    flows: &[Flow],
    listens: &Listens,
) {
    for f in &raw.features {
        let used = flows.iter().any(|fl| {
            fl.conditions
                .iter()
                .flat_map(Condition::leaves)
                .any(|c| matches!(c, Condition::Feature(x) if *x == f.id.value))
        });
        if !used {
            sink.warning(
                pos(&f.id),
                Code::UnusedFeature,
                format!("feature `{}` is the condition of no flow", f.id.value),
                "remove it, or add `conditions: [{feature: ...}]` to the flows it enables",
            );
        }
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    for e in endpoints {
        for h in e.hosts.iter().chain(&e.domains) {
            used.extend(
                template_params(h)
                    .unwrap_or_default()
                    .into_iter()
                    .map(String::from),
            );
        }
    }
    let mut refer = |p: &Protocol, specs: &[&PortSpec]| {
        if let Protocol::Param(x) = p {
            used.insert(x.clone());
        }
        for s in specs {
            used.extend(s.params().map(String::from));
        }
    };
    for fl in flows {
        refer(&fl.protocol, &[&fl.ports, &fl.src_ports]);
    }
    if let Listens::Entries(entries) = listens {
        for l in entries {
            match &l.ports {
                ListenPorts::Ports(p) => refer(&l.protocol, &[p]),
                ListenPorts::Closed => refer(&l.protocol, &[]),
            }
        }
    }
    if flows.iter().any(|fl| {
        fl.conditions
            .iter()
            .flat_map(Condition::leaves)
            .any(|c| matches!(c, Condition::Region(_)))
    }) {
        used.insert("region".to_string());
    }
    for p in &raw.params {
        if !used.contains(&p.id.value) {
            sink.warning(
                pos(&p.id),
                Code::UnusedParam,
                format!(
                    "param `{}` is referred to by no host, port, protocol or region condition",
                    p.id.value
                ),
                "remove it, or refer to it as `{id}` where the value belongs",
            );
        }
    }
}
