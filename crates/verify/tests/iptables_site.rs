//! The done-when checks of `portolan verify` for iptables: the example site against its own
//! `--target iptables` file (every flow permitted, no excess), a hand-edited copy that widens one rule
//! and drops another (both reported, with their lines), and the same file loaded for real
//! with `ipset restore`, `iptables-restore` and `ip6tables-restore` into a scratch network
//! namespace and read back with `iptables-save`, `ip6tables-save` and `ipset save`
//! (`--live --firewall iptables`).

use std::path::{Path, PathBuf};
use std::process::Command;

use portolan_model::catalog::Catalog;
use portolan_model::ir::Policy;
use portolan_nft::iptables::{read_dump, Iptables, SaveFamily};
use portolan_verify::site::{verify, DnsFills, Report, Status};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> Policy {
    let path = workspace().join("examples/site.yaml");
    let text = std::fs::read_to_string(&path).expect("site file");
    let cat = Catalog::embedded().expect("catalog");
    match portolan_model::compile::site_text(&path.display().to_string(), &text, &cat) {
        Ok(l) => l.value,
        Err(d) => panic!("example site does not compile: {d:?}"),
    }
}

fn emit(policy: &Policy) -> String {
    portolan_emit::emit(
        portolan_emit::Target::Iptables,
        policy,
        &portolan_emit::Options::default(),
    )
    .expect("iptables")
}

fn run_on(policy: &Policy, fw: &Iptables, dnsmasq: &str) -> Report {
    let dns = DnsFills::from_dnsmasq(dnsmasq);
    let prog = portolan_verify::program_for_site_iptables(fw, policy, &dns).expect("lower");
    verify(policy, &prog, &dns)
}

/// Verifies a whole Portolan iptables file (its `#> dnsmasq` section names the DNS sets).
fn run(policy: &Policy, text: &str) -> Report {
    let d = read_dump(text, SaveFamily::Detect).expect("the file reads");
    let dnsmasq = d.dnsmasq.clone().expect("a dnsmasq section");
    assert!(dnsmasq.contains("ipset=/"), "{dnsmasq}");
    run_on(policy, &d.firewall, &dnsmasq)
}

fn show(r: &Report) {
    for f in &r.flows {
        eprintln!("{} {} {:?}", f.group, f.flow, f.status);
        for x in &f.findings {
            eprintln!(
                "    {:?} {} {} {:?}",
                x.direction, x.class, x.outcome, x.rule
            );
        }
    }
    for e in &r.excess {
        eprintln!(
            "excess {} {} {:?}",
            e.group,
            e.class,
            e.rule.as_ref().map(|r| r.to_string())
        );
    }
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line with {needle}"))
}

