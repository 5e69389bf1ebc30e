//! Squid back end: the allow-list of an HTTP proxy the site's devices go through, as a
//! `squid.conf` fragment to `include` from the proxy's configuration (squid 5, whose
//! `http_port` carries `ssl-bump` for the TLS rules; Debian's `squid-openssl`).
//!
//! Which flows: where the site routes flows through its proxy (rules with `via_proxy`, the
//! devices' legs to it), exactly those, to their own peers and ports; every other flow stays
//! direct. Otherwise those a proxy can carry: device-initiated TCP flows to peers outside the
//! site (hostnames, wildcard domains, addresses in no zone of the site), except flows whose
//! profile says `proxy: {http: unsupported}`. Flows to the firewall, to the site's own
//! networks, and every other protocol stay with the firewall targets; the header lists them.
//! A flow whose profile says `connect_only` gets no line for plain requests.
//!
//! Per flow, one `http_access allow` line: the group's source addresses (`src`), the peers
//! (`dstdomain -n` for a hostname, exactly that host, never by a reverse lookup of an
//! address the device asked for; `dstdom_regex` `\.example\.com$` for a
//! wildcard domain: the names below it and not the apex, the profile's `*.` semantics; `dst`
//! for addresses) and the flow's ports (`port`), for `CONNECT` requests (TLS and any other
//! TCP stream), and also plain requests for port 80. Then `http_access deny all`: everything
//! else gets 403 (on an `ssl-bump` port squid accepts a denied CONNECT and serves the 403
//! inside TLS under its own certificate, which a device that checks its server refuses). TLS is never decrypted: after a `peek` at the client's hello, a connection
//! is `splice`d (passed through untouched) only when its SNI is one of the flow's names (or
//! its destination one of the flow's addresses, for flows without names), from the flow's
//! group and to its ports; any other TLS connection is `terminate`d. Flows whose profile
//! says `tls: {inspection: forbidden}` are named in their comment: the splice is what they
//! need.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ipnet::IpNet;
use portolan_model::ir::{Initiator, IpProto, Peers, Policy, PortRange, Rule};
use portolan_model::profile::{Inspection, Proxy, Support};

use crate::names::{safe_hostname, safe_text, Family};
use crate::{EmitError, Options};

const T: &str = "squid";

/// A squid ACL name from id parts: `pl_` and the parts, anything outside `[a-z0-9_-]`
/// replaced; the index keeps names distinct.
fn acl(kind: &str, n: usize, id: &str) -> String {
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("pl_{kind}{n}_{id}")
}

/// `example.com` → `\.example\.com$`: names below the domain, not the domain itself.
fn below(domain: &str) -> String {
    format!("\\.{}$", domain.replace('.', "\\."))
}

fn ports_text(ports: &[PortRange]) -> String {
    if ports.is_empty() {
        return "1-65535".into();
    }
    ports
        .iter()
        .map(PortRange::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `a` lies in one of the site's zone networks.
fn in_site(policy: &Policy, a: &IpNet) -> bool {
    policy
        .zones
        .iter()
        .flat_map(|z| &z.networks)
        .any(|n| n.contains(a))
}

/// The profile's `proxy:` block of the rule's flow.
fn flow_proxy<'a>(policy: &'a Policy, r: &Rule) -> Option<&'a Proxy> {
    policy
        .profiles
        .get(&r.profile)
        .and_then(|p| p.flows.iter().find(|f| f.id == r.flow))
        .and_then(|f| f.proxy.as_ref())
}

/// What the proxy admits for a rule it carries: the peers, the ports, and whether only
/// `CONNECT` is allowed.
struct Carried<'a> {
    peers: &'a Peers,
    ports: &'a [PortRange],
    connect_only: bool,
}

