//! Reading captures: link types, file formats, snap lengths, gzip, damaged files.

use std::io::Write as _;

use portolan_audit::decode::linktype;
use portolan_audit::flows::Evidence;
use portolan_audit::write::{self, PcapWriter, PcapngWriter, L4};
use portolan_audit::{audit, Options, ProblemKind, Status};

use crate::scenario::*;

/// What every reading of the conforming traffic must give.
fn check_clean(bytes: Vec<u8>, what: &str) {
    let (obs, problem) = observe(bytes);
    assert_eq!(problem, None, "{what}");
    let policy = policy();
    let r = audit(&policy, obs, &Options::default());
    let bad: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.status == Status::Violation)
        .map(|f| f.reason.clone())
        .collect();
    assert!(bad.is_empty(), "{what}: {bad:?}");
    assert_eq!(r.unknown_device, 1, "{what}");
    // dns ×3 (two answers and one query flow), https ×2, update, ntp, ike, esp ×2, ping, ssh.
    assert_eq!(r.conforming, 12, "{what}: {:#?}", r.flows);
    assert_eq!(r.groups[0].unused, vec!["test-sensor/mqtt"], "{what}");
}

#[test]
fn every_link_type_in_pcap() {
    let t = conforming();
    for link in [
        linktype::ETHERNET,
        linktype::LINUX_SLL,
        linktype::LINUX_SLL2,
        linktype::RAW,
        linktype::RAW_BSD,
        linktype::NULL,
        linktype::LOOP,
    ] {
        check_clean(pcap(&t, link, None), &format!("pcap link type {link}"));
    }
}

#[test]
fn ipv4_and_ipv6_link_types() {
    let t = conforming();
    let mut w = PcapWriter::new(Vec::new(), linktype::IPV4, 65535, false).expect("mem");
    let mut w6 = PcapWriter::new(Vec::new(), linktype::IPV6, 65535, false).expect("mem");
    let (mut n4, mut n6) = (0, 0);
    for (ts, ip) in t.sorted() {
        if ip[0] >> 4 == 4 {
            w.packet(ts, &ip, None).expect("mem");
            n4 += 1;
        } else {
            w6.packet(ts, &ip, None).expect("mem");
            n6 += 1;
        }
    }
    let (o4, _) = observe(w.into_inner());
    let (o6, _) = observe(w6.into_inner());
    assert_eq!(o4.frames.frames, n4);
    assert_eq!(o6.frames.frames, n6);
    assert!(o6.flows.iter().all(|f| f.initiator.is_ipv6()));
    // The DNS exchange and the HTTPS connection.
    assert_eq!(o6.flows.len(), 2);
}

#[test]
fn pcap_nanoseconds_and_pcapng_resolutions() {
    let t = conforming();
    let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET, 65535, true).expect("mem");
    for (ts, ip) in t.sorted() {
        w.packet(ts, &write::ethernet(&ip, &[]), None).expect("mem");
    }
    check_clean(w.into_inner(), "pcap with nanosecond timestamps");

    // pcapng with two interfaces of different link types and time resolutions.
    let mut w = PcapngWriter::new(Vec::new()).expect("mem");
    let eth = w.interface(1, 65535, 6).expect("mem");
    let sll2 = w.interface(276, 65535, 9).expect("mem");
    for (i, (ts, ip)) in t.sorted().into_iter().enumerate() {
        if i % 2 == 0 {
            w.packet(eth, ts, &write::ethernet(&ip, &[]), None)
                .expect("mem");
        } else {
            w.packet(sll2, ts, &write::sll2(&ip), None).expect("mem");
        }
    }
    let bytes = w.into_inner();
    let (obs, _) = observe(bytes.clone());
    let first = obs.flows[0].first.expect("timed");
    assert_eq!(first, T0);
    check_clean(bytes, "pcapng");
}

