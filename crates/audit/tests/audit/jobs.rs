//! Reading and judging on several threads (`audit --jobs N`) gives the report one thread
//! gives, byte for byte: the one-thread `Collector` is the reference, the captures and flow
//! records are the tests' own (written with the crate's writer and laid out by hand in
//! `records.rs`) and the fuzz seeds of every flow-log format in `fuzz/seeds/`.

use std::path::{Path, PathBuf};

use portolan_audit::decode;
use portolan_audit::flows::{shard_of, FlowTable};
use portolan_audit::parallel::{read_all, read_all_tuned};
use portolan_audit::split;
use portolan_audit::write::{self, L4};
use portolan_audit::{
    audit, audit_jobs, audit_streamed, Collector, FlowRecord, Options, Report, Status,
};

use crate::records::{data_set, dns_rec, message, stray_rec, template_set, EVE};
use crate::scenario::*;

/// The report as the CLI's JSON would carry it (every field of every flow and group).
fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("a report serialises")
}

fn one_thread(paths: &[PathBuf]) -> String {
    let mut c = Collector::new();
    for p in paths {
        c.read(p).expect("readable");
    }
    json(&audit(&policy(), c.finish(), &Options::default()))
}

fn threads(paths: &[PathBuf], jobs: usize) -> String {
    let obs = read_all(paths, jobs, None).expect("readable");
    json(&audit_jobs(&policy(), obs, &Options::default(), jobs))
}

fn seeds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

/// A quoted packet for an ICMP error: the IP header and 8 bytes of the UDP header.
fn quote(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut q = write::ip(
        a(src),
        a(dst),
        &L4::Udp {
            sport,
            dport,
            payload: b"",
        },
    );
    q.truncate(28);
    q
}

/// The NTP server's router telling `dev` that port 123 is unreachable, quoting its request
/// from `port`.
fn port_unreachable(t: &mut Traffic, at: i64, dev: &str, port: u16) {
    t.ip(
        at,
        "10.99.0.1",
        dev,
        L4::Icmp {
            ty: 3,
            code: 3,
            id: 0,
            seq: 0,
            payload: &quote(dev, port, "10.99.0.123", 123),
        },
    );
}

/// Everything one table's order decides, over many 5-tuples so that every shard gets some:
/// DNS answers with TTLs that expire (flows inside and after the window), CNAME chains, TCP
/// connections that reuse a 5-tuple, one open before the capture (no SYN), ESP SAs whose
/// reverse is seen first, echo, ICMP errors quoting a flow of the capture and errors quoting
/// nothing seen (one router, one type and code, quotes of many 5-tuples: in one table they
/// are one flow), and hosts that are not devices.
fn busy() -> Traffic {
    let mut t = Traffic::default();
    let dev = "10.20.0.10";
    for round in 0..6i64 {
        let t0 = round * 20_000;
        t.dns(
            ms(t0),
            ("10.20.0.1", dev),
            "api.vendor.example",
            &[],
            &["203.0.113.10", "203.0.113.11"],
            5,
        );
        t.dns(
            ms(t0 + 100),
            ("10.20.0.1", dev),
            "dl.updates.example",
            &[("edge.cdn.example", 60)],
            &["198.51.100.80"],
            5,
        );
        for k in 0..40u16 {
            let at = t0 + 200 + i64::from(k) * 150;
            let port = 41000 + round as u16 * 100 + k;
            // Inside the 5 s window for k < 32, after it for the rest: violations.
            let peer = if k % 2 == 0 {
                "203.0.113.10"
            } else {
                "203.0.113.11"
            };
            t.tcp(ms(at), (dev, port), (peer, 443));
            if k % 5 == 0 {
                t.tcp(ms(at + 30), (dev, port + 5000), ("198.51.100.80", 80));
            }
            if k % 7 == 0 {
                // The same 5-tuple again after the close: a new connection.
                t.tcp(ms(at + 60), (dev, port), (peer, 443));
            }
            if k % 9 == 0 {
                t.udp(ms(at + 90), (dev, port), ("10.99.0.123", 123));
                // The unknown host's traffic.
                t.udp(ms(at + 95), ("10.20.0.77", port), ("192.0.2.9", 53));
                // Unreachable quoting the NTP request just sent: related to its flow.
                port_unreachable(&mut t, ms(at + 92), dev, port);
            }
            // Errors quoting flows never seen, from one router: one flow in one table.
            t.ip(
                ms(at + 100),
                "10.20.0.254",
                dev,
                L4::Icmp {
                    ty: 3,
                    code: 1,
                    id: 0,
                    seq: 0,
                    payload: &quote(dev, port + 20000, "192.0.2.200", 9000 + k),
                },
            );
        }
        // A connection open before the capture: no SYN, the first packet's sender.
        t.ip(
            ms(t0 + 7000),
            "203.0.113.10",
            dev,
            L4::Tcp {
                sport: 443,
                dport: 40500 + round as u16,
                flags: ACK | PSH,
                payload: b"data",
            },
        );
        // ESP: the reverse SA first.
        for (i, (src, dst, spi)) in [
            ("198.51.100.10", dev, 0x1000 + round as u32),
            (dev, "198.51.100.10", 0x2000 + round as u32),
        ]
        .into_iter()
        .enumerate()
        {
            esp(&mut t, ms(t0 + 7100 + i as i64), src, dst, spi);
        }
        t.ip(
            ms(t0 + 7200),
            dev,
            "198.51.100.10",
            L4::Icmp {
                ty: 8,
                code: 0,
                id: 100 + round as u16,
                seq: 1,
                payload: b"ping",
            },
        );
    }
    t
}