fn excess_of(r: &Report) -> Vec<(String, String, usize)> {
    let mut v: Vec<_> = r
        .excess
        .iter()
        .map(|e| {
            (
                e.group.clone(),
                e.class.clone(),
                e.rule.as_ref().and_then(|x| x.line).unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_example_site_against_its_own_iptables_file() {
    let policy = example();
    let text = emit(&policy);
    let r = run(&policy, &text);
    show(&r);
    assert_eq!(r.flows.len(), policy.rules.len());
    for f in &r.flows {
        assert_eq!(f.status, Status::Permitted, "{} {}", f.group, f.flow);
        // Every permitted flow names a rule of the file carrying its provenance comment, at
        // the line that holds it.
        let own = f
            .rules
            .iter()
            .find(|x| x.comment.as_deref() == Some(f.flow.as_str()))
            .unwrap_or_else(|| panic!("{} {} decided by {:?}", f.group, f.flow, f.rules));
        let line = own.line.expect("a line");
        let at = text.lines().nth(line - 1).expect("the line exists");
        assert!(
            at.starts_with(&format!("-A {} ", own.chain))
                && at.contains(&format!("--comment \"{}\"", f.flow)),
            "line {line} is {at}"
        );
    }
    // No excess: DHCP discovery is admitted from 0.0.0.0 only (RFC 2131 section 4.1), and a
    // device's own-address broadcast only through its group's chains.
    assert_eq!(excess_of(&r), Vec::new());
}

#[test]
fn a_widened_iptables_rule_and_a_dropped_one_are_both_reported_with_their_lines() {
    let policy = example();
    let text = emit(&policy);
    // Widen: lrr-ipsec's SSH to its support host (a hash:net,port set of 198.51.100.22,tcp:22)
    // becomes SSH to anywhere.
    let narrow = "-A K-lrr-ipsec-OUT -p tcp -m set --match-set p4_lrr-ipsec_9 dst,dst -m comment --comment \"thingpark-lrr/i9\" -j ACCEPT";
    assert!(text.contains(narrow), "the emitted rule changed");
    let wide = "-A K-lrr-ipsec-OUT -p tcp -m tcp --dport 22 -m comment --comment \"thingpark-lrr/i9\" -j ACCEPT";
    let edited = text.replace(narrow, wide);
    // Drop: the sensors' location registration.
    let gone = "-A K-d4-sensors-OUT -p tcp -m set --match-set p4_d4-sensors_4 dst,dst -m comment --comment \"ubisense-dimension4-sensor/location-registration\" -j ACCEPT\n";
    assert!(edited.contains(gone), "the emitted rule changed");
    let edited = edited.replace(gone, "");
    let r = run(&policy, &edited);
    show(&r);

    let widened = line_of(&edited, wide);
    // After K-d4-sensors-OUT returns, PORTOLAN-FORWARD sends the sensors' packets to
    // K-d4-sensors-DROPS: a rate-limited LOG (no verdict), then this DROP.
    let drop_line = line_of(
        &edited,
        "-A K-d4-sensors-DROPS -m comment --comment \"portolan default drop\" -j DROP",
    );
    let bad: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.status != Status::Permitted)
        .collect();
    assert_eq!(bad.len(), 1, "only the dropped flow fails");
    assert_eq!(
        bad[0].flow,
        "ubisense-dimension4-sensor/location-registration"
    );
    assert_eq!(bad[0].status, Status::Blocked);
    assert_eq!(
        bad[0].rules.iter().map(|x| x.line).collect::<Vec<_>>(),
        vec![Some(drop_line)]
    );
    let i9 = r
        .flows
        .iter()
        .find(|f| f.flow == "thingpark-lrr/i9")
        .expect("i9");
    assert_eq!(i9.status, Status::Permitted);
    assert_eq!(
        i9.rules.iter().map(|x| x.line).collect::<Vec<_>>(),
        vec![Some(widened)]
    );

    // Excess, worked out by hand as for nftables: SSH from 10.20.0.10 anywhere but the two
    // hosts its profile names (198.51.100.10 for i11b, 198.51.100.22 for i9) …
    let mut want = Vec::new();
    for range in [
        "0.0.0.0-198.51.100.9",
        "198.51.100.11-198.51.100.21",
        "198.51.100.23-255.255.255.255",
    ] {
        want.push((
            "lrr-ipsec".into(),
            format!("10.20.0.10 → {range} tcp dport 22 iif lan0 (new)"),
            widened,
        ));
    }
    // … and SSH into every device of the site routed back out of lan0, excess of theirs
    // (PORTOLAN-FORWARD tries the source's class chain first).
    for (g, a) in [
        ("lrr-ipsec", "10.20.0.10"),
        ("lrr-station", "10.20.0.11"),
        ("izuma-devices", "10.20.0.64/28"),
        ("oscar-gateways", "10.20.0.32/28"),
        ("d4-sensors", "10.20.0.128/26"),
        ("wcc-lite", "10.20.0.5"),
    ] {
        want.push((
            g.into(),
            format!("10.20.0.10 → {a} tcp dport 22 iif lan0 oif lan0 (new)"),
            widened,
        ));
    }
    want.sort();
    assert_eq!(excess_of(&r), want);
}

fn sh(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut c = Command::new(args[0]);
    c.args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    if let Some(t) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(t.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "`{}`: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_example_loaded_by_the_real_tools_and_read_back_live() {
    assert!(
        sh(&["id", "-u"], None).trim() == "0",
        "this test loads iptables rules into a scratch namespace: run it as root"
    );
    let policy = example();
    let text = emit(&policy);
    let sec = |name: &str| portolan_emit::iptables::section(&text, name);
    let mut res = portolan_lab::netns::Resources::new();
    let ns = format!("{}-ipt", portolan_lab::netns::unique_prefix());
    res.add_netns(&ns).expect("scratch namespace");
    for (tool, args, section) in [
        ("ipset", ["restore", "-exist"], "ipset"),
        ("iptables-restore", ["-w", "--noflush"], "iptables"),
        ("ip6tables-restore", ["-w", "--noflush"], "ip6tables"),
    ] {
        let mut a = vec!["ip", "netns", "exec", ns.as_str(), tool];
        a.extend(args);
        sh(&a, Some(&sec(section)));
    }

    let fw = portolan_nft::iptables::read_live(&portolan_nft::Where::Netns(ns.clone()))
        .expect("iptables-save, ip6tables-save and ipset save in the namespace");
    // The twins are gone after the swaps, in the kernel as in the file's reading.
    assert!(fw.sets.iter().all(|s| !s.name.starts_with("t_")));
    let from_file = read_dump(&text, SaveFamily::Detect).expect("reads");
    let mut live_sets: Vec<_> = fw.sets.iter().map(|s| s.name.clone()).collect();
    let mut file_sets: Vec<_> = from_file
        .firewall
        .sets
        .iter()
        .map(|s| s.name.clone())
        .collect();
    live_sets.sort();
    file_sets.sort();
    assert_eq!(live_sets, file_sets);

    let r = run_on(&policy, &fw, &sec("dnsmasq"));
    show(&r);
    for f in &r.flows {
        assert_eq!(f.status, Status::Permitted, "{} {}", f.group, f.flow);
    }
    // No excess, as from the file.
    assert_eq!(excess_of(&r), Vec::new());
}
