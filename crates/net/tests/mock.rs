//! The probe's logic through the seam (STYLE habit 9): a mock transport that answers from a
//! table, no sockets, no privileges. Checks the staged verdicts, the alternative group and the
//! remedies for the Oscar gateway when its resolver answers and only port 443 is open, and
//! what the address stage makes of DHCP offers (none, one without a router, two that
//! disagree).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use portolan_net::address::DefaultRoute;
use portolan_net::dhcp::{Discover, Offer};
use portolan_net::link::Link;
use portolan_net::plan::plan;
use portolan_net::probe::DhcpOptions;
use portolan_net::probe::{run, Options};
use portolan_net::report::Report;
use portolan_net::report::{Kind, Stage, Verdict};
use portolan_net::runtime::{
    block_on, DhcpReply, EchoReply, TcpOutcome, TcpState, TlsOutcome, Transport, UdpReply,
};
use portolan_net::udp_apps::Expect;

struct Mock {
    dhcp: DhcpReply,
}

const MOCK: Mock = Mock {
    dhcp: DhcpReply::Silent,
};

impl Transport for Mock {
    async fn tcp_connect(&self, _: Option<IpAddr>, dst: SocketAddr, _: Duration) -> TcpOutcome {
        let state = if dst.port() == 443 {
            TcpState::Open
        } else {
            TcpState::Filtered
        };
        TcpOutcome {
            state,
            detail: None,
            local: None,
        }
    }

    async fn udp_exchange(
        &self,
        _: Option<IpAddr>,
        _: SocketAddr,
        request: Vec<u8>,
        _: Expect,
        _: Duration,
        _: u32,
    ) -> UdpReply {
        let Ok(q) = Message::from_vec(&request) else {
            return UdpReply::Silent;
        };
        let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
        for query in &q.queries {
            m.add_query(query.clone());
            if query.name.to_ascii() == "gk.sensorist.com."
                && query.query_type == hickory_proto::rr::RecordType::A
            {
                m.add_answer(Record::from_rdata(
                    query.name.clone(),
                    120,
                    RData::A(A("192.0.2.10".parse().expect("ip"))),
                ));
            }
        }
        UdpReply::Answer(m.to_vec().expect("encode"))
    }

    async fn icmp_echo(&self, _: Option<IpAddr>, _: IpAddr, _: Duration) -> EchoReply {
        EchoReply::Reply
    }

    async fn tls_handshake(
        &self,
        _: Option<IpAddr>,
        _: SocketAddr,
        _: String,
        _: Duration,
    ) -> TlsOutcome {
        TlsOutcome {
            tcp: TcpState::Open,
            chain: Vec::new(),
            error: Some("mock".into()),
        }
    }

    async fn dhcp_discover(&self, _: String, _: Discover, _: Duration, _: u32) -> DhcpReply {
        self.dhcp.clone()
    }

    async fn sleep(&self, _: Duration) {}

    fn default_routes(&self) -> Vec<DefaultRoute> {
        vec![DefaultRoute {
            gateway: Some("192.0.2.1".parse().expect("ip")),
            interface: "eth0".into(),
        }]
    }

    fn source_towards(&self, _: Option<IpAddr>, _: IpAddr) -> Result<IpAddr, String> {
        Ok("10.20.0.33".parse().expect("ip"))
    }

    fn links(&self) -> Result<Vec<Link>, String> {
        Ok(vec![Link {
            index: 2,
            name: "eth0".into(),
            mac: Some([2, 0, 0, 0, 0, 0x33]),
            up: true,
            carrier: true,
            loopback: false,
        }])
    }
}

struct Catalog;

impl portolan_model::compile::ProfileSource for Catalog {
    fn profile(&self, name: &str) -> Result<portolan_model::Profile, String> {
        let c = portolan_model::catalog::Catalog::embedded().map_err(|e| e.to_string())?;
        c.get(name)
            .cloned()
            .ok_or_else(|| format!("no profile {name}"))
    }
}

fn oscar(mock: &Mock, dhcp: Option<DhcpOptions>) -> Report {
    let site = "portolan: 1\nsite: m\nzones:\n  - id: field\n    networks: [10.20.0.0/24]\nservices:\n  dns: firewall\n  dhcp: firewall\ndevices:\n  - id: oscar\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.20.0.33]\n    bind:\n      cloud: [gk.sensorist.com]\n";
    let policy = portolan_model::compile::site_text("m.yaml", site, &Catalog)
        .expect("compiles")
        .value;
    let p = plan(&policy, "oscar").expect("plan");
    let o = Options {
        resolver: Some("192.0.2.53:53".parse().expect("addr")),
        dhcp,
        ..Options::default()
    };
    block_on(run(mock, &p, &o)).expect("runtime")
}

