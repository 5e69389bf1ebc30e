//! Reading rulesets from a real kernel: each test loads a ruleset into a scratch network
//! namespace of its own (never the machine's), lists it with `nft -j`, and checks what the
//! typed model reads against facts written by hand from the ruleset or the site file.
//!
//! They need root and network namespaces; where the machine lacks them every test is
//! reported skipped with a loud message naming what is missing, never passed silently.

use std::path::{Path, PathBuf};
use std::time::Duration;

use portolan_nft::expr::{Expr, Named, Payload, Statement, Verdict};
use portolan_nft::schema::{Family, Hook, Policy, SetFlag};
use portolan_nft::{is_dns_filled_set, read_file, read_live, read_text, Error, Ruleset};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// `v` without the `expires` of set elements, which count down.
fn without_expiry(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::Object(m) => {
            m.remove("expires");
            for x in m.values_mut() {
                *x = without_expiry(x.take());
            }
        }
        serde_json::Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without_expiry(x.take());
            }
        }
        _ => {}
    }
    v
}

/// `data/rich.json` is what this kernel and nft list for `data/rich.nft` (so the offline
/// model tests read real output).
fn a_file_reads_as_nft_lists_it() {
    let r = read_file(&data("rich.nft")).expect("read rich.nft");
    let fixture = std::fs::read_to_string(data("rich.json")).expect("fixture");
    let want: serde_json::Value = serde_json::from_str(&fixture).expect("json");
    let got: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
    assert_eq!(without_expiry(got), without_expiry(want));
}

