//! Flow records written by hand: IPFIX and NetFlow v9 messages laid out as RFC 7011 and
//! RFC 3954 describe them, and Suricata `eve.json` lines as its documentation shows them.

use std::io::Cursor;
use std::path::Path;

use portolan_audit::input::Format;
use portolan_audit::{audit, Collector, Mismatch, Options, Report, Status};

use crate::scenario::*;

fn read(name: &str, bytes: Vec<u8>) -> (Report, Format) {
    let mut c = Collector::new();
    let s = c
        .read_from(Path::new(name), Box::new(Cursor::new(bytes)))
        .expect("readable");
    assert_eq!(s.problem, None, "{name}");
    let f = s.format;
    (audit(&policy(), c.finish(), &Options::default()), f)
}

fn be16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}
fn be32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_be_bytes());
}
fn be64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_be_bytes());
}

/// IPFIX template 256 (RFC 7011 section 3.4.1): sourceIPv4Address(8)/4,
/// destinationIPv4Address(12)/4, sourceTransportPort(7)/2, destinationTransportPort(11)/2,
/// protocolIdentifier(4)/1, packetDeltaCount(2)/8, octetDeltaCount(1)/8,
/// flowStartMilliseconds(152)/8, flowEndMilliseconds(153)/8, samplingInterval(34)/4.
const FIELDS: [(u16, u16); 10] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (2, 8),
    (1, 8),
    (152, 8),
    (153, 8),
    (34, 4),
];

pub(crate) fn template_set() -> Vec<u8> {
    let mut s = Vec::new();
    be16(&mut s, 2); // template set
    be16(&mut s, 4 + 4 + 4 * FIELDS.len() as u16);
    be16(&mut s, 256);
    be16(&mut s, FIELDS.len() as u16);
    for (id, len) in FIELDS {
        be16(&mut s, id);
        be16(&mut s, len);
    }
    s
}

pub(crate) struct Rec {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    proto: u8,
    packets: u64,
    bytes: u64,
    start_ms: u64,
    sampling: u32,
}

pub(crate) fn data_set(recs: &[Rec]) -> Vec<u8> {
    let mut body = Vec::new();
    for r in recs {
        body.extend_from_slice(&r.src);
        body.extend_from_slice(&r.dst);
        be16(&mut body, r.sport);
        be16(&mut body, r.dport);
        body.push(r.proto);
        be64(&mut body, r.packets);
        be64(&mut body, r.bytes);
        be64(&mut body, r.start_ms);
        be64(&mut body, r.start_ms + 500);
        be32(&mut body, r.sampling);
    }
    let mut s = Vec::new();
    be16(&mut s, 256);
    be16(&mut s, 4 + body.len() as u16);
    s.extend(body);
    s
}

/// An IPFIX message (RFC 7011 section 3.1) of observation domain `domain` holding `sets`.
pub(crate) fn message(domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    let mut m = Vec::new();
    be16(&mut m, 10);
    be16(&mut m, 16 + body.len() as u16);
    be32(&mut m, 1_800_000_000); // export time
    be32(&mut m, 1); // sequence
    be32(&mut m, domain);
    m.extend(body);
    m
}

const T0_MS: u64 = 1_800_000_000_000;

pub(crate) fn dns_rec(sampling: u32) -> Rec {
    Rec {
        src: [10, 20, 0, 10],
        dst: [10, 20, 0, 1],
        sport: 40001,
        dport: 53,
        proto: 17,
        packets: 1,
        bytes: 60,
        start_ms: T0_MS,
        sampling,
    }
}

pub(crate) fn stray_rec(sampling: u32) -> Rec {
    Rec {
        src: [10, 20, 0, 10],
        dst: [203, 0, 113, 99],
        sport: 40002,
        dport: 443,
        proto: 6,
        packets: 3,
        bytes: 180,
        start_ms: T0_MS + 1000,
        sampling,
    }
}

