//! A small authoritative DNS server for tests (hickory-proto messages over tokio UDP): names
//! from a table with their TTL; names listed as `servfail` get SERVFAIL, `silent` get no
//! answer at all; any other name gets NXDOMAIN. `ttl_factor` makes it serve inflated TTLs
//! (a caching resolver that stretches them), and turns off the AA bit.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

#[derive(Clone, Debug, Default)]
pub struct Zone {
    pub records: BTreeMap<String, (Vec<IpAddr>, u32)>,
    pub servfail: Vec<String>,
    pub silent: Vec<String>,
    pub ttl_factor: u32,
}

impl Zone {
    pub fn host(mut self, name: &str, addrs: &[&str], ttl: u32) -> Zone {
        let a = addrs.iter().map(|a| a.parse().expect("address")).collect();
        self.records.insert(name.to_string(), (a, ttl));
        self
    }
}

fn answer(zone: &Zone, req: &Message) -> Option<Message> {
    let q = req.queries.first()?;
    let name = q.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    if zone.silent.contains(&name) {
        return None;
    }
    let mut m = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.authoritative = zone.ttl_factor <= 1;
    m.add_query(q.clone());
    if zone.servfail.contains(&name) {
        m.metadata.response_code = ResponseCode::ServFail;
        return Some(m);
    }
    match zone.records.get(&name) {
        None if name.is_empty() => {
            // The root NS query of the reach stage's DNS probe: an empty NOERROR.
        }
        None => m.metadata.response_code = ResponseCode::NXDomain,
        Some((addrs, ttl)) => {
            let ttl = ttl * zone.ttl_factor.max(1);
            let owner = Name::from_ascii(format!("{name}.")).ok()?;
            for a in addrs {
                let data = match (a, q.query_type) {
                    (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                    (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                m.add_answer(Record::from_rdata(owner.clone(), ttl, data));
            }
        }
    }
    Some(m)
}

/// Serves `zone` on `sock` forever.
pub async fn serve(sock: UdpSocket, zone: Arc<Zone>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(req) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if let Some(resp) = answer(&zone, &req) {
            if let Ok(bytes) = resp.to_vec() {
                let _ = sock.send_to(&bytes, from).await;
            }
        }
    }
}

/// Binds `addr` and serves `zone` on the current runtime; returns the bound address.
pub async fn start(addr: SocketAddr, zone: Zone) -> SocketAddr {
    let sock = UdpSocket::bind(addr).await.expect("bind DNS server");
    let local = sock.local_addr().expect("local address");
    tokio::spawn(serve(sock, Arc::new(zone)));
    local
}