#[test]
fn vlan_tags_single_and_stacked() {
    let t = conforming();
    for vlans in [&[100u16][..], &[200, 100][..]] {
        let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET, 65535, false).expect("mem");
        for (ts, ip) in t.sorted() {
            w.packet(ts, &write::ethernet(&ip, vlans), None)
                .expect("mem");
        }
        let bytes = w.into_inner();
        let (obs, _) = observe(bytes.clone());
        assert!(obs.flows.iter().all(|f| f.vlan == Some(vlans[0])));
        check_clean(bytes, &format!("vlans {vlans:?}"));
    }
}

#[test]
fn gzip_input() {
    let raw = pcap(&conforming(), linktype::ETHERNET, None);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("mem");
    let bytes = gz.finish().expect("mem");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    check_clean(bytes, "gzip");
}

#[test]
fn short_snap_length_keeps_ports_and_lengths() {
    let t = conforming();
    let full = observe(pcap(&t, linktype::ETHERNET, None)).0;
    // 14 + 20 + 8: the TCP header is cut after its ports and sequence number.
    let cut = observe(pcap(&t, linktype::ETHERNET, Some(42))).0;
    assert_eq!(cut.frames.truncated, t.packets.len() as u64 - cut_whole(&t));
    let key = |o: &portolan_audit::Observed| {
        o.flows
            .iter()
            .filter(|f| f.initiator.is_ipv4())
            .map(|f| {
                (
                    f.proto,
                    f.initiator,
                    f.iport,
                    f.responder,
                    f.rport,
                    f.packets,
                    f.bytes,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&full), key(&cut));
    // Without TCP flags the SYN is unknown; and DNS answers were cut, so no names.
    assert!(cut
        .flows
        .iter()
        .any(|f| f.proto == 6 && f.evidence == Evidence::Midstream));
    assert!(cut.names.responses == 0 && full.names.responses == 3);
}

/// Packets of the traffic no longer than 42 bytes on Ethernet.
fn cut_whole(t: &Traffic) -> u64 {
    t.packets
        .iter()
        .filter(|(_, ip)| ip.len() + 14 <= 42)
        .count() as u64
}

#[test]
fn truncated_file_reports_offset_and_keeps_what_came_before() {
    let t = conforming();
    let (bytes, last) = {
        let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET, 65535, false).expect("mem");
        let sorted = t.sorted();
        let mut last = 0;
        let mut len = 24;
        for (ts, ip) in &sorted {
            last = len;
            let f = write::ethernet(ip, &[]);
            len += 16 + f.len();
            w.packet(*ts, &f, None).expect("mem");
        }
        (w.into_inner(), last)
    };
    let cut = bytes[..bytes.len() - 10].to_vec();
    let (obs, problem) = observe(cut);
    let p = problem.expect("a problem");
    assert_eq!(p.kind, ProblemKind::Truncated);
    assert_eq!(p.offset, last as u64, "{p}");
    assert_eq!(obs.frames.frames, t.packets.len() as u64 - 1);
    // Cut inside the file header: nothing could be read, so it is no capture at all (exit 2),
    // not a capture cut short.
    let (_, p) = observe(bytes[..10].to_vec());
    assert_eq!(p.expect("problem").kind, ProblemKind::Corrupt);
}

#[test]
fn corrupt_record_reports_offset() {
    let t = conforming();
    let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET, 65535, false).expect("mem");
    let mut offsets = Vec::new();
    let mut len = 24;
    for (ts, ip) in t.sorted() {
        offsets.push(len);
        let f = write::ethernet(&ip, &[]);
        len += 16 + f.len();
        w.packet(ts, &f, None).expect("mem");
    }
    let mut bytes = w.into_inner();
    let at = offsets[5];
    bytes[at + 8..at + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let (obs, problem) = observe(bytes);
    let p = problem.expect("a problem");
    assert_eq!((p.kind, p.offset), (ProblemKind::Corrupt, at as u64), "{p}");
    assert_eq!(obs.frames.frames, 5);

    // pcapng: a block whose two lengths disagree.
    let mut w = PcapngWriter::new(Vec::new()).expect("mem");
    let i = w.interface(1, 65535, 6).expect("mem");
    // Section header (28 bytes) and interface block (32), then one block per packet.
    let mut sizes = vec![28 + 32];
    for (ts, ip) in t.sorted().into_iter().take(4) {
        let f = write::ethernet(&ip, &[]);
        sizes.push(32 + f.len() + (4 - f.len() % 4) % 4);
        w.packet(i, ts, &f, None).expect("mem");
    }
    let mut bytes = w.into_inner();
    let third: usize = sizes[..3].iter().sum();
    let end = third + sizes[3];
    bytes[end - 4..end].copy_from_slice(&9999u32.to_le_bytes());
    let (obs, problem) = observe(bytes);
    let p = problem.expect("a problem");
    assert_eq!(
        (p.kind, p.offset),
        (ProblemKind::Corrupt, third as u64),
        "{p}"
    );
    assert_eq!(obs.frames.frames, 2);
}

#[test]
fn icmp_errors_count_on_the_flow_they_quote() {
    let mut t = Traffic::default();
    t.ip(
        ms(0),
        "10.20.0.10",
        "198.51.100.10",
        L4::Udp {
            sport: 4500,
            dport: 4500,
            payload: b"x",
        },
    );
    let quoted = write::ip(
        a("10.20.0.10"),
        a("198.51.100.10"),
        &L4::Udp {
            sport: 4500,
            dport: 4500,
            payload: b"x",
        },
    );
    t.ip(
        ms(1),
        "198.51.100.10",
        "10.20.0.10",
        L4::Icmp {
            ty: 3,
            code: 3,
            id: 0,
            seq: 0,
            payload: &quoted,
        },
    );
    let (obs, _) = observe(pcap(&t, linktype::RAW, None));
    assert_eq!(obs.flows.len(), 1);
    assert_eq!(obs.flows[0].related, 1);
}

#[test]
fn dns_over_tcp_names_peers() {
    let mut t = Traffic::default();
    let wire = write::dns_answer(1, "api.vendor.example", &[], &[a("203.0.113.10")], 300);
    let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&wire);
    t.tcp(ms(0), ("10.20.0.10", 41000), ("10.20.0.1", 53));
    t.ip(
        ms(3),
        "10.20.0.1",
        "10.20.0.10",
        L4::Tcp {
            sport: 53,
            dport: 41000,
            flags: PSH | ACK,
            payload: &framed,
        },
    );
    let (obs, _) = observe(pcap(&t, linktype::ETHERNET, None));
    assert_eq!(
        obs.names_at(a("203.0.113.10"), Some(ms(10))),
        vec!["api.vendor.example"]
    );
}