#[test]
fn ipfix_sampled_records_say_unused_is_not_absence() {
    let m = message(
        1,
        &[template_set(), data_set(&[dns_rec(100), stray_rec(100)])],
    );
    // 16 header + 48 template set + 4 + 2 × 49 data set.
    assert_eq!(m.len(), 16 + 48 + 4 + 2 * 49);
    let (r, f) = read("sampled.ipfix", m);
    assert_eq!(f, Format::Ipfix);
    let st: Vec<(Status, Option<&str>)> = r
        .flows
        .iter()
        .map(|f| (f.status, f.rule.as_deref()))
        .collect();
    assert_eq!(
        st,
        vec![
            (Status::Conforming, Some("test-sensor/dns")),
            (Status::Violation, None)
        ]
    );
    assert_eq!(r.flows[1].violation, vec![Mismatch::Peer]);
    assert_eq!(r.flows[1].packets, [3, 0]);
    assert_eq!(r.flows[1].bytes, [180, 0]);
    assert_eq!(r.flows[0].first.as_deref(), Some("2027-01-15T08:00:00Z"));
    assert_eq!(r.flows[0].last.as_deref(), Some("2027-01-15T08:00:00.5Z"));
    let notes = r.inputs[0].flow_records.as_ref().expect("notes");
    assert_eq!((notes.records, notes.sampling), (2, Some(100)));
    let note = r.records_note.as_deref().expect("sampled");
    assert!(note.contains("1 in 100"), "{note}");
    let g = &r.groups[0];
    assert!(g.unused.contains(&"test-sensor/https".to_string()));
    assert_eq!(g.unused_note.as_deref(), Some(note));
}

#[test]
fn ipfix_templates_are_kept_per_observation_domain() {
    // The template comes in its own message; data of domain 1 uses it, data of domain 2
    // (another exporter process, RFC 7011 section 8) has no template and is skipped.
    let file = [
        message(1, &[template_set()]),
        message(1, &[data_set(&[dns_rec(1)])]),
        message(2, &[data_set(&[stray_rec(1)])]),
    ]
    .concat();
    let (r, _) = read("domains.ipfix", file);
    assert_eq!(r.flows.len(), 1);
    assert_eq!(r.flows[0].rule.as_deref(), Some("test-sensor/dns"));
    let notes = r.inputs[0].flow_records.as_ref().expect("notes");
    assert_eq!((notes.records, notes.no_template), (1, 1));
    assert_eq!(notes.sampling, None);
    assert_eq!(r.records_note, None);
    assert_eq!(r.groups[0].unused_note, None);
    assert_eq!(r.inputs[0].records, 3, "three messages");
}

/// A NetFlow v9 packet (RFC 3954 section 5.1): header, then flowsets.
fn v9_packet(flowsets: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    be16(&mut m, 9);
    be16(&mut m, 1); // count
    be32(&mut m, 10_000); // sysUpTime, ms
    be32(&mut m, 1_800_000_000); // unix secs
    be32(&mut m, 1); // sequence
    be32(&mut m, 0); // source id
    for f in flowsets {
        m.extend_from_slice(f);
    }
    m
}

