//! DNS lookups with what a firewall needs to know: the addresses *and* the TTL of the answer,
//! and, when it fails, how (NXDOMAIN, SERVFAIL, REFUSED, no answer at all). Messages are
//! hickory-proto's; queries go over UDP through [`Transport`] to one chosen server: the
//! system's (`/etc/resolv.conf`) or a given one. Used by `compile --resolve` and by the
//! probe's names stage.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

use crate::runtime::{System, Transport, UdpReply};
use crate::udp_apps::{dns_query, Expect};
use crate::{nonce, NetError};

/// Why a lookup gave no address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum Failure {
    /// The name does not exist (RCODE 3).
    NxDomain,
    /// The name exists but has no A/AAAA record (NOERROR, empty answer).
    NoAddress,
    /// The server failed (RCODE 2): often an upstream it cannot reach, or DNSSEC.
    ServFail,
    /// The server refuses to answer us (RCODE 5).
    Refused,
    /// No answer at all within the timeout.
    Timeout,
    /// ICMP port unreachable or host unreachable from the server's address.
    Unreachable(String),
    /// Anything else (another RCODE, a malformed answer, a local error).
    Other(String),
}

impl Failure {
    pub fn state(&self) -> &'static str {
        match self {
            Failure::NxDomain => "nxdomain",
            Failure::NoAddress => "no-address",
            Failure::ServFail => "servfail",
            Failure::Refused => "refused",
            Failure::Timeout => "timeout",
            Failure::Unreachable(_) => "unreachable",
            Failure::Other(_) => "error",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NxDomain => write!(f, "NXDOMAIN (the name does not exist)"),
            Failure::NoAddress => write!(f, "no address record"),
            Failure::ServFail => write!(f, "SERVFAIL (the server failed to resolve it)"),
            Failure::Refused => write!(f, "REFUSED (the server will not answer this client)"),
            Failure::Timeout => write!(f, "no answer (timeout)"),
            Failure::Unreachable(d) => write!(f, "server unreachable: {d}"),
            Failure::Other(d) => write!(f, "{d}"),
        }
    }
}

/// The answer to one lookup (A and AAAA together).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub addresses: Vec<IpAddr>,
    /// The smallest TTL along the answer (CNAMEs included), in seconds.
    pub ttl: u32,
    /// The answer had the AA bit: it came from an authoritative server, whose TTL is the
    /// reference.
    pub authoritative: bool,
}

/// A hostname's addresses and how long they may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub addresses: Vec<IpAddr>,
    pub ttl: Duration,
}

/// How to ask.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    pub server: SocketAddr,
    pub source: Option<IpAddr>,
    /// Per attempt.
    pub timeout: Duration,
    pub attempts: u32,
}

/// Parses a server as `ADDR` (port 53) or `ADDR:PORT` / `[V6]:PORT`.
pub fn parse_server(s: &str) -> Result<SocketAddr, NetError> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| NetError::Invalid(format!("`{s}` is not an address or address:port")))
}

/// The name servers of a resolv.conf text, in order.
pub fn servers_of(text: &str) -> Result<Vec<SocketAddr>, NetError> {
    let cfg = resolv_conf::Config::parse(text)
        .map_err(|e| NetError::Invalid(format!("resolv.conf: {e}")))?;
    Ok(cfg
        .nameservers
        .iter()
        .map(|n| SocketAddr::new(IpAddr::from(n), 53))
        .collect())
}

/// The system's name servers (`/etc/resolv.conf`, or `path`).
pub fn system_servers(path: Option<&Path>) -> Result<Vec<SocketAddr>, NetError> {
    let p = path.unwrap_or(Path::new("/etc/resolv.conf"));
    let text = std::fs::read_to_string(p).map_err(|e| NetError::Read {
        path: p.display().to_string(),
        source: e,
    })?;
    let servers = servers_of(&text)?;
    if servers.is_empty() {
        return Err(NetError::NoResolver(format!(
            "{} lists no nameserver",
            p.display()
        )));
    }
    Ok(servers)
}

