//! The typed model against real `nft` output: `data/rich.json` is what nftables 1.0.6 lists
//! for `data/rich.nft` (the kernel test `kernel.rs` checks that it still does). Every expected
//! value below is read by hand from `rich.nft` and the libnftables-json man page.

use portolan_nft::expr::{
    Counter, CtKey, Expr, FibFlag, FibResult, Limit, MetaKey, Named, Op, Payload, Statement,
    Verdict,
};
use portolan_nft::schema::{ChainType, Family, Hook, Object, Policy, SetFlag};
use portolan_nft::Ruleset;

const RICH: &str = include_str!("data/rich.json");

fn rich() -> Ruleset {
    Ruleset::parse(RICH, "data/rich.json").expect("nft's own output parses")
}

fn rule(r: &Ruleset, handle: u64) -> &portolan_nft::schema::Rule {
    r.rules()
        .find(|r| r.handle == Some(handle))
        .expect("rule by handle")
}

fn s(x: &str) -> Expr {
    Expr::String(x.into())
}

fn n(x: u64) -> Expr {
    Expr::Number(x.into())
}

fn named(e: &Expr) -> &Named {
    e.named().expect("an object expression")
}

fn payload(e: &Expr) -> (&str, &str) {
    match named(e) {
        Named::Payload(Payload::Field { protocol, field }) => (protocol, field),
        other => panic!("not a payload field: {other:?}"),
    }
}

#[test]
fn tables_chains_and_counts() {
    let r = rich();
    assert_eq!(r.metainfo().expect("metainfo").version, "1.0.6");
    let tables: Vec<(Family, &str)> = r.tables().map(|t| (t.family, t.name.as_str())).collect();
    assert_eq!(tables, [(Family::Inet, "t"), (Family::Ip, "other")]);
    // 6 chains: c1, c2, fw, nat, inp in `inet t`, out in `ip other`.
    assert_eq!(r.chains().count(), 6);
    // 4 sets and 2 maps.
    assert_eq!(r.sets().filter(|s| !s.is_map()).count(), 4);
    assert_eq!(r.sets().filter(|s| s.is_map()).count(), 2);
    // c1: 2 rules, c2: 1, fw: 18, nat: 1, inp: 3.
    assert_eq!(r.rules().count(), 25);
    assert_eq!(r.rules_of(Family::Inet, "t", "fw").count(), 18);

    let fw = r.chain(Family::Inet, "t", "fw").expect("fw");
    assert!(fw.is_base());
    assert_eq!(fw.kind, Some(ChainType::Filter));
    assert_eq!(fw.hook, Some(Hook::Forward));
    assert_eq!(fw.prio, Some(-5), "priority filter - 5");
    assert_eq!(fw.policy, Some(Policy::Drop));
    let nat = r.chain(Family::Inet, "t", "nat").expect("nat");
    assert_eq!(
        (nat.kind.clone(), nat.hook.clone(), nat.prio),
        (Some(ChainType::Nat), Some(Hook::Postrouting), Some(100)),
        "priority srcnat is 100"
    );
    let out = r.chain(Family::Ip, "other", "out").expect("out");
    assert_eq!(
        (out.hook.clone(), out.prio),
        (Some(Hook::Output), Some(-150))
    );
    assert!(!r.chain(Family::Inet, "t", "c1").expect("c1").is_base());
    // Output: only `ip other out` (-150); input: `inet t inp` (0).
    let names =
        |h: Hook| -> Vec<String> { r.base_chains(&h).iter().map(|c| c.name.clone()).collect() };
    assert_eq!(names(Hook::Output), ["out"]);
    assert_eq!(names(Hook::Input), ["inp"]);
    assert_eq!(names(Hook::Forward), ["fw"]);
    assert_eq!(rule(&r, 13).location(), "inet t c1 handle 13");
}