fn a_file_nft_refuses_is_rejected() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("bad.nft");
    std::fs::write(
        &f,
        "table inet x {\n\tchain c {\n\t\tip saddr 10.0.0.300 accept\n\t}\n}\n",
    )
    .expect("write");
    match read_file(&f) {
        Err(Error::Rejected { detail }) => {
            assert!(detail.contains("10.0.0.300"), "{detail}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn example_site_ruleset() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site.yaml");
    let text = std::fs::read_to_string(&path).expect("site file");
    let cat = portolan_model::catalog::Catalog::embedded().expect("catalog");
    let policy = portolan_model::compile::site_text("examples/site.yaml", &text, &cat)
        .expect("the example site compiles")
        .value;
    let opts = portolan_emit::Options {
        dns_timeout: Some(Duration::from_secs(600)),
        ..portolan_emit::Options::default()
    };
    portolan_emit::nftables::emit(&policy, &opts).expect("emit")
}

fn payload_is(e: &Expr, protocol: &str, field: &str) -> bool {
    matches!(e.named(), Some(Named::Payload(Payload::Field { protocol: p, field: f })) if p == protocol && f == field)
}

/// The example site's emitted ruleset, loaded and listed: facts read by hand from
/// `examples/site.yaml` and the catalog profile it names.
fn example_site_reads_back() {
    let r = read_text(&example_site_ruleset()).expect("load and list");
    let tables: Vec<(Family, &str)> = r.tables().map(|t| (t.family, t.name.as_str())).collect();
    assert_eq!(tables, [(Family::Inet, "portolan")]);
    assert_eq!(r.unknown_objects().count(), 0);
    assert_eq!(r.unsupported().count(), 0, "every rule is in the model");

    let fwd = r
        .chain(Family::Inet, "portolan", "forward")
        .expect("forward");
    assert_eq!(
        (fwd.hook.clone(), fwd.policy),
        (Some(Hook::Forward), Some(Policy::Drop))
    );

    // Zones field (10.20.0.0/24 on lan0) and mgmt (10.99.0.0/24 on mgmt0); wan has no
    // networks. The spoofing check maps each network to its zone's chain.
    let zones = r.set(Family::Inet, "portolan", "zones4").expect("zones4");
    let pairs: Vec<(String, Verdict)> = zones
        .elements()
        .map(|e| {
            let Some(Named::Prefix(p)) = e.key.named() else {
                panic!("a prefix: {e:?}")
            };
            let Some(Named::Verdict(v)) = e.value.and_then(Expr::named) else {
                panic!("a verdict: {e:?}")
            };
            (
                format!("{}/{}", p.addr.as_str().unwrap_or("?"), p.len),
                v.clone(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("10.20.0.0/24".into(), Verdict::Jump("from_field".into())),
            ("10.99.0.0/24".into(), Verdict::Jump("from_mgmt".into())),
        ]
    );
    // from_field returns for lan0.
    let first = r
        .rules_of(Family::Inet, "portolan", "from_field")
        .next()
        .expect("a rule");
    assert!(
        matches!(&first.expr[0], Statement::Match(m) if m.right == Expr::String("lan0".into()))
    );
    assert_eq!(
        first.expr.last().and_then(Statement::verdict),
        Some(&Verdict::Return)
    );

    // lrr-ipsec, 10.20.0.10, thingpark-lrr mode ipsec: flow i6 to slrc 198.51.100.10, UDP 500
    // and 4500, either side initiates.
    let dispatch = r
        .set(Family::Inet, "portolan", "fwd_src4h")
        .expect("fwd_src4h");
    let to = dispatch
        .elements()
        .find(|e| e.key == &Expr::String("10.20.0.10".into()))
        .and_then(|e| e.value.and_then(Expr::named).cloned());
    assert_eq!(
        to,
        Some(Named::Verdict(Verdict::Jump("k_lrr-ipsec_out".into())))
    );
    for (chain, side) in [("k_lrr-ipsec_out", "daddr"), ("k_lrr-ipsec_in", "saddr")] {
        let i6: Vec<_> = r
            .rules_of(Family::Inet, "portolan", chain)
            .filter(|x| x.comment.as_deref() == Some("thingpark-lrr/i6"))
            .collect();
        assert_eq!(i6.len(), 1, "{chain}");
        let Statement::Match(addr) = &i6[0].expr[0] else {
            panic!("a match")
        };
        assert!(payload_is(&addr.left, "ip", side));
        assert_eq!(addr.right, Expr::String("198.51.100.10".into()));
        let Statement::Match(port) = &i6[0].expr[1] else {
            panic!("a match")
        };
        assert!(payload_is(&port.left, "udp", "dport"));
        assert_eq!(
            port.right.named(),
            Some(&Named::Set(vec![
                Expr::Number(500.into()),
                Expr::Number(4500.into())
            ]))
        );
        assert_eq!(i6[0].expr[2].verdict(), Some(&Verdict::Accept));
    }

    // DNS-filled sets: named by the emitter, `flags timeout` with the timeout given to emit.
    let dns: Vec<_> = r.sets().filter(|s| is_dns_filled_set(&s.name)).collect();
    assert!(dns
        .iter()
        .any(|s| s.name == "gk_sensorist_com__gk_sensorist_net_v4"));
    for s in &dns {
        assert_eq!(s.flags, [SetFlag::Timeout], "{}", s.name);
        assert_eq!(s.timeout, Some(600), "{}", s.name);
        assert!(s.elem.is_empty(), "{} is filled by DNS only", s.name);
    }
}

fn an_empty_namespace_lists_nothing() {
    let s = portolan_nft::scratch::Scratch::new("empty").expect("scratch namespace");
    let r: Ruleset = read_live(&s.at()).expect("list");
    assert!(r.metainfo().is_some());
    assert_eq!(r.objects.len(), 1, "only metainfo: {:?}", r.objects);
    let name = s.name().to_string();
    s.remove().expect("remove");
    assert!(!Path::new("/run/netns").join(name).exists());
}

/// `apply` decides on the typed objects: a set whose key type changes is recreated, a
/// DNS-filled set declared with a default timeout is not (the kernel lists it with `flags
/// timeout` and `timeout`), a chain the new ruleset drops is deleted.
fn apply_recreates_only_what_changed() {
    let s = portolan_nft::scratch::Scratch::new("apply").expect("scratch namespace");
    let state = tempfile::tempdir().expect("tmp");
    let opts = portolan_nft::apply::Options {
        target: s.at(),
        state_dir: state.path().to_path_buf(),
        confirm: None,
        launcher: None,
    };
    let a = "table inet portolan {\n\tset a_example_com_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\ttimeout 3600s\n\t}\n\tset s4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.0.0.0/24 }\n\t}\n\tchain old {\n\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tip daddr @s4 accept\n\t\tip daddr @a_example_com_v4 accept\n\t}\n}\n";
    let b = "table inet portolan {\n\tset a_example_com_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\ttimeout 3600s\n\t}\n\tset s4 {\n\t\ttype ipv4_addr . inet_service\n\t\tflags interval\n\t\telements = { 10.0.0.0/24 . 443 }\n\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tip daddr . tcp dport @s4 accept\n\t\tip daddr @a_example_com_v4 accept\n\t}\n}\n";
    let first = portolan_nft::apply::apply(a, &opts).expect("first apply");
    assert!(!first.had_previous);
    // A DNS answer arrives between the two loads.
    let add = s.at().command(
        "nft",
        &[
            "add",
            "element",
            "inet",
            "portolan",
            "a_example_com_v4",
            "{ 192.0.2.7 }",
        ],
    );
    portolan_nft::exec::run(add).expect("add element");
    let second = portolan_nft::apply::apply(b, &opts).expect("second apply");
    assert_eq!(second.recreated, ["set s4"]);
    assert_eq!(second.stale_deleted, ["chain old"]);
    let t = portolan_nft::table::read(&s.at())
        .expect("list")
        .expect("a table");
    let dns = t
        .set(Family::Inet, "portolan", "a_example_com_v4")
        .expect("kept");
    let kept: Vec<String> = dns.elements().map(|e| e.key.to_string()).collect();
    assert_eq!(kept, ["192.0.2.7"]);
    let s4 = t.set(Family::Inet, "portolan", "s4").expect("s4");
    assert_eq!(s4.key.to_string(), "ipv4_addr . inet_service");
    assert!(t.chain(Family::Inet, "portolan", "old").is_none());
    s.remove().expect("remove");
}

/// The example site's emitted iptables policy, restored into a scratch namespace as its
/// header says, reads live as the fixtures `data/iptables/site.*-save` (which the offline
/// tests check by hand).
fn iptables_read_live_as_the_fixtures() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/site.yaml");
    let text = std::fs::read_to_string(&path).expect("site file");
    let cat = portolan_model::catalog::Catalog::embedded().expect("catalog");
    let policy = portolan_model::compile::site_text("examples/site.yaml", &text, &cat)
        .expect("compiles")
        .value;
    let out = portolan_emit::iptables::emit(&policy, &portolan_emit::Options::default())
        .expect("emit iptables");
    // The sections `#> NAME` of the emitted file.
    let section = |name: &str| -> String {
        let mut on = false;
        let mut s = String::new();
        for l in out.lines() {
            if let Some(n) = l.strip_prefix("#> ") {
                on = n == name;
            } else if on {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    };
    let scratch = portolan_nft::scratch::Scratch::new("ipt").expect("scratch namespace");
    let w = scratch.at();
    for (name, cmd) in [
        ("ipset", vec!["ipset", "restore", "-exist", "-file"]),
        ("iptables", vec!["iptables-restore", "-w", "5"]),
        ("ip6tables", vec!["ip6tables-restore", "-w", "5"]),
    ] {
        let f = scratch.write(name, &section(name)).expect("write");
        let f = f.display().to_string();
        let mut args: Vec<&str> = cmd[1..].to_vec();
        args.push(&f);
        portolan_nft::exec::run(w.command(cmd[0], &args)).expect(name);
    }
    let live = portolan_nft::iptables::read_live(&w).expect("read live");
    let fixture = |f: &str| std::fs::read_to_string(data(&format!("iptables/{f}"))).expect(f);
    let v4 = portolan_nft::iptables::Save::parse(&fixture("site.iptables-save")).expect("v4");
    let v6 = portolan_nft::iptables::Save::parse(&fixture("site.ip6tables-save")).expect("v6");
    assert_eq!(live.v4, v4);
    assert_eq!(live.v6, v6);
    // Sets: names, types and members (ipset save also prints a random `initval`).
    let shape = |sets: &[portolan_nft::iptables::IpSet]| {
        let mut v: Vec<(String, String, Vec<String>)> = sets
            .iter()
            .map(|s| {
                let mut m: Vec<String> = s.members.iter().map(|m| m.value.clone()).collect();
                m.sort();
                (s.name.clone(), s.kind.clone(), m)
            })
            .collect();
        v.sort();
        v
    };
    let sets = portolan_nft::iptables::parse_ipsets(&fixture("site.ipset-save")).expect("sets");
    assert_eq!(shape(&live.sets), shape(&sets));
    scratch.remove().expect("remove");
}

const PAIR_TABLE: &str = "table inet portolan {\n\tset e_cam_cloud_0123_v4 {\n\t\ttype ipv4_addr . ipv4_addr\n\t\tflags timeout\n\t}\n}\n";

fn pair(peer: &str, timeout: u64) -> portolan_nft::elements::Pair {
    portolan_nft::elements::Pair {
        set: "e_cam_cloud_0123_v4".into(),
        device: "10.0.0.2".parse().expect("addr"),
        peer: peer.parse().expect("addr"),
        port: None,
        timeout,
    }
}

/// The committed elements as `nft -j list table` shows them: (peer, timeout).
fn listed(s: &portolan_nft::scratch::Scratch) -> Vec<(String, Option<u64>)> {
    let mut v: Vec<(String, Option<u64>)> = portolan_nft::elements::live_pairs(&s.at())
        .expect("list")
        .into_iter()
        .map(|p| {
            assert_eq!(p.device.to_string(), "10.0.0.2");
            (p.peer.to_string(), p.timeout)
        })
        .collect();
    v.sort();
    v
}

/// Both committer back ends: an element is listed by the kernel, with its timeout, as soon as
/// `write` returns; a second write with another timeout replaces it (add, delete, add); a
/// fresh element (one `add`) and a refresh share one request; a
/// write to a set the table lacks is refused and names nft's error.
fn committer_commits_before_returning(backend: portolan_nft::commit::Backend) {
    use portolan_nft::commit::{Backend, Committer};
    let s = portolan_nft::scratch::Scratch::new("commit").expect("scratch namespace");
    let f = s.write("pairs.nft", PAIR_TABLE).expect("write");
    portolan_nft::exec::run_file(&s.at(), &f, false).expect("load");
    let c = match backend {
        Backend::Process => Committer::start_process(&s.at()),
        Backend::Library => Committer::start_library(&s.at()),
        Backend::Netlink => Committer::start(&s.at()),
    }
    .expect("committer");
    // nft itself is linked against libnftables, so where nft runs the library loads; a
    // netlink socket opens wherever the kernel has nf_tables.
    assert_eq!(c.backend(), backend);
    c.write(&[pair("192.0.2.7", 300)]).expect("write");
    assert_eq!(listed(&s), [("192.0.2.7".to_string(), Some(300))]);
    c.write(&[pair("192.0.2.7", 60)]).expect("refresh");
    assert_eq!(listed(&s), [("192.0.2.7".to_string(), Some(60))]);
    // One request of a fresh element (one `add`) and a refresh of the existing one: the
    // kernel lists both with the timeouts asked for.
    c.write_split(&[pair("192.0.2.9", 200)], &[pair("192.0.2.7", 90)])
        .expect("fresh and refresh");
    assert_eq!(
        listed(&s),
        [
            ("192.0.2.7".to_string(), Some(90)),
            ("192.0.2.9".to_string(), Some(200))
        ]
    );
    let bad = portolan_nft::elements::Pair {
        set: "e_nosuch_v4".into(),
        ..pair("192.0.2.8", 60)
    };
    assert!(
        c.write_split(std::slice::from_ref(&bad), &[]).is_err(),
        "a fresh element of no set"
    );
    match c.write(&[bad]) {
        Err(Error::Rejected { detail }) => {
            assert!(detail.contains("No such file or directory"), "{detail}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        listed(&s),
        [
            ("192.0.2.7".to_string(), Some(90)),
            ("192.0.2.9".to_string(), Some(200))
        ]
    );
    drop(c);
    s.remove().expect("remove");
}

fn committer_netlink_commits_before_returning() {
    committer_commits_before_returning(portolan_nft::commit::Backend::Netlink);
}

/// IPv6 pairs over nfnetlink (32-byte keys): `nft -j list` shows each with its timeout, and a
/// refresh in the same request as a fresh element.
fn committer_netlink_writes_ipv6_pairs() {
    use portolan_nft::commit::{Backend, Committer};
    let s = portolan_nft::scratch::Scratch::new("nl6").expect("scratch namespace");
    let table = "table inet portolan {\n\tset e_cam_cloud_0123_v6 {\n\t\ttype ipv6_addr . ipv6_addr\n\t\tflags timeout\n\t}\n}\n";
    let f = s.write("pairs6.nft", table).expect("write");
    portolan_nft::exec::run_file(&s.at(), &f, false).expect("load");
    let c = Committer::start(&s.at()).expect("committer");
    assert_eq!(c.backend(), Backend::Netlink);
    let p6 = |peer: &str, timeout: u64| portolan_nft::elements::Pair {
        set: "e_cam_cloud_0123_v6".into(),
        device: "2001:db8::2".parse().expect("addr"),
        peer: peer.parse().expect("addr"),
        port: None,
        timeout,
    };
    c.write_split(&[p6("2001:db8:1::7", 120)], &[])
        .expect("fresh");
    c.write_split(&[p6("2001:db8:1::8", 30)], &[p6("2001:db8:1::7", 45)])
        .expect("fresh and refresh");
    let mut got: Vec<(String, String, Option<u64>)> = portolan_nft::elements::live_pairs(&s.at())
        .expect("list")
        .into_iter()
        .map(|p| (p.device.to_string(), p.peer.to_string(), p.timeout))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "2001:db8::2".to_string(),
                "2001:db8:1::7".to_string(),
                Some(45)
            ),
            (
                "2001:db8::2".to_string(),
                "2001:db8:1::8".to_string(),
                Some(30)
            ),
        ]
    );
    drop(c);
    s.remove().expect("remove");
}

fn committer_library_commits_before_returning() {
    committer_commits_before_returning(portolan_nft::commit::Backend::Library);
}

fn committer_process_commits_before_returning() {
    committer_commits_before_returning(portolan_nft::commit::Backend::Process);
}

/// 40 writers at once, one of them refused: the 39 others are committed (a refused batch is
/// retried request by request) and the kernel lists exactly their elements.
fn committer_batches_concurrent_writers() {
    use portolan_nft::commit::Committer;
    let s = portolan_nft::scratch::Scratch::new("batch").expect("scratch namespace");
    let f = s.write("pairs.nft", PAIR_TABLE).expect("write");
    portolan_nft::exec::run_file(&s.at(), &f, false).expect("load");
    let c = Committer::start(&s.at()).expect("committer");
    let results: Vec<(u32, bool)> = std::thread::scope(|scope| {
        let hs: Vec<_> = (1..=40u32)
            .map(|i| {
                let c = &c;
                scope.spawn(move || {
                    let mut p = pair(&format!("198.51.100.{i}"), 100 + u64::from(i));
                    if i == 17 {
                        p.set = "e_nosuch_v4".into();
                    }
                    (i, c.write(&[p]).is_ok())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for (i, ok) in &results {
        assert_eq!(*ok, *i != 17, "writer {i}");
    }
    let mut want: Vec<(String, Option<u64>)> = (1..=40u64)
        .filter(|i| *i != 17)
        .map(|i| (format!("198.51.100.{i}"), Some(100 + i)))
        .collect();
    want.sort();
    assert_eq!(listed(&s), want);
    drop(c);
    s.remove().expect("remove");
}

/// What the machine lacks to run these tests, if anything.
fn missing() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some(format!(
            "root (effective uid is {uid}): network namespaces and nftables need it"
        ));
    }
    if !Path::new("/proc/self/ns/net").exists() {
        return Some("network namespaces".into());
    }
    None
}

fn main() {
    let tests: &[(&str, fn())] = &[
        ("a_file_reads_as_nft_lists_it", a_file_reads_as_nft_lists_it),
        (
            "a_file_nft_refuses_is_rejected",
            a_file_nft_refuses_is_rejected,
        ),
        ("example_site_reads_back", example_site_reads_back),
        (
            "an_empty_namespace_lists_nothing",
            an_empty_namespace_lists_nothing,
        ),
        (
            "apply_recreates_only_what_changed",
            apply_recreates_only_what_changed,
        ),
        (
            "iptables_read_live_as_the_fixtures",
            iptables_read_live_as_the_fixtures,
        ),
        (
            "committer_netlink_commits_before_returning",
            committer_netlink_commits_before_returning,
        ),
        (
            "committer_netlink_writes_ipv6_pairs",
            committer_netlink_writes_ipv6_pairs,
        ),
        (
            "committer_library_commits_before_returning",
            committer_library_commits_before_returning,
        ),
        (
            "committer_process_commits_before_returning",
            committer_process_commits_before_returning,
        ),
        (
            "committer_batches_concurrent_writers",
            committer_batches_concurrent_writers,
        ),
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--ignored" || a == "--list") {
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<&(&str, fn())> = tests
        .iter()
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    if let Some(why) = missing() {
        eprintln!("KERNEL TESTS SKIPPED: this machine lacks {why}.");
        for (name, _) in &chosen {
            println!("test {name} ... ignored, kernel lacks {why}");
        }
        println!(
            "\ntest result: ok. 0 passed; 0 failed; {} ignored; 0 measured; 0 filtered out\n",
            chosen.len()
        );
        return;
    }
    let mut failed = Vec::new();
    for (name, f) in &chosen {
        let ok = std::panic::catch_unwind(f).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
