//! The iptables reader against real tool output: `data/iptables/site.*-save` are what
//! `iptables-save`, `ip6tables-save` and `ipset save` (iptables 1.8.9 nf_tables, ipset 7)
//! printed after the example site's emitted iptables policy was restored into an empty
//! namespace (the kernel test re-reads it live). Expected values are read by hand from
//! `examples/site.yaml`, the thingpark-lrr profile (flow i6: UDP 500 and 4500 to the SLRC
//! 198.51.100.10) and iptables-extensions(8).

use portolan_nft::iptables::{parse_ipsets, Extension, Match, Opt, Save, Target};

const V4: &str = include_str!("data/iptables/site.iptables-save");
const V6: &str = include_str!("data/iptables/site.ip6tables-save");
const SETS: &str = include_str!("data/iptables/site.ipset-save");

fn opt(name: &str, args: &[&str]) -> Opt {
    Opt {
        name: name.into(),
        negated: false,
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn chains_and_policies() {
    let v4 = Save::parse(V4).expect("iptables-save parses");
    assert_eq!(v4.tables.len(), 1);
    let f = v4.table("filter").expect("filter");
    let policy = |name: &str| {
        f.chains
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.policy.clone())
    };
    assert_eq!(policy("FORWARD"), Some(Some("DROP".into())));
    assert_eq!(policy("INPUT"), Some(Some("ACCEPT".into())));
    assert_eq!(policy("K-lrr-ipsec-OUT"), Some(None), "a user chain");
    assert_eq!(policy("Z-field"), Some(None));
    assert!(
        f.rules.iter().all(|r| r.unknown.is_empty()),
        "every token placed"
    );
    let v6 = Save::parse(V6).expect("ip6tables-save parses");
    let f6 = v6.table("filter").expect("filter");
    assert_eq!(f6.rules.len(), 6);
    assert!(f6.rules.iter().all(|r| r.unknown.is_empty()));
}

#[test]
fn rules_with_matches_and_targets() {
    let v4 = Save::parse(V4).expect("parses");
    let f = v4.table("filter").expect("filter");
    // -A INPUT -m comment --comment portolan -j PORTOLAN-INPUT
    let first = &f.rules[0];
    assert_eq!((first.chain.as_str(), first.line), ("INPUT", 36));
    assert_eq!(first.comment(), Some("portolan"));
    assert_eq!(first.target, Some(Target::Jump("PORTOLAN-INPUT".into())));

    // lrr-ipsec's flow i6 to the SLRC, by its comment.
    let i6: Vec<_> = f
        .rules
        .iter()
        .filter(|r| r.chain == "K-lrr-ipsec-OUT" && r.comment() == Some("thingpark-lrr/i6"))
        .collect();
    assert_eq!(i6.len(), 1);
    assert_eq!(
        i6[0].matches[0],
        Match::Protocol {
            negated: false,
            name: "udp".into()
        }
    );
    assert_eq!(
        i6[0].extension("set"),
        Some(&Extension {
            name: "set".into(),
            options: vec![opt("match-set", &["p4_lrr-ipsec_0", "dst,dst"])],
        })
    );
    assert_eq!(i6[0].target, Some(Target::Accept));

    // ! -i lan0 -m set --match-set z4_field src … -j Z-field
    let spoof = f
        .rules
        .iter()
        .find(|r| r.comment() == Some("portolan spoofed field"))
        .expect("the spoofing check");
    assert_eq!(
        spoof.matches[0],
        Match::InInterface {
            negated: true,
            name: "lan0".into()
        }
    );
    assert_eq!(spoof.target, Some(Target::Jump("Z-field".into())));

    // -m limit --limit 5/sec … -j LOG --log-prefix "portolan d4-sensors: " --log-level 6
    let log = f
        .rules
        .iter()
        .find(|r| r.chain == "K-d4-sensors-DROPD")
        .expect("a drop chain");
    assert_eq!(
        log.extension("limit").and_then(|e| e.option("limit")),
        Some(&opt("limit", &["5/sec"]))
    );
    assert_eq!(
        log.target,
        Some(Target::Extension(Extension {
            name: "LOG".into(),
            options: vec![
                opt("log-prefix", &["portolan d4-sensors: "]),
                opt("log-level", &["6"]),
            ],
        }))
    );
    // -m conntrack --ctstate RELATED,ESTABLISHED
    let ct = f
        .rules
        .iter()
        .find(|r| r.comment() == Some("return traffic"))
        .expect("return traffic");
    assert_eq!(
        ct.extension("conntrack").and_then(|e| e.option("ctstate")),
        Some(&opt("ctstate", &["RELATED,ESTABLISHED"]))
    );
}

#[test]
fn negations_gotos_and_unknown_tokens() {
    let text = "*filter\n:FORWARD DROP [0:0]\n:X - [0:0]\n:Y - [0:0]\n-A X ! -s 10.0.0.0/8 -p tcp -m tcp ! --dport 22 -m set ! --match-set s src -j REJECT --reject-with icmp-port-unreachable\n-A X -g Y\n-A Y -j MYTARGET\n-A Y -d 192.0.2.1 ! -f surprise\nCOMMIT\n";
    let s = Save::parse(text).expect("parses");
    let r = &s.tables[0].rules;
    assert_eq!(
        r[0].matches[0],
        Match::Source {
            negated: true,
            net: "10.0.0.0/8".into()
        }
    );
    let tcp = r[0].extension("tcp").expect("tcp");
    assert_eq!(
        tcp.options,
        [Opt {
            name: "dport".into(),
            negated: true,
            args: vec!["22".into()]
        }]
    );
    let set = r[0].extension("set").expect("set");
    assert!(set.options[0].negated);
    assert_eq!(set.options[0].args, ["s", "src"]);
    assert_eq!(
        r[0].target,
        Some(Target::Extension(Extension {
            name: "REJECT".into(),
            options: vec![opt("reject-with", &["icmp-port-unreachable"])],
        }))
    );
    assert_eq!(r[1].target, Some(Target::Goto("Y".into())));
    // Not a chain of the table: a target extension, not a jump.
    assert!(matches!(&r[2].target, Some(Target::Extension(e)) if e.name == "MYTARGET"));
    assert_eq!(r[3].matches[1], Match::Fragment { negated: true });
    assert_eq!(r[3].unknown, ["surprise"]);
    assert!(Save::parse("-A X -j ACCEPT\n").is_err(), "outside a table");
}

#[test]
fn ipsets_with_members() {
    let sets = parse_ipsets(SETS).expect("ipset save parses");
    let get = |n: &str| sets.iter().find(|s| s.name == n).expect(n);
    let zone = get("z4_field");
    assert_eq!(
        (zone.kind.as_str(), zone.family()),
        ("hash:net", Some("inet"))
    );
    let m: Vec<&str> = zone.members.iter().map(|m| m.value.as_str()).collect();
    assert_eq!(m, ["10.20.0.0/24"]);
    let i6 = get("p4_lrr-ipsec_0");
    assert_eq!(i6.kind, "hash:net,port");
    let mut m: Vec<&str> = i6.members.iter().map(|m| m.value.as_str()).collect();
    m.sort_unstable();
    assert_eq!(m, ["198.51.100.10,udp:4500", "198.51.100.10,udp:500"]);
    assert!(i6.members.iter().all(|m| !m.nomatch));
    // The DNS-filled sets have a timeout (the emitter's default, one hour) and no members.
    let dns: Vec<_> = sets.iter().filter(|s| s.name.ends_with("_v4")).collect();
    assert_eq!(dns.len(), 5);
    assert!(dns
        .iter()
        .all(|s| s.timeout() == Some(3600) && s.members.is_empty()));
    let nm = parse_ipsets(
        "create n hash:net family inet\nadd n 10.0.0.0/8\nadd n 10.1.0.0/16 nomatch\n",
    )
    .expect("parses");
    assert_eq!(
        nm[0].members.iter().map(|m| m.nomatch).collect::<Vec<_>>(),
        [false, true]
    );
    assert!(parse_ipsets("add missing 10.0.0.1\n").is_err());
}