#[test]
fn sets_and_maps_with_their_elements() {
    let r = rich();
    let allow = r.set(Family::Inet, "t", "allow4").expect("allow4");
    assert_eq!(
        allow.key.parts(),
        ["ipv4_addr", "inet_proto", "inet_service"]
    );
    assert_eq!(
        allow.key.to_string(),
        "ipv4_addr . inet_proto . inet_service"
    );
    assert_eq!(allow.flags, [SetFlag::Interval]);
    let el: Vec<_> = allow.elements().collect();
    assert_eq!(el.len(), 2);
    // 10.0.0.0/24 . tcp . 22
    let Named::Concat(parts) = named(el[0].key) else {
        panic!("a concatenation")
    };
    let Named::Prefix(p) = named(&parts[0]) else {
        panic!("a prefix")
    };
    assert_eq!((p.addr.clone(), p.len), (s("10.0.0.0"), 24));
    assert_eq!(parts[1..], [s("tcp"), n(22)]);
    // 10.0.1.5 . udp . 1000-2000
    let Named::Concat(parts) = named(el[1].key) else {
        panic!("a concatenation")
    };
    assert_eq!(parts[..2], [s("10.0.1.5"), s("udp")]);
    let Named::Range(range) = named(&parts[2]) else {
        panic!("a range")
    };
    assert_eq!(**range, [n(1000), n(2000)]);

    let dyn6 = r.set(Family::Inet, "t", "dyn_v6").expect("dyn_v6");
    assert_eq!(dyn6.key.to_string(), "ipv6_addr");
    assert_eq!(dyn6.flags, [SetFlag::Timeout]);
    assert_eq!(dyn6.timeout, Some(3600), "timeout 1h");
    let el: Vec<_> = dyn6.elements().collect();
    assert_eq!(el[0].key, &s("2001:db8::1"));
    assert_eq!(el[0].timeout, Some(600), "timeout 10m");
    assert_eq!(el[0].comment, Some("x"));
    assert!(el[0].expires.is_some_and(|e| e <= 600));
    assert_eq!(el[1].key, &s("2001:db8::2"));
    assert_eq!(el[1].timeout, None, "the set's default");

    let ports = r.set(Family::Inet, "t", "ports").expect("ports");
    let keys: Vec<&Expr> = ports.elements().map(|e| e.key).collect();
    assert_eq!(keys, [&n(80), &n(443)]);
    // `typeof iifname` lists as its type.
    assert_eq!(
        r.set(Family::Inet, "t", "ifs")
            .expect("ifs")
            .key
            .to_string(),
        "ifname"
    );

    let m = r.set(Family::Inet, "t", "m").expect("map m");
    assert!(m.is_map());
    assert_eq!(m.map.as_ref().expect("value type").to_string(), "verdict");
    let el: Vec<_> = m.elements().collect();
    assert_eq!(el.len(), 3);
    let verdicts: Vec<&Named> = el.iter().map(|e| named(e.value.expect("value"))).collect();
    // nft sorts interval elements: 10.1.0.0-10.1.0.9, 192.0.2.0/24, 198.51.100.7.
    assert_eq!(
        verdicts,
        [
            &Named::Verdict(Verdict::Accept),
            &Named::Verdict(Verdict::Jump("c1".into())),
            &Named::Verdict(Verdict::Drop),
        ]
    );
    let Named::Range(r0) = named(el[0].key) else {
        panic!("a range")
    };
    assert_eq!(**r0, [s("10.1.0.0"), s("10.1.0.9")]);
    assert_eq!(el[2].key, &s("198.51.100.7"));

    let pm = r.set(Family::Inet, "t", "portmap").expect("portmap");
    let el: Vec<_> = pm.elements().collect();
    assert_eq!(
        (el[0].key, el[0].value),
        (&n(80), Some(&s("10.0.0.1"))),
        "80 : 10.0.0.1"
    );
}