/// A pcapng capture (raw IP) of these packets: a capture `split` does not cut, which goes
/// to the shards of the flow table.
fn pcapng(packets: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut w = write::PcapngWriter::new(Vec::new()).expect("in memory");
    let raw = u16::try_from(decode::linktype::RAW).expect("a 16-bit link type");
    let iface = w.interface(raw, 65535, 9).expect("in memory");
    for (ts, ip) in packets {
        w.packet(iface, *ts, ip, None).expect("in memory");
    }
    w.into_inner()
}

/// An ESP packet of SA `spi`.
fn esp(t: &mut Traffic, at: i64, src: &str, dst: &str, spi: u32) {
    t.ip(
        at,
        src,
        dst,
        L4::Esp {
            spi,
            seq: 1,
            payload: b"sealed",
        },
    );
}

/// Writes a file into `dir` and returns its path.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("temporary file");
    p
}

#[test]
fn every_core_gives_the_report_of_one() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let busy = busy().sorted();
    let whole = {
        let mut w = write::PcapWriter::new(Vec::new(), decode::linktype::ETHERNET, 65535, false)
            .expect("in memory");
        for (ts, ip) in &busy {
            w.packet(*ts, &write::ethernet(ip, &[]), None)
                .expect("in memory");
        }
        w.into_inner()
    };
    // The same traffic cut in two captures: flows continue from one into the other.
    let (first, second) = busy.split_at(busy.len() / 2);
    let half = |part: &[(i64, Vec<u8>)]| pcapng(part);
    let ipfix = message(1, &[template_set(), data_set(&[dns_rec(0), stray_rec(0)])]);
    let inputs: Vec<(&str, Vec<PathBuf>)> = vec![
        ("busy.pcap", vec![put(dir.path(), "busy.pcap", &whole)]),
        (
            "two captures",
            vec![
                put(dir.path(), "a.pcapng", &half(first)),
                put(dir.path(), "b.pcapng", &half(second)),
            ],
        ),
        (
            "the conforming scenario",
            vec![put(
                dir.path(),
                "conforming.pcap",
                &pcap(&conforming(), decode::linktype::LINUX_SLL2, None),
            )],
        ),
        (
            "every format at once",
            vec![
                put(dir.path(), "x.pcapng", &half(first)),
                seeds().join("zeek_tsv/conn.log"),
                seeds().join("zeek_json/conn-dns.json"),
                put(dir.path(), "y.pcapng", &half(second)),
                seeds().join("conntrack/ct.txt"),
                seeds().join("nftlog/kernel.log"),
                seeds().join("capture/udp.pcap"),
                put(dir.path(), "r.ipfix", &ipfix),
                put(dir.path(), "eve.json", EVE.as_bytes()),
            ],
        ),
    ];
    // Plain pcap files only (read in stretches of time), with flow logs beside them.
    let plain = vec![
        inputs[0].1[0].clone(),
        seeds().join("zeek_json/conn-dns.json"),
        inputs[2].1[0].clone(),
        seeds().join("capture/udp.pcap"),
    ];
    let inputs = [inputs, vec![("plain pcap files and a Zeek log", plain)]].concat();
    for (what, paths) in &inputs {
        let reference = one_thread(paths);
        for jobs in [2, 3] {
            assert!(
                threads(paths, jobs) == reference,
                "{what}: the report on {jobs} threads differs from the one on one thread"
            );
        }
    }
    // Plain pcap files are read in stretches (cut as small as they go here), each window by
    // window: with small windows the busy capture spans hundreds of them, and cut short in its
    // last record it also has a tail read the stream reader's way. A pcapng file before it
    // sends both to the shards, whose windows are decoded on every thread, and leaves batches
    // to go first.
    let cut = put(dir.path(), "cut.pcap", &whole[..whole.len() - 5]);
    let mixed = vec![
        put(dir.path(), "m.pcapng", &half(first)),
        inputs[0].1[0].clone(),
    ];
    for (what, paths) in [
        ("busy.pcap", inputs[0].1.clone()),
        ("busy.pcap cut short", vec![cut]),
        ("a pcapng file, then busy.pcap", mixed),
    ] {
        let reference = one_thread(&paths);
        for window in [64, 1_000, 20_000] {
            for jobs in [2, 3] {
                let obs = read_all_tuned(&paths, jobs, None, window, 1).expect("readable");
                let r = json(&audit_jobs(&policy(), obs, &Options::default(), jobs));
                assert!(
                    r == reference,
                    "{what}: {jobs} threads and windows of {window} bytes differ from one thread"
                );
            }
        }
    }
    // The busy capture exercises what the shards must agree on. Counted by hand from
    // `busy()`: per round 40 HTTPS connections, 6 reused 5-tuples (k = 0, 7, …, 35), 8 to the
    // CDN (k = 0, 5, …, 35), 5 NTP and 5 unknown-host flows (k = 0, 9, …, 36), 1 midstream, 2
    // ESP SAs and 1 echo: 68, over 6 rounds 408; plus the one DNS flow (every answer goes to
    // port 33000) and the one flow of the errors quoting nothing.
    let obs = read_all(&inputs[0].1, 2, None).expect("readable");
    let r = audit_jobs(&policy(), obs, &Options::default(), 2);
    assert_eq!(r.flows.len(), 410);
    let orphan: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.src.to_string() == "10.20.0.254")
        .collect();
    assert_eq!(orphan.len(), 1);
    assert_eq!(orphan[0].packets, [240, 0]);
    // Every NTP request is quoted by an unreachable: 5 × 6.
    let related: u64 = r.flows.iter().map(|f| f.related).sum();
    assert_eq!(related, 30);
    // The quotes of the orphaned errors fall in both shards: the merge above was needed.
    let shards: std::collections::BTreeSet<usize> = busy
        .iter()
        .filter_map(|(_, ip)| decode::ip_packet(ip).ok())
        .filter(|p| p.src.to_string() == "10.20.0.254")
        .map(|p| shard_of(&p, 2))
        .collect();
    assert_eq!(shards.len(), 2);
}