/// Whether the proxy carries `r`, and if not, why. Where the site routes flows through its
/// proxy (`proxied`: some rule is a leg to it), the proxy carries exactly those flows, to
/// their own peers and ports; the others are the firewall's. Otherwise every device-opened
/// TCP flow to peers outside the site, except those whose profile says they cannot use a
/// proxy.
fn carried<'a>(
    policy: &'a Policy,
    r: &'a Rule,
    proxied: bool,
) -> Result<Carried<'a>, &'static str> {
    let fp = flow_proxy(policy, r);
    if let Some(leg) = &r.via_proxy {
        if leg.peers.names.is_empty()
            && leg.peers.wildcards.is_empty()
            && leg.peers.prefixes.is_empty()
        {
            return Err("to the firewall");
        }
        return Ok(Carried {
            peers: &leg.peers,
            ports: &leg.ports,
            connect_only: leg.connect_only,
        });
    }
    if proxied {
        return Err("direct: the site does not route it through the proxy");
    }
    if fp.is_some_and(|p| p.http == Support::Unsupported) {
        return Err("the profile says it cannot use a proxy");
    }
    if r.initiator != Initiator::Device {
        return Err("opened by the peer");
    }
    if r.protocol != IpProto::TCP {
        return Err("not TCP");
    }
    if r.broadcast || !r.multicast.is_empty() {
        return Err("broadcast or multicast");
    }
    let outside = r.peers.prefixes.iter().any(|p| !in_site(policy, p));
    if r.peers.names.is_empty() && r.peers.wildcards.is_empty() && !outside {
        return Err("to the firewall or the site's own networks");
    }
    Ok(Carried {
        peers: &r.peers,
        ports: &r.ports,
        connect_only: fp.is_some_and(|p| p.connect_only),
    })
}

fn inspection_forbidden(policy: &Policy, r: &Rule) -> bool {
    policy
        .profiles
        .get(&r.profile)
        .and_then(|p| p.flows.iter().find(|f| f.id == r.flow))
        .and_then(|f| f.tls.as_ref())
        .and_then(|t| t.inspection)
        == Some(Inspection::Forbidden)
}