#[test]
fn rules_with_matches_and_verdicts() {
    let r = rich();
    // tcp dport @ports counter accept comment "web"
    let web = rule(&r, 13);
    assert_eq!(
        (web.chain.as_str(), web.comment.as_deref()),
        ("c1", Some("web"))
    );
    let Statement::Match(m) = &web.expr[0] else {
        panic!("a match")
    };
    assert_eq!(m.op, Op::Eq);
    assert_eq!(payload(&m.left), ("tcp", "dport"));
    assert_eq!(m.right.set_ref(), Some("ports"));
    assert_eq!(
        web.expr[1],
        Statement::Counter(Counter::Anonymous {
            packets: 0,
            bytes: 0
        })
    );
    assert_eq!(web.expr[2].verdict(), Some(&Verdict::Accept));
    assert_eq!(rule(&r, 14).expr, [Statement::Verdict(Verdict::Return)]);
    assert_eq!(
        rule(&r, 15).expr,
        [Statement::Verdict(Verdict::Goto("c1".into()))]
    );

    // ct state established,related accept: `in` with a plain list.
    let Statement::Match(m) = &rule(&r, 16).expr[0] else {
        panic!("a match")
    };
    assert_eq!(m.op, Op::In);
    let Named::Ct(ct) = named(&m.left) else {
        panic!("ct")
    };
    assert_eq!(ct.key, CtKey::State);
    assert_eq!(m.right, Expr::List(vec![s("established"), s("related")]));

    // iifname @ifs ip saddr . meta l4proto . th dport @allow4 accept
    let x = rule(&r, 18);
    let Statement::Match(m0) = &x.expr[0] else {
        panic!("a match")
    };
    let Named::Meta(meta) = named(&m0.left) else {
        panic!("meta")
    };
    assert_eq!(meta.key, MetaKey::Iifname);
    assert_eq!(m0.right.set_ref(), Some("ifs"));
    let Statement::Match(m1) = &x.expr[1] else {
        panic!("a match")
    };
    let Named::Concat(parts) = named(&m1.left) else {
        panic!("concat")
    };
    assert_eq!(payload(&parts[0]), ("ip", "saddr"));
    assert!(matches!(named(&parts[1]), Named::Meta(m) if m.key == MetaKey::L4proto));
    assert_eq!(payload(&parts[2]), ("th", "dport"));
    assert_eq!(m1.right.set_ref(), Some("allow4"));

    // ip saddr vmap @m
    let Statement::Vmap(v) = &rule(&r, 19).expr[0] else {
        panic!("vmap")
    };
    assert_eq!(payload(&v.key), ("ip", "saddr"));
    assert_eq!(v.data.set_ref(), Some("m"));
    // ip daddr vmap { 203.0.113.1 : jump c2, 203.0.113.2 : drop }
    let Statement::Vmap(v) = &rule(&r, 21).expr[0] else {
        panic!("vmap")
    };
    let Named::Set(pairs) = named(&v.data) else {
        panic!("anonymous map")
    };
    assert_eq!(
        pairs,
        &[
            Expr::List(vec![
                s("203.0.113.1"),
                Expr::Object(Box::new(Named::Verdict(Verdict::Jump("c2".into()))))
            ]),
            Expr::List(vec![
                s("203.0.113.2"),
                Expr::Object(Box::new(Named::Verdict(Verdict::Drop)))
            ]),
        ]
    );

    // fib saddr . iif oif missing drop
    let Statement::Match(m) = &rule(&r, 22).expr[0] else {
        panic!("a match")
    };
    let Named::Fib(fib) = named(&m.left) else {
        panic!("fib")
    };
    assert_eq!(fib.result, FibResult::Oif);
    assert_eq!(fib.flags, [FibFlag::Saddr, FibFlag::Iif]);
    assert_eq!(m.right, Expr::Bool(false), "missing");

    // ip6 saddr != 2001:db8::/32 tcp dport { 22, 8000-8080 } reject with tcp reset
    let x = rule(&r, 24);
    let Statement::Match(m) = &x.expr[0] else {
        panic!("a match")
    };
    assert_eq!(m.op, Op::Ne);
    let Named::Set(items) = named(&x_match(&x.expr[1]).right) else {
        panic!("anonymous set")
    };
    assert_eq!(items[0], n(22));
    assert!(matches!(named(&items[1]), Named::Range(r) if **r == [n(8000), n(8080)]));
    let Statement::Reject(Some(rej)) = &x.expr[2] else {
        panic!("reject")
    };
    assert_eq!(rej.kind.as_deref(), Some("tcp reset"));

    // icmp type { echo-request, echo-reply } limit rate 10/second burst 5 packets accept;
    // nft drops the `meta l4proto icmp` the icmp match implies.
    let x = rule(&r, 26);
    assert_eq!(x.expr.len(), 3);
    assert_eq!(payload(&x_match(&x.expr[0]).left), ("icmp", "type"));
    let Statement::Limit(Limit::Anonymous(l)) = &x.expr[1] else {
        panic!("limit")
    };
    assert_eq!((l.rate, l.per.as_str(), l.burst), (10, "second", Some(5)));
    // log prefix "dyn: " group 2
    let Statement::Log(log) = &rule(&r, 27).expr[1] else {
        panic!("log")
    };
    assert_eq!((log.prefix.as_deref(), log.group), (Some("dyn: "), Some(2)));
    // tcp flags & (syn | ack) == syn
    let m = x_match(&rule(&r, 28).expr[0]);
    let Named::And(and) = named(&m.left) else {
        panic!("&")
    };
    assert_eq!(payload(&and[0]), ("tcp", "flags"));
    assert_eq!(and[1], Expr::List(vec![s("syn"), s("ack")]));
    // meta mark 0x10 counter packets 3 bytes 120 reject
    let x = rule(&r, 29);
    assert_eq!(x_match(&x.expr[0]).right, n(16));
    assert_eq!(
        x.expr[1],
        Statement::Counter(Counter::Anonymous {
            packets: 3,
            bytes: 120
        })
    );
    // ct mark set 0x1
    let Statement::Mangle(mg) = &rule(&r, 31).expr[0] else {
        panic!("mangle")
    };
    assert!(matches!(named(&mg.key), Named::Ct(c) if c.key == CtKey::Mark));
    assert_eq!(mg.value, n(1));
    // counter name "cnt" accept
    assert_eq!(
        rule(&r, 35).expr[0],
        Statement::Counter(Counter::Named("cnt".into()))
    );
    // oifname "wan0" masquerade
    assert_eq!(rule(&r, 37).expr[1], Statement::Masquerade(None));
}

