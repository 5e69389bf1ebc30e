//! Flow logs: Zeek (TSV and JSON, conn and dns), conntrack, nftables log lines.

use std::io::Cursor;
use std::path::Path;

use portolan_audit::input::Format;
use portolan_audit::{audit, Collector, Mismatch, Options, ProblemKind, Report, Status};

use crate::scenario::*;

fn read(inputs: &[(&str, &str)]) -> (Report, Vec<Format>) {
    let mut c = Collector::new();
    let mut formats = Vec::new();
    for (name, text) in inputs {
        let s = c
            .read_from(
                Path::new(name),
                Box::new(Cursor::new(text.as_bytes().to_vec())),
            )
            .expect("readable");
        assert_eq!(s.problem, None, "{name}");
        formats.push(s.format);
    }
    (audit(&policy(), c.finish(), &Options::default()), formats)
}

const CONN_TSV: &str = "#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]
1800000000.100000\tC1\t10.20.0.10\t40001\t203.0.113.10\t443\ttcp\tssl\t1.5\t500\t4000\tSF\tT\tF\t0\tShADadFf\t8\t900\t7\t4400\t-
1800000000.200000\tC2\t10.20.0.10\t33001\t10.20.0.1\t53\tudp\tdns\t0.01\t40\t80\tSF\tT\tT\t0\tDd\t1\t68\t1\t108\t-
1800000000.300000\tC3\t10.20.0.10\t8\t198.51.100.10\t0\ticmp\t-\t0.01\t8\t8\tOTH\tT\tF\t0\t-\t1\t36\t1\t36\t-
1800000000.400000\tC4\t10.20.0.10\t40009\t203.0.113.99\t443\ttcp\t-\t0.1\t0\t0\tS0\tT\tF\t0\tS\t1\t60\t0\t0\t-
#close\t2027-01-15-08-00-00
";

const DNS_TSV: &str = "#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tdns
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected
1800000000.050000\tD1\t10.20.0.10\t33000\t10.20.0.1\t53\tudp\t7\t0.001\tapi.vendor.example\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\tapi.vendor.example,203.0.113.10\t300.000000,300.000000\tF
";

#[test]
fn zeek_tsv_conn_and_dns() {
    let (r, f) = read(&[("dns.log", DNS_TSV), ("conn.log", CONN_TSV)]);
    assert_eq!(f, vec![Format::ZeekTsv, Format::ZeekTsv]);
    let st: Vec<(Status, Option<&str>)> = r
        .flows
        .iter()
        .map(|f| (f.status, f.rule.as_deref()))
        .collect();
    assert_eq!(
        st,
        vec![
            (Status::Conforming, Some("test-sensor/https")),
            (Status::Conforming, Some("test-sensor/dns")),
            (Status::Conforming, Some("test-sensor/ping")),
            (Status::Violation, None),
        ]
    );
    assert_eq!(r.flows[0].packets, [8, 7]);
    assert_eq!(r.flows[0].bytes, [900, 4400]);
    assert_eq!(r.flows[3].violation, vec![Mismatch::Peer]);
}

#[test]
fn zeek_json_lines() {
    let dns = r#"{"ts":1800000000.05,"uid":"D1","id.orig_h":"10.20.0.10","id.orig_p":33000,"id.resp_h":"10.20.0.1","id.resp_p":53,"proto":"udp","query":"api.vendor.example","rcode_name":"NOERROR","answers":["edge.cdn.example","203.0.113.10"],"TTLs":[60.0,300.0]}"#;
    let conn = r#"{"ts":"2027-01-15T08:00:00.100000Z","uid":"C1","id.orig_h":"10.20.0.10","id.orig_p":40001,"id.resp_h":"203.0.113.10","id.resp_p":443,"proto":"tcp","duration":1.5,"conn_state":"SF","orig_pkts":8,"orig_ip_bytes":900,"resp_pkts":7,"resp_ip_bytes":4400}"#;
    // Both records in one JSON-lines stream: dns first, as Zeek's json-streaming writes them.
    let text = format!("{dns}\n{conn}\n");
    let (r, f) = read(&[("zeek.json", &text)]);
    assert_eq!(f, vec![Format::ZeekJson]);
    assert_eq!(r.flows.len(), 1);
    // The DNS record is at 1800000000.05 (2027-01-15T08:00:00.05Z): the name's window holds the
    // connection's start.
    assert_eq!(r.flows[0].status, Status::Conforming, "{:#?}", r.flows[0]);
    assert_eq!(
        r.flows[0].peer_names,
        vec!["api.vendor.example", "edge.cdn.example"]
    );
}