#[test]
fn netflow_v9_packets_back_to_back() {
    // Template 256: IPV4_SRC_ADDR(8)/4, IPV4_DST_ADDR(12)/4, L4_SRC_PORT(7)/2,
    // L4_DST_PORT(11)/2, PROTOCOL(4)/1, IN_PKTS(2)/4, IN_BYTES(1)/4, FIRST_SWITCHED(22)/4,
    // LAST_SWITCHED(21)/4.
    let fields: [(u16, u16); 9] = [
        (8, 4),
        (12, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (2, 4),
        (1, 4),
        (22, 4),
        (21, 4),
    ];
    let mut t = Vec::new();
    be16(&mut t, 0);
    be16(&mut t, 4 + 4 + 4 * 9);
    be16(&mut t, 256);
    be16(&mut t, 9);
    for (id, len) in fields {
        be16(&mut t, id);
        be16(&mut t, len);
    }
    let data = |dport: u16, proto: u8, dst: [u8; 4]| {
        let mut d = Vec::new();
        be16(&mut d, 256);
        be16(&mut d, 4 + 29 + 3); // one record of 29 bytes, padded to 4
        d.extend_from_slice(&[10, 20, 0, 10]);
        d.extend_from_slice(&dst);
        be16(&mut d, 40001);
        be16(&mut d, dport);
        d.push(proto);
        be32(&mut d, 2);
        be32(&mut d, 120);
        be32(&mut d, 9_000); // FIRST_SWITCHED: 1 s before the export's uptime
        be32(&mut d, 9_500);
        d.extend_from_slice(&[0, 0, 0]);
        d
    };
    // The first packet carries the template and a record; the second only a record.
    let file = [
        v9_packet(&[t, data(123, 17, [10, 99, 0, 123])]),
        v9_packet(&[data(8080, 6, [198, 51, 100, 10])]),
    ]
    .concat();
    let (r, f) = read("export.v9", file);
    assert_eq!(f, Format::NetflowV9);
    assert_eq!(r.inputs[0].records, 2, "two packets framed");
    let st: Vec<(Status, Option<&str>)> = r
        .flows
        .iter()
        .map(|f| (f.status, f.rule.as_deref()))
        .collect();
    assert_eq!(
        st,
        vec![
            (Status::Conforming, Some("test-sensor/ntp")),
            (Status::Violation, None)
        ]
    );
    // unix_secs × 1000 − (sysUpTime − FIRST_SWITCHED) = 1_800_000_000_000 − 1_000 ms.
    assert_eq!(r.flows[0].first.as_deref(), Some("2027-01-15T07:59:59Z"));
    assert_eq!(r.flows[0].last.as_deref(), Some("2027-01-15T07:59:59.5Z"));
}

#[test]
fn a_truncated_export_file_keeps_what_came_before() {
    let mut file = [
        message(1, &[template_set(), data_set(&[dns_rec(1)])]),
        message(1, &[data_set(&[stray_rec(1)])]),
    ]
    .concat();
    file.truncate(file.len() - 10);
    let mut c = Collector::new();
    let s = c
        .read_from(Path::new("cut.ipfix"), Box::new(Cursor::new(file)))
        .expect("readable");
    let p = s.problem.clone().expect("truncated");
    assert_eq!(p.kind, portolan_audit::ProblemKind::Truncated);
    // The second message starts after the first: 16 + 48 + 4 + 49 bytes.
    assert_eq!(p.offset, 117);
    let r = audit(&policy(), c.finish(), &Options::default());
    assert_eq!(r.flows.len(), 1);
}

pub(crate) const EVE: &str = r#"{"timestamp":"2027-01-15T08:00:00.000000+0000","event_type":"dns","src_ip":"10.20.0.1","src_port":53,"dest_ip":"10.20.0.10","dest_port":33000,"proto":"UDP","dns":{"version":2,"type":"answer","id":7,"rrname":"api.vendor.example","rrtype":"A","rcode":"NOERROR","answers":[{"rrname":"api.vendor.example","rrtype":"A","ttl":300,"rdata":"203.0.113.10"}]}}
{"timestamp":"2027-01-15T08:00:01.100000+0000","flow_id":2,"event_type":"tls","src_ip":"10.20.0.10","src_port":40002,"dest_ip":"203.0.113.20","dest_port":443,"proto":"TCP","tls":{"sni":"api.vendor.example","version":"TLS 1.3"}}
{"timestamp":"2027-01-15T08:00:05.000000+0000","flow_id":1,"event_type":"flow","src_ip":"10.20.0.10","src_port":40001,"dest_ip":"203.0.113.10","dest_port":443,"proto":"TCP","app_proto":"tls","flow":{"pkts_toserver":8,"pkts_toclient":7,"bytes_toserver":900,"bytes_toclient":4400,"start":"2027-01-15T08:00:01.000000+0000","end":"2027-01-15T08:00:02.000000+0000","age":1,"state":"closed","reason":"timeout","alerted":false}}
{"timestamp":"2027-01-15T08:00:05.000000+0000","flow_id":2,"event_type":"flow","src_ip":"10.20.0.10","src_port":40002,"dest_ip":"203.0.113.20","dest_port":443,"proto":"TCP","app_proto":"tls","flow":{"pkts_toserver":6,"pkts_toclient":5,"bytes_toserver":700,"bytes_toclient":3000,"start":"2027-01-15T08:00:01.000000+0000","end":"2027-01-15T08:00:02.000000+0000","age":1,"state":"closed","reason":"timeout","alerted":false}}
{"timestamp":"2027-01-15T08:00:05.000000+0000","flow_id":3,"event_type":"flow","src_ip":"10.20.0.10","src_port":40003,"dest_ip":"203.0.113.99","dest_port":443,"proto":"TCP","flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":60,"bytes_toclient":0,"start":"2027-01-15T08:00:03.000000+0000","end":"2027-01-15T08:00:03.000000+0000","age":0,"state":"new","reason":"timeout","alerted":false}}
{"timestamp":"2027-01-15T08:00:05.000000+0000","flow_id":4,"event_type":"flow","src_ip":"10.20.0.10","src_port":33000,"dest_ip":"10.20.0.1","dest_port":53,"proto":"UDP","app_proto":"dns","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":60,"bytes_toclient":76,"start":"2027-01-15T07:59:59.990000+0000","end":"2027-01-15T08:00:00.000000+0000","age":0,"state":"established","reason":"timeout","alerted":false}}
{"timestamp":"2027-01-15T08:00:05.000000+0000","event_type":"alert","src_ip":"10.20.0.10","dest_ip":"203.0.113.99","proto":"TCP","alert":{"signature":"test"}}
"#;