fn x_match(st: &Statement) -> &portolan_nft::expr::Match {
    match st {
        Statement::Match(m) => m,
        other => panic!("not a match: {other:?}"),
    }
}

#[test]
fn unknown_parts_parse_and_are_named() {
    let r = rich();
    // `counter cnt {}` is a named counter object the model does not know.
    let unknown: Vec<&serde_json::Value> = r.unknown_objects().collect();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0]["counter"]["name"], "cnt");
    // numgen inc mod 2 0 accept (an unknown expression), quota over 10 mbytes drop (an
    // unknown statement), tcp option maxseg size 1400 drop (known).
    let bad: Vec<(u64, Vec<usize>)> = r
        .unsupported()
        .map(|(rule, st)| {
            (
                rule.handle.expect("listed rules have handles"),
                st.iter().map(|(i, _)| *i).collect(),
            )
        })
        .collect();
    assert_eq!(bad, [(33, vec![0]), (34, vec![0])]);
    let m = x_match(&rule(&r, 33).expr[0]);
    assert!(m.left.is_unknown());
    assert!(matches!(named(&m.left), Named::Unknown(v) if v["numgen"]["mod"] == 2));
    assert!(matches!(&rule(&r, 34).expr[0], Statement::Unknown(v) if v["quota"]["val"] == 10));
    let m = x_match(&rule(&r, 32).expr[0]);
    assert!(matches!(named(&m.left), Named::TcpOption(h) if h.name == "maxseg"));
}

#[test]
fn the_model_writes_back_what_it_read() {
    let r = rich();
    let again: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
    let original: serde_json::Value = serde_json::from_str(RICH).expect("json");
    assert_eq!(again, original);
    assert!(r.objects.iter().all(|o| !matches!(o, Object::Element(_))));
}

