//! `portolan audit --jobs N` prints, byte for byte, what `--jobs 1` prints: the JSON lines and
//! the table, over a capture of many flows with DNS answers written here, two captures one
//! flow continues across, and the repository's flow-log fuzz seeds beside them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use portolan_audit::decode::linktype;
use portolan_audit::write::{self, PcapWriter, L4};

const PROFILE: &str = r#"portolan: 1
id: jobs-device
vendor: Test
product: Device
sources:
  - {id: doc, title: Test page, url: "https://example.com/device"}
endpoints:
  - {id: cloud, hosts: [api.vendor.example]}
  - {id: dns, service: dns}
flows:
  - {id: https, from: device, to: cloud, initiation: device, protocol: tcp, ports: 443, source: {doc: doc, ref: r1}}
  - {id: dns, from: device, to: dns, initiation: device, protocol: udp, ports: 53, source: {doc: doc, ref: r2}}
listens: none
"#;

const SITE: &str = r#"portolan: 1
site: jobs
zones:
  - {id: field, interface: lan0, networks: [10.20.0.0/16]}
  - {id: wan, interface: wan0}
services:
  dns: [10.20.255.1]
devices:
  - {id: devices, profile: jobs-device.yaml, zone: field, addresses: [10.20.0.0/24]}
"#;