/// Flows that outlive a cut anywhere in the capture (see `stretches_of_time_give_the_report_of_one`):
/// ESP SAs whose reverse SA came 30 s before them, UDP flows whose packets are 20 s apart
/// with an ICMP error quoting them 20 s after their last packet, and TCP connections quoted
/// by an error 10 s after they closed, their 5-tuple reused by a new connection 10 s later
/// (one table counts the error on the first connection); and a flow of the first and last
/// stretches quoted by the capture's last packet.
fn long_lived() -> Traffic {
    let mut t = busy();
    let dev = "10.20.0.10";
    for i in 0..24u16 {
        let t0 = i64::from(i) * 5_000 + 333;
        let spi = 0x7000 + u32::from(i);
        for (at, src, dst, spi) in [
            (t0, "198.51.100.20", dev, spi),
            (t0 + 30_000, dev, "198.51.100.20", spi + 0x100),
        ] {
            esp(&mut t, ms(at), src, dst, spi);
        }
        let port = 30_000 + i;
        t.udp(ms(t0), (dev, port), ("10.99.0.123", 123));
        t.udp(ms(t0 + 20_000), (dev, port), ("10.99.0.123", 123));
        port_unreachable(&mut t, ms(t0 + 40_000), dev, port);
        let tport = 31_000 + i;
        t.tcp(ms(t0 + 100), (dev, tport), ("203.0.113.10", 443));
        let mut q = write::ip(
            a(dev),
            a("203.0.113.10"),
            &L4::Tcp {
                sport: tport,
                dport: 443,
                flags: ACK,
                payload: b"",
            },
        );
        q.truncate(28);
        t.ip(
            ms(t0 + 10_100),
            "10.20.0.254",
            dev,
            L4::Icmp {
                ty: 3,
                code: 4,
                id: 0,
                seq: 0,
                payload: &q,
            },
        );
        t.tcp(ms(t0 + 20_100), (dev, tport), ("203.0.113.10", 443));
    }
    // A flow of the first and the last stretch, quoted by the capture's last packet: an error
    // that is the last thing the last stretch's continued flows are read again for.
    t.udp(ms(5_000), (dev, 29_999), ("10.99.0.123", 123));
    t.udp(ms(150_000), (dev, 29_999), ("10.99.0.123", 123));
    port_unreachable(&mut t, ms(170_000), dev, 29_999);
    t
}