#[test]
fn conntrack_list_and_events() {
    let list = "\
tcp      6 431999 ESTABLISHED src=10.20.0.10 dst=10.99.0.5 sport=40000 dport=22 packets=5 bytes=400 src=10.99.0.5 dst=10.20.0.10 sport=22 dport=40000 packets=4 bytes=300 [ASSURED] mark=0 use=1
udp      17 29 src=10.20.0.10 dst=10.99.0.123 sport=123 dport=123 packets=1 bytes=76 src=10.99.0.123 dst=10.20.0.10 sport=123 dport=123 packets=1 bytes=76 mark=0 use=1
unknown  50 599 src=10.20.0.10 dst=198.51.100.10 packets=10 bytes=1000 src=198.51.100.10 dst=10.20.0.10 packets=9 bytes=900 mark=0 use=1
";
    let (r, f) = read(&[("ct.txt", list)]);
    assert_eq!(f, vec![Format::Conntrack]);
    let st: Vec<(Status, Vec<Mismatch>)> = r
        .flows
        .iter()
        .map(|f| (f.status, f.violation.clone()))
        .collect();
    assert_eq!(
        st,
        vec![
            (Status::Violation, vec![Mismatch::Initiation]),
            (Status::Conforming, vec![]),
            (Status::Conforming, vec![]),
        ]
    );
    assert_eq!(r.flows[2].packets, [10, 9]);

    let events = "\
[1800000000.100000]\t    [NEW] tcp      6 120 SYN_SENT src=10.99.0.5 dst=10.20.0.10 sport=50000 dport=22 [UNREPLIED] src=10.20.0.10 dst=10.99.0.5 sport=22 dport=50000
[1800000000.100500]\t [UPDATE] tcp      6 60 SYN_RECV src=10.99.0.5 dst=10.20.0.10 sport=50000 dport=22 src=10.20.0.10 dst=10.99.0.5 sport=22 dport=50000
[1800000003.000000]\t[DESTROY] tcp      6 src=10.99.0.5 dst=10.20.0.10 sport=50000 dport=22 packets=12 bytes=2000 src=10.20.0.10 dst=10.99.0.5 sport=22 dport=50000 packets=10 bytes=3000 [ASSURED]
";
    let (r, _) = read(&[("ct-events.txt", events)]);
    assert_eq!(r.flows.len(), 1);
    let f = &r.flows[0];
    assert_eq!(f.rule.as_deref(), Some("test-sensor/ssh"));
    assert_eq!(f.packets, [12, 10]);
    assert_eq!(f.first.as_deref(), Some("2027-01-15T08:00:00.1Z"));
    assert_eq!(f.last.as_deref(), Some("2027-01-15T08:00:03Z"));
}

#[test]
fn nftables_log_lines() {
    let log = "\
2027-01-15T08:00:00.100000+0000 fw kernel: portolan sensor: IN=lan0 OUT=wan0 MAC=02:00 SRC=10.20.0.10 DST=203.0.113.99 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=1 DF PROTO=TCP SPT=40009 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0
2027-01-15T08:00:01.100000+0000 fw kernel: portolan sensor: IN=lan0 OUT=wan0 MAC=02:00 SRC=10.20.0.10 DST=203.0.113.99 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=2 DF PROTO=TCP SPT=40009 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0
2027-01-15T08:00:02.000000+0000 fw kernel: portolan sensor: IN=lan0 OUT=wan0 SRC=10.20.0.10 DST=198.51.100.10 LEN=28 TOS=0x00 PREC=0x00 TTL=63 ID=3 PROTO=ICMP TYPE=13 CODE=0 ID=9 SEQ=1
Jan 15 08:00:03 fw kernel: [ 1234.5] portolan unmatched: IN=lan0 OUT=wan0 SRC=10.20.0.77 DST=192.0.2.1 LEN=40 PROTO=UDP SPT=1000 DPT=2000 LEN=20
";
    let (r, f) = read(&[("kern.log", log)]);
    assert_eq!(f, vec![Format::NftLog]);
    assert_eq!(r.flows.len(), 3);
    assert_eq!(r.flows[0].packets, [2, 0]);
    assert_eq!(r.flows[0].bytes, [120, 0]);
    assert_eq!(r.flows[0].violation, vec![Mismatch::Peer]);
    assert_eq!(r.flows[0].logged_group.as_deref(), Some("sensor"));
    assert_eq!(r.flows[1].icmp_type.as_deref(), Some("timestamp-request"));
    assert_eq!(r.flows[2].status, Status::UnknownDevice);
    assert_eq!(r.flows[2].first, None);
}

#[test]
fn a_bad_log_line_is_reported_with_its_offset() {
    let text = format!("{CONN_TSV}1800000000.5\tC9\tnot-an-address\n");
    let mut c = Collector::new();
    let s = c
        .read_from(
            Path::new("conn.log"),
            Box::new(Cursor::new(text.clone().into_bytes())),
        )
        .expect("readable")
        .clone();
    let p = s.problem.expect("problem");
    assert_eq!(p.kind, ProblemKind::Corrupt);
    assert_eq!(p.offset, CONN_TSV.len() as u64);
    // Cut inside the last record: truncated.
    let cut = &CONN_TSV[..CONN_TSV.len() - 40];
    let mut c = Collector::new();
    let s = c
        .read_from(
            Path::new("conn.log"),
            Box::new(Cursor::new(cut.as_bytes().to_vec())),
        )
        .expect("readable")
        .clone();
    assert_eq!(s.problem.map(|p| p.kind), Some(ProblemKind::Truncated));
    assert_eq!(c.finish().flows.len(), 3);
}