fn a(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// 60 devices × 20 connections to two peers, each device's DNS answer (TTL 10 s) first; the
/// connections after the TTL are violations. Packets of all connections interleave.
fn capture() -> Vec<(i64, Vec<u8>)> {
    let t0: i64 = 1_800_000_000_000_000_000;
    let ms = |n: i64| t0 + n * 1_000_000;
    let mut out = Vec::new();
    for d in 1..=60u8 {
        let dev = a(&format!("10.20.0.{d}"));
        let wire = write::dns_answer(
            u16::from(d),
            "api.vendor.example",
            &[],
            &[a("203.0.113.10"), a("203.0.113.11")],
            10,
        );
        let t = ms(i64::from(d));
        let resolver = a("10.20.255.1");
        let dns = |src, dst, sport, dport, payload: &[u8]| {
            write::ip(
                src,
                dst,
                &L4::Udp {
                    sport,
                    dport,
                    payload,
                },
            )
        };
        out.push((t, dns(dev, resolver, 33000, 53, b"q")));
        out.push((t + 1, dns(resolver, dev, 53, 33000, &wire)));
        for k in 0..20u16 {
            let peer = if k % 2 == 0 {
                a("203.0.113.10")
            } else {
                a("203.0.113.11")
            };
            let start = ms(100 + i64::from(d) * 7 + i64::from(k) * 700);
            let port = 40000 + k;
            for (i, (fwd, flags)) in [(true, 0x02), (false, 0x12), (true, 0x10), (true, 0x11)]
                .into_iter()
                .enumerate()
            {
                let (src, dst, sp, dp) = if fwd {
                    (dev, peer, port, 443)
                } else {
                    (peer, dev, 443, port)
                };
                let seg = L4::Tcp {
                    sport: sp,
                    dport: dp,
                    flags,
                    payload: b"",
                };
                out.push((start + i as i64 * 3_000_000, write::ip(src, dst, &seg)));
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

fn pcap(packets: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET, 65535, false).expect("in memory");
    for (t, ip) in packets {
        w.packet(*t, &write::ethernet(ip, &[]), None)
            .expect("in memory");
    }
    w.into_inner()
}

fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("temporary file");
    p
}

/// Exit code and stdout of `portolan audit SITE INPUTS... ARGS...`.
fn audit(site: &Path, inputs: &[PathBuf], args: &[&str]) -> (i32, Vec<u8>) {
    let mut cmd = cargo_bin_cmd!("portolan");
    cmd.arg("audit").arg(site).args(inputs).args(args);
    let out = cmd.output().expect("portolan runs");
    (out.status.code().expect("exited, not killed"), out.stdout)
}

#[test]
fn audit_on_several_threads_prints_what_one_prints() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let site = put(dir.path(), "site.yaml", SITE.as_bytes());
    put(dir.path(), "jobs-device.yaml", PROFILE.as_bytes());
    let packets = capture();
    let (first, second) = packets.split_at(packets.len() / 2);
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let sets = [
        vec![put(dir.path(), "all.pcap", &pcap(&packets))],
        vec![
            put(dir.path(), "first.pcap", &pcap(first)),
            seeds.join("zeek_tsv/conn.log"),
            seeds.join("conntrack/ct.txt"),
            put(dir.path(), "second.pcap", &pcap(second)),
            seeds.join("nftlog/kernel.log"),
            seeds.join("zeek_json/conn-dns.json"),
        ],
    ];
    for inputs in &sets {
        for format in [&["--format", "json"][..], &["--all"][..]] {
            let one = audit(&site, inputs, &[format, &["--jobs", "1"]].concat());
            // Connections opened after their device's answer expired are violations: exit 1.
            assert_eq!(one.0, 1, "violations exit 1");
            let text = String::from_utf8_lossy(&one.1);
            assert!(text.contains("jobs-device/https"), "{text}");
            for jobs in ["2", "3"] {
                let other = audit(&site, inputs, &[format, &["--jobs", jobs]].concat());
                assert_eq!(other.0, one.0, "exit code with --jobs {jobs}");
                assert!(
                    other.1 == one.1,
                    "--jobs {jobs} prints otherwise than --jobs 1 ({format:?}, {inputs:?})"
                );
            }
        }
    }
    // The JSON of the whole capture, read back: every flow is there.
    let (_, out) = audit(&site, &sets[0], &["--format", "json", "--jobs", "2"]);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let flows: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "flow").collect();
    assert_eq!(flows.len(), 60 + 60 * 20);
    // Connection k of device d starts at 100 + 7d + 700k ms. Answers name addresses, not
    // devices (the windows of one address and name merge): the peers are named from the
    // first answer (1 ms) to the last one's end (60 ms + 10 s = 10,060 ms). Inside for
    // 100 + 7d + 700k <= 10,060: every k <= 13; k = 14 for d <= 22. Violations: k >= 15 for
    // every device (5 × 60 = 300), plus k = 14 for d = 23..60 (38).
    let bad = flows.iter().filter(|f| f["status"] == "violation").count();
    assert_eq!(bad, 300 + 38);
}

/// With several jobs the inputs are read while the site loads; what the user is told stays
/// what one job tells, in the same order: a site that does not load is the error (exit 2, the
/// site's diagnostic, nothing of the inputs), even when an input cannot be opened either; an
/// input that cannot be opened beside a good site is named. Standard error is compared with
/// `--jobs 1`'s, which reads the inputs only after the site.
#[test]
fn several_jobs_tell_a_bad_site_first_as_one_does() {
    let dir = tempfile::tempdir().expect("temporary folder");
    put(dir.path(), "jobs-device.yaml", PROFILE.as_bytes());
    let good = put(dir.path(), "site.yaml", SITE.as_bytes());
    // A device group naming a profile that is not there.
    let bad = put(
        dir.path(),
        "bad.yaml",
        SITE.replace("jobs-device.yaml", "missing-device.yaml")
            .as_bytes(),
    );
    let capture = put(dir.path(), "all.pcap", &pcap(&capture()));
    let missing = dir.path().join("missing.pcap");
    let run = |site: &Path, input: &Path, jobs: &str| {
        let out = cargo_bin_cmd!("portolan")
            .arg("audit")
            .arg(site)
            .arg(input)
            .args(["--jobs", jobs])
            .output()
            .expect("portolan runs");
        (
            out.status.code().expect("exited"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for input in [&capture, &missing] {
        let one = run(&bad, input, "1");
        let two = run(&bad, input, "2");
        assert_eq!(one.0, 2, "a site that does not load: {one:?}");
        assert!(one.2.contains("missing-device.yaml"), "{one:?}");
        assert!(!one.2.contains("missing.pcap"), "{one:?}");
        assert_eq!(two, one, "--jobs 2 against --jobs 1, input {input:?}");
    }
    let one = run(&good, &missing, "1");
    let two = run(&good, &missing, "2");
    assert_eq!(one.0, 2, "an input that cannot be opened: {one:?}");
    assert!(one.2.contains("missing.pcap"), "{one:?}");
    assert_eq!(two, one, "--jobs 2 against --jobs 1, a missing input");
}
