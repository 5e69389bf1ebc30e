//! The probe's logic through the seam (STYLE habit 9): a mock transport that answers from a
//! table, no sockets, no privileges. Checks the staged verdicts, the alternative group and the
//! remedies for the Oscar gateway when its resolver answers and only port 443 is open, and
//! what the address stage makes of DHCP offers (none, one without a router, two that
//! disagree). Remedies blame the firewall only for what the path drops: not for a peer that
//! answers that nothing listens, nor for a `--source` this machine does not hold.

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
    block_on, DhcpReply, EchoReply, TcpOutcome, TcpState, TlsAsk, TlsOutcome, Transport, UdpReply,
};
use portolan_net::udp_apps::Expect;
use portolan_net::LocalError;

struct Mock {
    dhcp: DhcpReply,
    /// What TCP ports other than 443 observe.
    tcp_else: TcpState,
    /// The one address this machine holds.
    local: &'static str,
}

const MOCK: Mock = Mock {
    dhcp: DhcpReply::Silent,
    tcp_else: TcpState::Filtered,
    local: "10.20.0.33",
};

impl Transport for Mock {
    async fn tcp_connect(&self, src: Option<IpAddr>, dst: SocketAddr, _: Duration) -> TcpOutcome {
        if src.is_some_and(|s| s.to_string() != self.local) {
            return TcpOutcome {
                state: TcpState::LocalError,
                detail: Some("bind: Cannot assign requested address (os error 99)".into()),
                local: None,
                from: None,
                ttl: None,
            };
        }
        let state = if dst.port() == 443 {
            TcpState::Open
        } else {
            self.tcp_else
        };
        TcpOutcome {
            state,
            detail: None,
            local: None,
            from: None,
            ttl: None,
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
        _: TlsAsk,
        _: Duration,
    ) -> TlsOutcome {
        TlsOutcome {
            tcp: TcpState::Open,
            chain: Vec::new(),
            error: Some("mock".into()),
            session: Default::default(),
        }
    }

    async fn dtls_handshake(&self, _: Option<IpAddr>, _: SocketAddr, _: Duration) -> TlsOutcome {
        TlsOutcome {
            tcp: TcpState::Open,
            chain: Vec::new(),
            error: Some("mock".into()),
            session: Default::default(),
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

    fn source_towards(&self, src: Option<IpAddr>, _: IpAddr) -> Result<IpAddr, LocalError> {
        match src {
            Some(s) if s.to_string() != self.local => Err(LocalError::NotThisMachine {
                addr: s,
                reason: "the mock holds another".into(),
            }),
            _ => Ok(self.local.parse().expect("ip")),
        }
    }

    fn links(&self) -> Result<Vec<Link>, LocalError> {
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

fn oscar(mock: &Mock, dhcp: Option<DhcpOptions>) -> Report {
    oscar_with(
        mock,
        Options {
            dhcp,
            ..Options::default()
        },
    )
}

fn oscar_with(mock: &Mock, o: Options) -> Report {
    let site = "portolan: 1\nsite: m\nzones:\n  - id: field\n    networks: [10.20.0.0/24]\nservices:\n  dns: firewall\n  dhcp: firewall\ndevices:\n  - id: oscar\n    profile: oscar-templog-gateway\n    zone: field\n    addresses: [10.20.0.33]\n    bind:\n      cloud: [gk.sensorist.com]\n";
    let policy = portolan_testkit::Profiles::catalog().compile("m.yaml", site);
    let p = plan(&policy, "oscar").expect("plan");
    let o = Options {
        resolver: Some("192.0.2.53:53".parse().expect("addr")),
        ..o
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
        vec!["allow TCP 4321 from 10.20.0.33 to gk.sensorist.com — Oscar TempLog gateway, group `cloud`"]
    );
    assert!(r.ok());
}

#[test]
fn a_peer_that_answers_nothing_listens_is_not_the_firewalls() {
    // 4321 answered with a reset: the packet got through, the service is what to check.
    let m = Mock {
        tcp_else: TcpState::Refused,
        ..MOCK
    };
    let r = oscar(&m, None);
    let alt = r
        .checks()
        .find(|c| c.kind == Kind::Alternative)
        .expect("alternative group");
    assert_eq!(
        (alt.state.as_str(), alt.verdict),
        ("partial", Verdict::Warn)
    );
    assert_eq!(
        r.remedies,
        vec!["check the service on TCP 4321 at gk.sensorist.com: the peer answered with a TCP reset, so the packet got through, but nothing listens on that port — is the service running there, and is the right host bound? — Oscar TempLog gateway, group `cloud`"]
    );
    let flow = r
        .checks()
        .find(|c| c.kind == Kind::Flow && c.flow.as_deref() == Some("cloud-4321"))
        .expect("flow check");
    assert!(
        flow.remedy
            .as_deref()
            .is_some_and(|m| m.starts_with("check the service on TCP 4321")),
        "{flow:?}"
    );

    // The probing machine's own refusal (its firewall, say) is not the site's either.
    let m = Mock {
        tcp_else: TcpState::LocalError,
        ..MOCK
    };
    let r = oscar(&m, None);
    assert_eq!(r.remedies.len(), 1, "{:?}", r.remedies);
    assert!(
        r.remedies[0].starts_with("the probe could not send"),
        "{:?}",
        r.remedies
    );
}

#[test]
fn a_source_this_machine_does_not_hold_skips_reach() {
    let r = oscar_with(
        &MOCK,
        Options {
            source: Some("192.0.2.99".parse().expect("ip")),
            ..Options::default()
        },
    );
    for stage in [Stage::Reach, Stage::Integrity] {
        assert_eq!(r.stage(stage).map(|s| s.verdict), Some(Verdict::Skip));
    }
    assert!(
        r.checks()
            .any(|c| c.kind == Kind::Source && c.state == "not-local"),
        "{r:#?}"
    );
    assert!(
        r.remedies.iter().all(|m| !m.starts_with("allow")),
        "{:?}",
        r.remedies
    );
    assert!(!r.ok());
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
        options: vec![53, 54, 51, 1, 3, 6],
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
        ..MOCK
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
        ..MOCK
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