/// Plain pcap files are read in stretches of time, one per thread, each table continuing the
/// one before it (`split`). Cut at every place 2 to 16 even stretches put the cuts, the busy
/// capture's flows of every kind (TCP open across a cut, a 5-tuple reused after it, ESP SAs
/// whose pair began before it, ICMP errors quoting a flow of the stretch before, DNS answers
/// whose TTL spans it) give the report of one thread; so do a capture with frames that are
/// not IP among its packets (numbered, never seen by a table: a stretch's trace has gaps), the
/// capture cut short in its last record, one with a corrupt record in its middle (read on from
/// it on one thread, the problem told as one thread tells it), two captures whose flows
/// continue from one into the other, and a capture whose packets carry chains of fake record
/// headers, which make the guessed record starts wrong (the stretches after a wrong one are
/// read on one thread).
#[test]
fn stretches_of_time_give_the_report_of_one() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let whole = pcap(&busy(), decode::linktype::ETHERNET, None);
    // The record in the middle, its captured length made longer than any snap length.
    let mut corrupt = whole.clone();
    let mut at = 24usize;
    let mut records = Vec::new();
    while at + 16 <= corrupt.len() {
        records.push(at);
        let cap = u32::from_le_bytes(corrupt[at + 8..at + 12].try_into().expect("4 bytes"));
        at += 16 + cap as usize;
    }
    let middle = records[records.len() / 2];
    corrupt[middle + 8..middle + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    // Sixteen empty records in a row, at the capture's time: a plausible chain.
    let sec = u32::try_from(ms(0) / 1_000_000_000).expect("seconds fit");
    let fake: Vec<u8> = (0..16)
        .flat_map(|_| [sec.to_le_bytes(), [0; 4], [0; 4], [0; 4]].concat())
        .collect();
    let mut tricky = busy();
    for k in 0..600u16 {
        tricky.ip(
            ms(i64::from(k) * 200 + 7),
            "10.20.0.10",
            "192.0.2.77",
            L4::Udp {
                sport: 5000,
                dport: 6000 + k % 3,
                payload: &fake,
            },
        );
    }
    let sorted = busy().sorted();
    let (first, second) = sorted.split_at(sorted.len() / 2);
    let plain = |part: &[(i64, Vec<u8>)]| {
        let mut w = write::PcapWriter::new(Vec::new(), decode::linktype::RAW, 65535, true)
            .expect("in memory");
        for (ts, ip) in part {
            w.packet(*ts, ip, None).expect("in memory");
        }
        w.into_inner()
    };
    // Connections only, none reusing a 5-tuple, no ICMP: joining a stretch makes no flow, and
    // the last one is joined without taking its flows into the table.
    let mut plain_tcp = Traffic::default();
    for k in 0..400u16 {
        plain_tcp.tcp(
            ms(i64::from(k) * 50),
            ("10.20.0.10", 20_000 + k),
            ("203.0.113.10", 443),
        );
    }
    // Frames that are not IP (20 zero bytes: Ethernet of type 0) among flows that outlive the
    // cuts: packets a stretch's table never sees, numbered all the same.
    let mut not_ip = write::PcapWriter::new(Vec::new(), decode::linktype::ETHERNET, 65535, false)
        .expect("in memory");
    for (k, (ts, ip)) in long_lived().sorted().into_iter().enumerate() {
        if k % 3 == 1 {
            not_ip.packet(ts, &[0u8; 20], None).expect("in memory");
        }
        not_ip
            .packet(ts, &write::frame(decode::linktype::ETHERNET, &ip), None)
            .expect("in memory");
    }
    let not_ip = not_ip.into_inner();
    let cases: Vec<(&str, Vec<PathBuf>, bool)> = vec![
        (
            "frames that are not IP",
            vec![put(dir.path(), "not-ip.pcap", &not_ip)],
            true,
        ),
        (
            "connections only",
            vec![put(
                dir.path(),
                "tcp.pcap",
                &pcap(&plain_tcp, decode::linktype::ETHERNET, None),
            )],
            true,
        ),
        (
            "busy.pcap",
            vec![put(dir.path(), "busy.pcap", &whole)],
            true,
        ),
        (
            "flows that outlive the cuts",
            vec![put(
                dir.path(),
                "long.pcap",
                &pcap(&long_lived(), decode::linktype::ETHERNET, None),
            )],
            true,
        ),
        (
            "busy.pcap cut short",
            vec![put(dir.path(), "cut.pcap", &whole[..whole.len() - 5])],
            true,
        ),
        (
            "a corrupt record in the middle",
            vec![put(dir.path(), "corrupt.pcap", &corrupt)],
            false,
        ),
        (
            "two plain captures",
            vec![
                put(dir.path(), "first.pcap", &plain(first)),
                put(dir.path(), "second.pcap", &plain(second)),
            ],
            true,
        ),
        (
            "a capture and a Zeek log beside it",
            vec![
                put(
                    dir.path(),
                    "long2.pcap",
                    &pcap(&long_lived(), decode::linktype::ETHERNET, None),
                ),
                seeds().join("zeek_json/conn-dns.json"),
            ],
            true,
        ),
        (
            "fake record headers",
            vec![put(
                dir.path(),
                "tricky.pcap",
                &pcap(&tricky, decode::linktype::ETHERNET, None),
            )],
            false,
        ),
    ];
    let (mut continued, mut replayed, mut unused, mut apart, mut taken) = (0, 0, 0, 0, 0);
    let mut roomed = 0;
    for (what, paths, clean) in &cases {
        let reference = one_thread(paths);
        assert!(reference.contains("\"flows\""), "{what}: a report");
        for jobs in 2..=16 {
            let obs = read_all_tuned(paths, jobs, None, 1 << 20, 1).expect("readable");
            let r = json(&audit_jobs(&policy(), obs, &Options::default(), jobs));
            assert!(
                r == reference,
                "{what}: {jobs} stretches give another report than one thread"
            );
            let list: Vec<split::Capture> = paths
                .iter()
                .enumerate()
                .filter(|(_, p)| p.extension().is_some_and(|e| e == "pcap"))
                .map(|(index, path)| split::Capture {
                    index,
                    path: path.clone(),
                })
                .collect();
            let alone = list.len() == paths.len();
            let read = split::read(
                &list,
                jobs,
                1 << 20,
                1,
                |i, r| (i as u64) << 44 | r,
                !alone,
                None,
            );
            if read.flows.is_some() {
                apart += 1;
                roomed += usize::from(read.roomed);
            } else if alone && read.unused == 0 {
                taken += 1;
            }
            assert_eq!(read.stretches, jobs * list.len(), "{what}: cut {jobs} ways");
            if *clean {
                assert_eq!(read.unused, 0, "{what}: every guessed start is a record's");
                continued += read.continued;
                replayed += read.replayed;
            } else if *what == "fake record headers" {
                unused += read.unused;
            }
        }
    }
    // The seams were crossed by flows, and wrong guesses were caught.
    assert!(continued > 100, "{continued} flows continued across cuts");
    // Both ways of continuing a flow were taken: adding its counts, and reading again.
    assert!(
        replayed > 0 && continued > replayed,
        "{replayed} of {continued} continued flows read again"
    );
    assert!(unused > 0, "no guessed start was wrong");
    // Both ways of joining the last stretch were taken: apart, and (a flow made while
    // joining) taken into the table.
    assert!(
        apart > 0 && taken > 0,
        "{apart} joined apart, {taken} taken in"
    );
    // Room for the flows made apart was made ahead, by a thread left with nothing to read.
    assert!(roomed > 0, "no room made ahead was used");
}