/// One question, one answer message (or how it failed before there was one).
pub async fn exchange<T: Transport>(
    t: &T,
    q: &Query,
    name: &Name,
    rtype: RecordType,
) -> Result<Message, Failure> {
    let id = nonce::u16();
    let request = dns_query(id, name, rtype);
    match t
        .udp_exchange(
            q.source,
            q.server,
            request,
            Expect::Dns(id),
            q.timeout,
            q.attempts,
        )
        .await
    {
        UdpReply::Answer(bytes) => {
            Message::from_vec(&bytes).map_err(|e| Failure::Other(format!("malformed answer: {e}")))
        }
        UdpReply::Silent => Err(Failure::Timeout),
        UdpReply::Closed(_) => Err(Failure::Unreachable(
            "ICMP port unreachable: no DNS server listens there".into(),
        )),
        UdpReply::Unreachable(d) => Err(Failure::Unreachable(d)),
        UdpReply::Rejected { detail, .. } => Err(Failure::Unreachable(format!(
            "{detail}: a device on the path rejected the query"
        ))),
        UdpReply::LocalError(d) => Err(Failure::Other(d)),
    }
}

fn fqdn(host: &str) -> Result<Name, Failure> {
    let h = host.trim_end_matches('.');
    Name::from_ascii(format!("{h}."))
        .map_err(|e| Failure::Other(format!("`{host}` is not a DNS name: {e}")))
}

/// Addresses of one record type: `Ok(None)` for NOERROR without data.
async fn one_type<T: Transport>(
    t: &T,
    q: &Query,
    name: &Name,
    rtype: RecordType,
) -> Result<Option<Answer>, Failure> {
    let m = exchange(t, q, name, rtype).await?;
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Err(Failure::NxDomain),
        ResponseCode::ServFail => return Err(Failure::ServFail),
        ResponseCode::Refused => return Err(Failure::Refused),
        other => return Err(Failure::Other(format!("response code {other}"))),
    }
    let mut addresses = Vec::new();
    let mut ttl = u32::MAX;
    for r in &m.answers {
        match &r.data {
            RData::A(a) => addresses.push(IpAddr::V4(a.0)),
            RData::AAAA(a) => addresses.push(IpAddr::V6(a.0)),
            RData::CNAME(_) => {}
            _ => continue,
        }
        ttl = ttl.min(r.ttl);
    }
    if addresses.is_empty() {
        return Ok(None);
    }
    Ok(Some(Answer {
        addresses,
        ttl,
        authoritative: m.metadata.authoritative,
    }))
}

/// Looks up `host`'s A and AAAA records at one server.
pub async fn lookup<T: Transport>(t: &T, q: &Query, host: &str) -> Result<Answer, Failure> {
    let name = fqdn(host)?;
    let (a, aaaa) = tokio::join!(
        one_type(t, q, &name, RecordType::A),
        one_type(t, q, &name, RecordType::AAAA)
    );
    match (a, aaaa) {
        (Ok(Some(mut x)), Ok(Some(y))) => {
            x.addresses.extend(y.addresses);
            x.ttl = x.ttl.min(y.ttl);
            Ok(x)
        }
        (Ok(Some(x)), _) | (_, Ok(Some(x))) => Ok(x),
        (Err(e), _) => Err(e),
        (_, Err(e)) => Err(e),
        (Ok(None), Ok(None)) => Err(Failure::NoAddress),
    }
}

/// Resolves every name for `compile --resolve`: through `server`, else the first name server
/// of /etc/resolv.conf. Each name gets its addresses and TTL, or the reason it failed.
pub fn resolve_all(
    names: &[String],
    server: Option<SocketAddr>,
    timeout: Duration,
) -> Result<BTreeMap<String, Result<Resolved, Failure>>, NetError> {
    let server = match server {
        Some(s) => s,
        None => system_servers(None)?
            .into_iter()
            .next()
            .ok_or_else(|| NetError::NoResolver("/etc/resolv.conf".into()))?,
    };
    let q = Query {
        server,
        source: None,
        timeout,
        attempts: 2,
    };
    crate::runtime::block_on(async {
        let t = System;
        let mut out = BTreeMap::new();
        let lookups = names.iter().map(|n| async {
            let r = lookup(&t, &q, n).await.map(|a| Resolved {
                addresses: a.addresses,
                ttl: Duration::from_secs(u64::from(a.ttl)),
            });
            (n.clone(), r)
        });
        for (n, r) in crate::runtime::join_all(lookups).await {
            out.insert(n, r);
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse() {
        assert_eq!(
            parse_server("127.0.0.1:5353").expect("ok"),
            "127.0.0.1:5353".parse::<SocketAddr>().expect("ok")
        );
        assert_eq!(parse_server("10.0.0.1").expect("ok").port(), 53);
        assert_eq!(parse_server("[::1]").expect("ok").port(), 53);
        assert!(parse_server("dns.example").is_err());
        let s = servers_of("search x\nnameserver 192.0.2.53\nnameserver ::1\n").expect("ok");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], "192.0.2.53:53".parse::<SocketAddr>().expect("ok"));
    }
}