#[test]
fn a_known_statement_of_an_unexpected_shape_is_unknown_not_misread() {
    // A field this model does not know, and an operator the schema does not list: each
    // statement is kept as it was, for the reader to report, and the rest still parses.
    let json = r#"{"nftables": [{"rule": {"family": "inet", "table": "t", "chain": "c", "handle": 1, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 1, "negate": true}},
        {"match": {"op": "~", "left": {"meta": {"key": "mark"}}, "right": 1}},
        {"match": {"op": "==", "left": {"meta": {"key": "mark", "bits": 3}}, "right": 1}},
        {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": -1}},
        {"accept": null}]}}]}"#;
    let r = Ruleset::parse(json, "test").expect("parses");
    let x = r.rules().next().expect("one rule");
    assert!(matches!(&x.expr[0], Statement::Unknown(v) if v["match"]["negate"] == true));
    assert!(matches!(&x.expr[1], Statement::Unknown(v) if v["match"]["op"] == "~"));
    let m = x_match(&x.expr[2]);
    assert!(
        m.left.is_unknown(),
        "meta with an unknown field: {:?}",
        m.left
    );
    assert_eq!(x_match(&x.expr[3]).right, Expr::Number((-1).into()));
    assert_eq!(x.expr[4].verdict(), Some(&Verdict::Accept));
    let bad: Vec<usize> = r
        .unsupported()
        .flat_map(|(_, st)| st.into_iter().map(|(i, _)| i))
        .collect();
    assert_eq!(bad, [0, 1, 2]);
}

#[test]
fn base_chains_run_by_priority() {
    let json = r#"{"nftables": [
        {"chain": {"family": "inet", "table": "a", "name": "late", "type": "filter", "hook": "forward", "prio": 10, "policy": "accept"}},
        {"chain": {"family": "ip", "table": "b", "name": "early", "type": "filter", "hook": "forward", "prio": -5, "policy": "drop"}},
        {"chain": {"family": "ip", "table": "b", "name": "regular"}}]}"#;
    let r = Ruleset::parse(json, "test").expect("parses");
    let order: Vec<&str> = r
        .base_chains(&Hook::Forward)
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(order, ["early", "late"]);
}

/// The fuzz target's invariant (`fuzz/fuzz_targets/nft_json.rs`) over every real listing
/// here: the JSON the model writes reads back as the same ruleset.
#[test]
fn every_fixture_reads_back_its_own_json() {
    for (name, json) in [
        ("rich.json", RICH),
        ("diff/before.json", include_str!("data/diff/before.json")),
        ("diff/after.json", include_str!("data/diff/after.json")),
    ] {
        let r = Ruleset::parse(json, name).expect("parses");
        let again = Ruleset::parse(&r.to_json(), name).expect("its own JSON parses");
        assert_eq!(again, r, "{name}");
        for s in r.sets() {
            for e in s.elements() {
                assert!(!e.to_string().is_empty(), "{name} {}", s.name);
            }
        }
    }
}

/// Found by the `nft_json` fuzz target: an object that names a field twice. RFC 8259
/// section 4 leaves duplicate names undefined and nft never writes them; the typed model
/// refuses such an object (serde refuses a duplicate field), so it stays unknown and `verify`
/// says "depends" on it rather than guessing which of the two values nft meant.
#[test]
fn an_object_with_a_duplicate_name_stays_unknown() {
    let text = r#"{"nftables": [{"set": {"family": "inet", "table": "t", "name": "a_v4",
        "type": "ipv4_addr", "name": "forward", "type": "filter"}}]}"#;
    let r = Ruleset::parse(text, "dup").expect("parses");
    assert_eq!(r.objects.len(), 1);
    assert!(
        matches!(r.objects[0], Object::Unknown(_)),
        "{:?}",
        r.objects[0]
    );
}

/// Found by the `nft_json` fuzz target: a number that is no integer (a handle of `2.1e65` in an
/// object the model keeps as raw JSON) must read back as itself after the model writes it,
/// which serde_json guarantees only with `float_roundtrip`.
#[test]
fn a_raw_number_survives_the_round_trip() {
    let text = r#"{"nftables": [{"counter": {"family": "inet", "table": "t", "name": "c",
        "handle": 2.1111111111111113e+65}}]}"#;
    let r = Ruleset::parse(text, "float").expect("parses");
    let again = Ruleset::parse(&r.to_json(), "again").expect("parses again");
    assert_eq!(again, r);
}