/// `long_lived()`'s traffic as an Ethernet pcap file, in a temporary folder that lasts as long
/// as the handle returned with it.
fn long_capture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = put(
        dir.path(),
        "long.pcap",
        &pcap(&long_lived(), decode::linktype::ETHERNET, None),
    );
    (dir, path)
}

/// The flows and names one `Collector` reads from `path`.
fn collected(path: &Path) -> portolan_audit::Observed {
    let mut c = Collector::new();
    c.read(path).expect("readable");
    c.finish()
}

/// `audit_streamed` of the flows one `Collector` reads from `path`, against the tests' policy.
fn streamed<E: Send>(
    path: &Path,
    jobs: usize,
    run: usize,
    render: &(dyn Fn(&FlowRecord, &mut Vec<u8>) + Sync),
    write: impl FnMut(&[u8]) -> Result<(), E> + Send,
) -> Result<(Report, u64), E> {
    audit_streamed(
        &policy(),
        collected(path),
        &Options::default(),
        jobs,
        run,
        render,
        write,
    )
}

/// The records written as they are judged (`audit_streamed`, what `audit --format json`
/// writes) are the records `audit` keeps, in the same order, and the counts and group
/// summaries are the same: on every thread count and run length, including runs of one flow
/// and runs that do not divide the flows evenly.
#[test]
fn records_written_as_judged_are_the_records_kept() {
    let (_dir, path) = long_capture();
    let kept = audit(&policy(), collected(&path), &Options::default());
    let mut lines = Vec::new();
    for r in &kept.flows {
        portolan_audit::jsonl::flow(&mut lines, r);
        lines.push(b'\n');
    }
    assert!(kept.flows.len() > 500 && kept.violations > 0 && kept.conforming > 0);
    let mut summary = kept.clone();
    summary.flows.clear();
    let render = |f: &FlowRecord, buf: &mut Vec<u8>| {
        portolan_audit::jsonl::flow(buf, f);
        buf.push(b'\n');
    };
    for jobs in [1, 2, 3, 5] {
        for run in [1, 7, 4096] {
            let mut out = Vec::new();
            let (r, n) = streamed(&path, jobs, run, &render, |b| -> Result<(), ()> {
                out.extend_from_slice(b);
                Ok(())
            })
            .expect("written");
            assert_eq!(n, kept.flows.len() as u64);
            assert!(out == lines, "{jobs} threads, runs of {run}: other lines");
            assert_eq!(json(&r), json(&summary), "{jobs} threads, runs of {run}");
            // A write that fails (a closed pipe) ends the run with its error, every thread
            // stopped.
            if kept.flows.len().div_ceil(run) < 3 {
                continue;
            }
            let mut writes = 0;
            let failed = streamed(&path, jobs, run, &render, |_| {
                writes += 1;
                if writes == 3 {
                    Err("closed")
                } else {
                    Ok(())
                }
            });
            assert_eq!(failed.err(), Some("closed"));
            assert_eq!(writes, 3);
        }
    }
}