#[test]
fn not_a_capture_is_refused() {
    let mut c = portolan_audit::Collector::new();
    let r = c.read_from(
        std::path::Path::new("junk"),
        Box::new(std::io::Cursor::new(b"\x00\x01\x02 hello".to_vec())),
    );
    assert!(matches!(
        r,
        Err(portolan_audit::AuditError::UnknownFormat { .. })
    ));
}

#[test]
fn icmpv6_echo_pairs_into_one_flow() {
    let mut t = Traffic::default();
    let echo = |ty| L4::Icmp {
        ty,
        code: 0,
        id: 9,
        seq: 1,
        payload: b"ping",
    };
    t.ip(ms(0), "fd00:20::10", "2001:db8:443::10", echo(128));
    t.ip(ms(1), "2001:db8:443::10", "fd00:20::10", echo(129));
    t.ip(ms(2), "fd00:20::10", "2001:db8:443::10", echo(128));
    let (obs, _) = observe(pcap(&t, linktype::LINUX_SLL2, None));
    assert_eq!(obs.flows.len(), 1);
    let f = &obs.flows[0];
    assert_eq!(
        (f.proto, f.packets, f.evidence),
        (58, [2, 1], Evidence::EchoRequest)
    );
    assert_eq!(f.icmp_type_name(), Some("echo-request"));
    assert_eq!(f.initiator, a("fd00:20::10"));
}