pub fn emit(policy: &Policy, _opts: &Options) -> Result<String, EmitError> {
    let mut acls = String::new();
    let mut access = String::new();
    let mut bump = String::new();
    let mut left: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut srcs: BTreeMap<(String, Option<Family>), String> = BTreeMap::new();
    let groups: BTreeMap<&str, &portolan_model::ir::Group> =
        policy.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let proxied = policy.rules.iter().any(|r| r.via_proxy.is_some());
    for (i, r) in policy.rules.iter().enumerate() {
        let n = i + 1;
        let c = match carried(policy, r, proxied) {
            Ok(c) => c,
            Err(why) => {
                left.entry(why).or_default().insert(r.provenance());
                continue;
            }
        };
        let Some(g) = groups.get(r.group.as_str()) else {
            continue;
        };
        let prov = safe_text(T, "provenance", &r.provenance())?;
        let fam = r.family.map(Family::from);
        let key = (g.id.clone(), fam);
        let src = match srcs.get(&key) {
            Some(s) => s.clone(),
            None => {
                let addrs: Vec<String> = g
                    .addresses
                    .iter()
                    .filter(|a| fam.is_none_or(|f| Family::of(a) == f))
                    .map(IpNet::to_string)
                    .collect();
                if addrs.is_empty() {
                    continue;
                }
                let name = acl("src", srcs.len() + 1, &g.id);
                let _ = writeln!(acls, "acl {name} src {}", addrs.join(" "));
                srcs.insert(key, name.clone());
                name
            }
        };
        let _ = writeln!(
            acls,
            "# {prov} (group {})",
            safe_text(T, "group id", &g.id)?
        );
        let port = acl("port", n, &r.flow);
        let _ = writeln!(acls, "acl {port} port {}", ports_text(c.ports));
        let mut names = c.peers.names.clone();
        names.sort();
        names.dedup();
        for h in names.iter().chain(&c.peers.wildcards) {
            safe_hostname(T, h)?;
        }
        // Each kind of peer: its http_access ACL and its ssl_bump (SNI or address) ACL.
        let mut peers: Vec<(String, String)> = Vec::new();
        if !names.is_empty() {
            let a = acl("name", n, &r.flow);
            let s = acl("sni", n, &r.flow);
            let _ = writeln!(acls, "acl {a} dstdomain -n {}", names.join(" "));
            let _ = writeln!(acls, "acl {s} ssl::server_name {}", names.join(" "));
            peers.push((a, s));
        }
        if !c.peers.wildcards.is_empty() {
            let res: Vec<String> = c.peers.wildcards.iter().map(|w| below(w)).collect();
            let a = acl("below", n, &r.flow);
            let s = acl("snibelow", n, &r.flow);
            let _ = writeln!(acls, "acl {a} dstdom_regex -n -i {}", res.join(" "));
            let _ = writeln!(acls, "acl {s} ssl::server_name_regex -i {}", res.join(" "));
            peers.push((a, s));
        }
        let outside: Vec<String> = c
            .peers
            .prefixes
            .iter()
            .filter(|p| {
                (r.via_proxy.is_some() || !in_site(policy, p))
                    && fam.is_none_or(|f| Family::of(p) == f)
            })
            .map(IpNet::to_string)
            .collect();
        if !outside.is_empty() {
            let a = acl("dst", n, &r.flow);
            let _ = writeln!(acls, "acl {a} dst {}", outside.join(" "));
            // A CONNECT to an address has no name to compare the SNI with: the address is
            // what the proxy checks.
            peers.push((a.clone(), a));
        }
        let mut note = String::new();
        if inspection_forbidden(policy, r) {
            note.push_str(" (TLS must not be inspected: spliced)");
        }
        if c.connect_only {
            note.push_str(" (CONNECT only)");
        }
        for (k, (dst, sni)) in peers.iter().enumerate() {
            let ok = format!("pl_ok{n}_{}", k + 1);
            let _ = writeln!(acls, "acl {ok} all-of {src} {dst} {port}");
            let _ = writeln!(
                access,
                "# {prov}{note}\nhttp_access allow portolan_connect {ok}"
            );
            if !c.connect_only && c.ports.iter().any(|p| p.contains(80)) {
                let _ = writeln!(
                    access,
                    "http_access allow !portolan_connect {src} {dst} portolan_http"
                );
            }
            let _ = writeln!(bump, "ssl_bump splice {src} {sni} {port}");
        }
    }
    let mut o = format!(
        "# Squid allow-list for Portolan site {}: generated, do not edit.\n",
        safe_text(T, "site name", &policy.site)?
    );
    o.push_str("# Include it from squid.conf; its http_port needs `ssl-bump` (and a certificate) for the ssl_bump\n");
    o.push_str("# rules, although nothing is decrypted: TLS is peeked at (SNI) and spliced, or terminated.\n");
    for (why, flows) in &left {
        let _ = writeln!(
            o,
            "# Not carried by the proxy ({why}): {}",
            flows.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    o.push_str("acl portolan_connect method CONNECT\n");
    o.push_str("acl portolan_http port 80\n");
    o.push_str("acl portolan_step1 at_step SslBump1\n");
    o.push_str(&acls);
    o.push_str(&access);
    o.push_str("# Everything else: 403.\nhttp_access deny all\n");
    o.push_str("ssl_bump peek portolan_step1\n");
    o.push_str(&bump);
    o.push_str("ssl_bump terminate all\n");
    o.push_str(
        "# A tunnel http_access allowed that carries no TLS (SSH, MQTT, …) passes as it is.\n",
    );
    o.push_str("on_unsupported_protocol tunnel all\n");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_below_the_domain_only() {
        assert_eq!(below("mbedcloud.com"), "\\.mbedcloud\\.com$");
    }

    #[test]
    fn acl_names_stay_in_squids_alphabet() {
        assert_eq!(acl("name", 3, "cloud.443"), "pl_name3_cloud_443");
    }
}