/// The threads that judge the runs also write them, by turns; a slow writer (a slow reader of
/// the output) holds them back, so that records judged and not yet written never pile up:
/// at most `jobs * RUNS_AHEAD` runs taken ahead of the one being written, and `jobs - 1`
/// more taken at the same moment. Counted: the records rendered, against the lines written
/// before each write. Without the bound, the judging (a few microseconds a run) races through
/// every run while the writer sleeps.
#[test]
fn a_slow_writer_holds_the_judging_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (_dir, path) = long_capture();
    let rendered = AtomicUsize::new(0);
    let render = |f: &FlowRecord, buf: &mut Vec<u8>| {
        rendered.fetch_add(1, Ordering::SeqCst);
        portolan_audit::jsonl::flow(buf, f);
        buf.push(b'\n');
    };
    let (jobs, run) = (3, 5);
    let mut written = 0usize;
    let mut most_ahead = 0usize;
    let mut writes = 0;
    let (_, n) = streamed(&path, jobs, run, &render, |b| -> Result<(), ()> {
        std::thread::sleep(std::time::Duration::from_millis(2));
        most_ahead = most_ahead.max(rendered.load(Ordering::SeqCst) - written);
        written += b.iter().filter(|&&c| c == b'\n').count();
        writes += 1;
        Ok(())
    })
    .expect("written");
    assert_eq!(written as u64, n);
    assert!(writes > 50, "{writes} runs: too few to tell");
    // The run being written, `jobs * RUNS_AHEAD` taken ahead of it, `jobs - 1` taken at once.
    let bound = (1 + jobs * portolan_audit::report::RUNS_AHEAD + jobs - 1) * run;
    assert!(
        most_ahead <= bound,
        "{most_ahead} records judged ahead of the writing (at most {bound})"
    );
    // And the judging did go on while the writer slept.
    assert!(
        most_ahead > run,
        "{most_ahead} records judged ahead: no overlap"
    );
}