#[test]
fn suricata_flows_named_by_dns_and_by_tls_sni() {
    let (r, f) = read("eve.json", EVE.as_bytes().to_vec());
    assert_eq!(f, Format::SuricataEve);
    let st: Vec<(Status, Option<&str>, Vec<String>)> = r
        .flows
        .iter()
        .map(|f| (f.status, f.rule.as_deref(), f.peer_names.clone()))
        .collect();
    let named = vec!["api.vendor.example".to_string()];
    assert_eq!(
        st,
        vec![
            (Status::Conforming, Some("test-sensor/https"), named.clone()),
            // No DNS answer named 203.0.113.20: the TLS SNI of its flow does.
            (Status::Conforming, Some("test-sensor/https"), named),
            (Status::Violation, None, vec![]),
            (Status::Conforming, Some("test-sensor/dns"), vec![]),
        ]
    );
    assert_eq!(r.flows[0].packets, [8, 7]);
    assert_eq!(r.flows[0].bytes, [900, 4400]);
    assert_eq!(r.flows[2].violation, vec![Mismatch::Peer]);
    assert_eq!(r.dns_responses, 1);
    assert_eq!(r.records_note, None);
}

#[test]
fn live_mode_audits_datagrams_period_by_period() {
    use std::net::UdpSocket;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    // Loopback of the test's own process: a socket, no firewall rules.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("address");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let runner = std::thread::spawn(move || {
        let p = policy();
        let mut periods = Vec::new();
        let totals = portolan_audit::live::run(
            &socket,
            &p,
            &Options::default(),
            Duration::from_millis(300),
            &stop2,
            |r| periods.push((r.flows.len(), r.violations)),
        )
        .expect("runs");
        (totals, periods)
    });
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // Template first, then the records in another datagram: templates outlive a datagram.
    tx.send_to(&message(1, &[template_set()]), addr)
        .expect("send");
    tx.send_to(&message(1, &[data_set(&[dns_rec(1), stray_rec(1)])]), addr)
        .expect("send");
    std::thread::sleep(Duration::from_millis(800));
    // A second period: the same stray flow again.
    tx.send_to(&message(1, &[data_set(&[stray_rec(1)])]), addr)
        .expect("send");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (totals, periods) = runner.join().expect("live thread");
    assert_eq!(totals.datagrams, 3);
    assert_eq!(totals.records.records, 3);
    assert_eq!(
        (totals.flows, totals.conforming, totals.violations),
        (3, 1, 2)
    );
    assert_eq!(periods.iter().map(|p| p.1).sum::<u64>(), 2);
    assert!(periods.len() >= 2, "{periods:?}");
    // dns was used in a period: not unused; https never was.
    let (g, unused) = &totals.unused[0];
    assert_eq!(g, "sensor");
    assert!(unused.contains(&"test-sensor/https".to_string()));
    assert!(!unused.contains(&"test-sensor/dns".to_string()));
}
