//! The done-when checks of `portolan verify`: the example site against its own compiled
//! ruleset (every flow permitted, no excess), and a hand-edited copy that widens one rule
//! and drops another (both reported, with their lines). The rulesets are loaded by the
//! real `nft` into scratch namespaces to get the JSON listing; that needs root.

use std::path::{Path, PathBuf};

use portolan_model::catalog::Catalog;
use portolan_model::ir::Policy;
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

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Verifies `nft_text` (a whole `.nft` file) against the example site.
fn run(policy: &Policy, nft_text: &str) -> Report {
    assert!(
        is_root(),
        "these tests load rulesets with nft in scratch namespaces: run them as root"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ruleset.nft");
    std::fs::write(&file, nft_text).expect("write");
    let doc = portolan_verify::source::json_of_file(&file).expect("nft loads the ruleset");
    let dnsmasq = portolan_emit::emit(
        portolan_emit::Target::Dnsmasq,
        policy,
        &portolan_emit::Options::default(),
    )
    .expect("dnsmasq");
    let dns = DnsFills::from_dnsmasq(&dnsmasq);
    let prog =
        portolan_verify::program_for_site(&doc, Some(nft_text), policy, &dns).expect("lower");
    verify(policy, &prog, &dns)
}

fn show(r: &Report) {
    for f in &r.flows {
        eprintln!("{} {} {:?}", f.group, f.flow, f.status);
        for x in &f.findings {
            eprintln!(
                "    {:?} {} {} {:?}",
                x.direction,
                x.class,
                x.outcome,
                x.rule.as_ref().map(|r| r.to_string())
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

/// The 1-based line of the first line of `text` containing `needle`, after `from` (a line
/// number, 0 for the start).
fn line_of(text: &str, needle: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
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
fn the_example_site_against_its_own_ruleset() {
    let policy = example();
    let nft =
        portolan_emit::nftables::emit(&policy, &portolan_emit::Options::default()).expect("emit");
    let r = run(&policy, &nft);
    show(&r);
    assert_eq!(r.flows.len(), policy.rules.len());
    for f in &r.flows {
        assert_eq!(f.status, Status::Permitted, "{} {}", f.group, f.flow);
        // Every rule has its line; a chain's policy has none.
        assert!(
            f.rules
                .iter()
                .all(|x| x.line.is_some() || x.handle.is_none()),
            "{} {}: rules without a line: {:?}",
            f.group,
            f.flow,
            f.rules
        );
    }
    // Every permitted flow names a rule carrying its own provenance comment.
    for f in &r.flows {
        assert!(
            f.rules
                .iter()
                .any(|x| x.comment.as_deref() == Some(f.flow.as_str())),
            "{} {} decided by {:?}",
            f.group,
            f.flow,
            f.rules
        );
    }
    // No excess. The DHCP broadcasts of `input` name their source: 0.0.0.0 (a client without
    // an address, RFC 2131 section 4.1), so the groups whose profiles have no DHCP flow
    // (izuma-devices, d4-sensors, wcc-lite) cannot send them from their own addresses.
    assert_eq!(excess_of(&r), Vec::<(String, String, usize)>::new());
    for rule in nft
        .lines()
        .filter(|l| l.contains("255.255.255.255 udp sport 68"))
    {
        assert!(rule.contains("ip saddr 0.0.0.0 "), "{rule}");
    }
}

#[test]
fn a_widened_rule_and_a_dropped_one_are_both_reported_with_their_lines() {
    let policy = example();
    let nft =
        portolan_emit::nftables::emit(&policy, &portolan_emit::Options::default()).expect("emit");
    // Widen: lrr-ipsec's SSH to its support host becomes SSH to anywhere.
    let narrow = "ip daddr 198.51.100.22 tcp dport 22 accept comment \"thingpark-lrr/i9\"";
    assert!(nft.contains(narrow));
    let edited = nft.replace(narrow, "tcp dport 22 accept comment \"thingpark-lrr/i9\"");
    // Drop: the sensors' location registration.
    let gone = "\t\tip daddr 10.99.0.40 tcp dport 5003 accept comment \"ubisense-dimension4-sensor/location-registration\"\n";
    assert!(edited.contains(gone));
    let edited = edited.replace(gone, "");
    let r = run(&policy, &edited);
    show(&r);

    let widened = line_of(
        &edited,
        "tcp dport 22 accept comment \"thingpark-lrr/i9\"",
        0,
    );
    let drop_chain = edited
        .lines()
        .position(|l| l.trim() == "chain drop_d4-sensors {")
        .expect("the sensors' drop chain")
        + 1;
    // The drop that ends the sensors' chain (after its rate-limited log line).
    let drop_line = line_of(&edited, "\t\tdrop", drop_chain);

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
    // The widened flow is still permitted, now by the wide rule.
    let i9 = r
        .flows
        .iter()
        .find(|f| f.flow == "thingpark-lrr/i9")
        .expect("i9");
    assert_eq!(
        i9.rules.iter().map(|x| x.line).collect::<Vec<_>>(),
        vec![Some(widened)]
    );

    // Excess: SSH from 10.20.0.10 anywhere but the two hosts its profile names
    // (198.51.100.10 for i11b, 198.51.100.22 for i9), by the widened rule.
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
    // ... and SSH into every device of the site (routed out of their interface, lan0), which
    // is excess of theirs; for lrr-ipsec itself, the hairpin to its own address.
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

/// An administrator's firewall for an IoT VLAN (tests/data/iot-vlan.nft), the kind the issue
/// names: 443 allowed to anywhere, a forgotten 4321, an allow list set with an `accept` above
/// a narrower rule for the same host. Expectations worked out by hand from the file's lines.
#[test]
fn an_administrators_iot_vlan_ruleset() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let site = data.join("iot-vlan.yaml");
    let text = std::fs::read_to_string(&site).expect("site");
    let cat = Catalog::embedded().expect("catalog");
    let policy = match portolan_model::compile::site_text(&site.display().to_string(), &text, &cat)
    {
        Ok(l) => l.value,
        Err(d) => panic!("iot-vlan.yaml does not compile: {d:?}"),
    };
    let nft = std::fs::read_to_string(data.join("iot-vlan.nft")).expect("ruleset");
    let r = run(&policy, &nft);
    show(&r);
    let flow = |id: &str| {
        r.flows
            .iter()
            .find(|f| f.flow == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    let lines =
        |id: &str| -> Vec<Option<usize>> { flow(id).rules.iter().map(|x| x.line).collect() };

    // DHCP and DNS to the firewall: line 11 (`iifname "iot0" udp dport { 53, 67 } accept`).
    assert_eq!(flow("oscar-templog-gateway/dhcp").status, Status::Permitted);
    assert!(lines("oscar-templog-gateway/dhcp").contains(&Some(11)));
    assert_eq!(flow("oscar-templog-gateway/dns").status, Status::Permitted);
    assert_eq!(lines("oscar-templog-gateway/dns"), vec![Some(11)]);
    // 443 to anywhere (line 16) carries the cloud, names included.
    assert_eq!(
        flow("oscar-templog-gateway/cloud-443").status,
        Status::Permitted
    );
    assert!(lines("oscar-templog-gateway/cloud-443").contains(&Some(16)));
    // 4321: only 54.229.68.147 is in the allow list; 54.229.203.190 and the names' addresses
    // fall to the forward chain's policy drop.
    let f4321 = flow("oscar-templog-gateway/cloud-4321");
    assert_eq!(f4321.status, Status::Partly);
    let denied: Vec<&str> = f4321
        .findings
        .iter()
        .filter(|x| x.outcome == "deny")
        .map(|x| x.class.as_str())
        .collect();
    assert!(
        denied.contains(&"192.168.30.20/30 → 54.229.203.190 tcp dport 4321 (new)"),
        "{denied:?}"
    );
    assert!(!denied.iter().any(|c| c.contains("54.229.68.147")));
    assert!(f4321
        .rules
        .iter()
        .all(|x| x.text == "policy drop" && x.chain == "forward"));
    // Line 18 (the narrower 4321 rule) is shadowed by line 17 and never decides anything.
    assert!(r
        .flows
        .iter()
        .flat_map(|f| &f.rules)
        .all(|x| x.line != Some(18)));
    assert!(r
        .excess
        .iter()
        .all(|e| e.rule.as_ref().and_then(|x| x.line) != Some(18)));

    let mut want: Vec<(String, String, usize)> = Vec::new();
    let mut add = |class: &str, line: usize| {
        want.push((
            "loggers".into(),
            format!("192.168.30.20/30 → {class}"),
            line,
        ))
    };
    // Line 16: tcp 443 to every address but the two the profile names.
    for range in [
        "0.0.0.0-54.229.68.146",
        "54.229.68.148-54.229.203.189",
        "54.229.203.191-255.255.255.255",
    ] {
        add(
            &format!("{range} tcp dport 443 iif iot0 oif wan0 (new)"),
            16,
        );
    }
    // Line 17: everything else to the allow-listed host (protocol 6 only on other ports).
    for rest in [
        "protocols 0-5",
        "protocols 7-255",
        "tcp dport 0-442",
        "tcp dport 444-4320",
        "tcp dport 4322-65535",
    ] {
        add(&format!("54.229.68.147 {rest} iif iot0 (new)"), 17);
    }
    // Line 11: port 67 from a source port other than DHCP's 68, to the firewall.
    add("any udp sport 0-67 dport 67 iif iot0 (new)", 11);
    add("any udp sport 69-65535 dport 67 iif iot0 (new)", 11);
    want.sort();
    assert_eq!(excess_of(&r), want);
}