/// A thread that panics while judging or writing stops the others (which would wait for the
/// runs it held) and the panic reaches the caller: the call ends, it does not hang. Run on a
/// thread of its own, with a minute to end.
#[test]
fn a_panic_while_streaming_reaches_the_caller() {
    let (_dir, path) = long_capture();
    for (jobs, in_write) in [(2, false), (3, false), (2, true), (3, true)] {
        let path = path.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ended = std::panic::catch_unwind(move || {
                let rendered = std::sync::atomic::AtomicUsize::new(0);
                let render = |f: &FlowRecord, buf: &mut Vec<u8>| {
                    let n = rendered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    assert!(in_write || n != 40, "render fails");
                    portolan_audit::jsonl::flow(buf, f);
                };
                let mut writes = 0;
                let _ = audit_streamed(
                    &policy(),
                    collected(&path),
                    &Options::default(),
                    jobs,
                    3,
                    &render,
                    |_| -> Result<(), ()> {
                        writes += 1;
                        assert!(!in_write || writes != 10, "write fails");
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        Ok(())
                    },
                );
            });
            let _ = tx.send(ended.is_err());
        });
        let panicked = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("audit_streamed hung after a panic");
        assert!(
            panicked,
            "{jobs} threads: the panic did not reach the caller"
        );
    }
}