#[test]
fn oscar_through_the_seam() {
    let r = oscar(&MOCK, None);
    assert_eq!(
        r.stage(Stage::Address).map(|s| s.verdict),
        Some(Verdict::Pass)
    );
    assert_eq!(
        r.stage(Stage::Names).map(|s| s.verdict),
        Some(Verdict::Pass)
    );
    assert_eq!(
        r.stage(Stage::Reach).map(|s| s.verdict),
        Some(Verdict::Warn)
    );
    assert_eq!(
        r.stage(Stage::Keepalive).map(|s| s.verdict),
        Some(Verdict::Skip)
    );
    let alt = r
        .checks()
        .find(|c| c.kind == Kind::Alternative)
        .expect("alternative group");
    assert_eq!(alt.state, "partial");
    assert_eq!(
        r.remedies,
        vec!["allow TCP 4321 from 10.20.0.33 to gk.sensorist.com — Oscar TempLog gateway, flow `cloud`"]
    );
    assert!(r.ok());
}

fn offer(server: &str, routers: &[&str], dns: &[&str]) -> Offer {
    let ips = |v: &[&str]| v.iter().map(|a| a.parse().expect("ip")).collect();
    Offer {
        address: "10.20.0.77".parse().expect("ip"),
        server: server.parse().expect("ip"),
        prefix_len: Some(24),
        routers: ips(routers),
        dns: ips(dns),
        ntp: vec![],
        domain: None,
        lease_secs: Some(3600),
    }
}

fn dhcp_checks(r: &Report) -> Vec<(String, Verdict, bool)> {
    r.checks()
        .filter(|c| c.kind == Kind::Dhcp)
        .map(|c| (c.state.clone(), c.verdict, c.decisive))
        .collect()
}

#[test]
fn dhcp_offers_through_the_seam() {
    let o = Some(DhcpOptions::default());
    // No offer: the vendor's solid red LED, and the report fails.
    let r = oscar(&MOCK, o.clone());
    assert_eq!(
        dhcp_checks(&r),
        vec![("no-offer".to_string(), Verdict::Fail, true)]
    );
    assert_eq!(
        r.remedies[0],
        "make sure the DHCP server is working so 10.20.0.33 can get an address, a default gateway and a DNS server (a DHCP issue, not a firewall one) — Oscar TempLog gateway (LED solid red)"
    );
    assert!(!r.ok());

    // An offer without a router: the device would get an address and no way out.
    let m = Mock {
        dhcp: DhcpReply::Offers(vec![offer("10.20.0.1", &[], &["10.20.0.1"])]),
    };
    let r = oscar(&m, o.clone());
    assert_eq!(
        dhcp_checks(&r),
        vec![
            ("offer".to_string(), Verdict::Pass, true),
            ("no-router".to_string(), Verdict::Warn, true)
        ]
    );
    assert!(r.remedies.contains(&"configure the DHCP server 10.20.0.1 to hand out a default gateway (option 3) to 10.20.0.33 — Oscar TempLog gateway".to_string()), "{:?}", r.remedies);
    let j = serde_json::to_value(&r).expect("json");
    let first = &j["stages"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["kind"] == "dhcp")
        .expect("dhcp check")["offer"];
    assert_eq!(first["address"], "10.20.0.77");
    assert_eq!(first["server"], "10.20.0.1");
    assert_eq!(first["lease_secs"], 3600);

    // Two servers that disagree: a rogue one, or a forgotten one.
    let m = Mock {
        dhcp: DhcpReply::Offers(vec![
            offer("10.20.0.1", &["10.20.0.1"], &["10.20.0.1"]),
            offer("10.20.0.250", &["10.20.0.250"], &["10.20.0.250"]),
        ]),
    };
    let r = oscar(&m, o);
    assert_eq!(
        dhcp_checks(&r),
        vec![
            ("offer".to_string(), Verdict::Pass, true),
            ("offer".to_string(), Verdict::Pass, false),
            ("several-servers".to_string(), Verdict::Warn, true)
        ]
    );
}