/// A flow table moves the flows idle for a while out of the hash table every packet probes
/// first (`FlowTable::sweeping`); a packet of such a flow still finds it (and a reused
/// 5-tuple still ends it, an ICMP error still counts on it): the flows are the same however
/// often the table sweeps, down to every packet.
#[test]
fn idle_flows_moved_aside_are_still_found() {
    let traffic = long_lived().sorted();
    let reference = {
        let mut t = FlowTable::new();
        for (ts, ip) in &traffic {
            t.observe(&decode::ip_packet(ip).expect("decodes"), *ts);
        }
        t.into_flows()
    };
    assert!(reference.len() > 500);
    for (sweep, idle) in [(1, 1), (1, 3), (3, 5), (7, 2), (64, 64)] {
        let mut t = FlowTable::sweeping(sweep, idle);
        for (ts, ip) in &traffic {
            t.observe(&decode::ip_packet(ip).expect("decodes"), *ts);
        }
        assert!(
            t.into_flows() == reference,
            "sweeping every {sweep} packets the flows idle for {idle}"
        );
    }
}

/// A DNS answer counted by one shard names the peer of a flow another shard counted: names
/// are all known before any flow is judged.
#[test]
fn a_dns_answer_names_flows_of_every_shard() {
    let dev = "10.20.0.10";
    let mut t = Traffic::default();
    t.dns(
        ms(0),
        ("10.20.0.1", dev),
        "api.vendor.example",
        &[],
        &["203.0.113.10"],
        60,
    );
    let answer = t.sorted().last().map(|(_, ip)| ip.clone()).expect("answer");
    let answer_shard = shard_of(&decode::ip_packet(&answer).expect("decodes"), 2);
    // Two connections whose packets land in the other shard than the answer: one inside the
    // answer's 60 s, one after it.
    let mut other = (40000u16..)
        .filter(|port| {
            let syn = write::ip(
                a(dev),
                a("203.0.113.10"),
                &L4::Tcp {
                    sport: *port,
                    dport: 443,
                    flags: SYN,
                    payload: b"",
                },
            );
            shard_of(&decode::ip_packet(&syn).expect("decodes"), 2) != answer_shard
        })
        .take(2);
    let (p1, p2) = (other.next().expect("a port"), other.next().expect("a port"));
    t.tcp(ms(1_000), (dev, p1), ("203.0.113.10", 443));
    t.tcp(ms(61_000), (dev, p2), ("203.0.113.10", 443));
    let dir = tempfile::tempdir().expect("temporary folder");
    // pcapng: a plain pcap file would be read in stretches of time, not by shards.
    let path = put(dir.path(), "dns.pcapng", &pcapng(&t.sorted()));
    let obs = read_all(std::slice::from_ref(&path), 2, None).expect("readable");
    let r = audit_jobs(&policy(), obs, &Options::default(), 2);
    let https: Vec<_> = r.flows.iter().filter(|f| f.dport == Some(443)).collect();
    assert_eq!(https.len(), 2);
    // Inside the TTL window: the profile's `https` flow to api.vendor.example.
    assert_eq!(https[0].sport, Some(p1));
    assert_eq!(https[0].status, Status::Conforming);
    assert_eq!(https[0].rule.as_deref(), Some("test-sensor/https"));
    assert_eq!(https[0].peer_names, vec!["api.vendor.example".to_string()]);
    // 61 s after a 60 s answer: the name no longer holds the address.
    assert_eq!(https[1].sport, Some(p2));
    assert_eq!(https[1].status, Status::Violation);
    assert!(https[1].peer_names.is_empty());
    assert_eq!(r.dns_responses, 1);
    assert_eq!(json(&r), one_thread(&[path]));
}
