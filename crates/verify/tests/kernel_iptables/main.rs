//! The kernel decides who is right, for iptables and for what `tests/kernel.rs` leaves out:
//! IPv6 packets and replies (conntrack state `established`). Seeded random rulesets inside
//! the supported subset, each rendered in one syntax, are loaded into a firewall namespace
//! by the real tools and evaluated statically by `portolan-verify`; random packets are sent
//! for real; every packet's two verdicts must agree. Two modes:
//!
//! - **iptables**: `ipset restore`, `iptables-restore` and `ip6tables-restore` load the
//!   ruleset (filter table, INPUT/FORWARD policies, user chains, `-j`/`-g`/`RETURN`, `-s`/`-d`,
//!   `-i`/`-o` with `+`, `-p`, `-m tcp`/`udp`/`multiport`/`icmp`/`icmp6`/`conntrack`/`state`/
//!   `iprange`/`set` over `hash:net` (with `nomatch`) and `hash:net,port`, REJECT); the
//!   static side reads both the generated text (what `verify --ruleset` does, with its lines)
//!   and `iptables-save`/`ip6tables-save`/`ipset save` of the namespace (`--live`).
//! - **nftables**: the same kind of rulesets written for `nft -f` (tables `ip t` and `ip6 t`),
//!   for the IPv6 and reply packets `tests/kernel.rs` does not send.
//!
//! Packets: IPv4 and IPv6, TCP SYN, UDP, ICMP/ICMPv6 echo and ESP, new, to the firewall
//! (input) or through it (forward); and replies: a UDP datagram or echo request is first
//! sent through the firewall with no ruleset under test (so conntrack confirms it), then the
//! ruleset is loaded and the answer (ports swapped, or an echo reply) comes back from the
//! other side: conntrack state `established`. Reply tuples use source ports and echo ids no
//! other packet of the run uses, so no earlier connection turns a later packet into a reply.
//!
//! Topology (namespaces made here, removed on exit, error, panic and signals): `gen` sends
//! forged packets out of `g0`/`g1` into the firewall `fw` (`a0`/`a1`), which routes
//! 10.1/16 and 2001:db8:1::/48 out of `b0`, 10.2/16 and 2001:db8:2::/48 out of `b1` towards
//! `sink`, the sources' networks back out of `a0`/`a1`, and owns 10.9.0.1 and 2001:db8:9::1.
//! `sink` sends the replies. An observer table in `fw` records the IPv4 identification or
//! IPv6 flow label of every packet reaching the end of forward and input (priority 1000),
//! and drops everything `fw` itself would send; its `ct state` rule keeps connection
//! tracking on in `fw` at all times (the kernel tracks a namespace's connections only while
//! some rule there needs it), so a reply's original is tracked even with no ruleset under
//! test. Neighbours are static, so a ruleset that drops ICMPv6 cannot break neighbour
//! discovery; reverse-path filtering is off.
//!
//! `VERIFY_DIFF2_RULESETS`, `VERIFY_DIFF2_PACKETS`, `VERIFY_DIFF2_REPLIES` change the size,
//! `VERIFY_DIFF2_SEED` the seed; `VERIFY_DIFF2_ONLY=iptables|nftables` runs one mode. A
//! disagreement prints the seed, the ruleset shrunk to the rules that matter, the packet and
//! both verdicts. `packets.rs` makes the packets, `rules.rs` the rulesets, `lab.rs` the
//! namespaces and the sending.

use std::net::IpAddr;
use std::time::Instant;

use portolan_lab::netns::Lock;
use portolan_nft::iptables::{parse_ipsets, Iptables, Save};
use portolan_verify::eval::{Outcome, Piece};
use portolan_verify::program::{Path, Program};
use portolan_verify::space::{CtState, Dim, Iv};

mod lab;
mod packets;
mod rules;

use lab::{send_batch, setup, sh, Lab};
use packets::{new_packet, reply_pair, Packet, Rng, REPLY_SPAN};
use rules::{gen_ruleset, render_ipt, render_nft, Mode, Ruleset, USER};

/// The two families' rulesets, as loaded.
struct Loaded {
    v4: Ruleset,
    v6: Ruleset,
}

fn clear(lab: &Lab, mode: Mode) -> Result<(), String> {
    match mode {
        Mode::Nft => {
            // The iptables mode's tables too (iptables-nft keeps them in `ip filter` and
            // `ip6 filter`), and its sets.
            lab.nft(concat!(
                "table ip t {}\ndelete table ip t\ntable ip6 t {}\ndelete table ip6 t\n",
                "table ip filter {}\ndelete table ip filter\n",
                "table ip6 filter {}\ndelete table ip6 filter\n"
            ))?;
            lab.exec(&lab.fw, &["ipset", "destroy"], None).map(|_| ())
        }
        Mode::Iptables => {
            let empty = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
            lab.exec(&lab.fw, &["iptables-restore", "-w"], Some(empty))?;
            lab.exec(&lab.fw, &["ip6tables-restore", "-w"], Some(empty))?;
            lab.exec(&lab.fw, &["ipset", "destroy"], None)?;
            Ok(())
        }
    }
}

/// The text of each part, as loaded (for reproducers and the static reading).
struct Texts {
    sets: String,
    v4: String,
    v6: String,
    nft: String,
}

fn texts(l: &Loaded) -> Texts {
    let (s4, t4) = render_ipt(&l.v4);
    let (s6, t6) = render_ipt(&l.v6);
    Texts {
        sets: format!("{s4}{s6}"),
        v4: t4,
        v6: t6,
        nft: format!("{}{}", render_nft(&l.v4), render_nft(&l.v6)),
    }
}

fn load(lab: &Lab, mode: Mode, t: &Texts) -> Result<(), String> {
    clear(lab, mode)?;
    match mode {
        Mode::Nft => lab.nft(&t.nft).map(|_| ()),
        Mode::Iptables => {
            lab.exec(&lab.fw, &["ipset", "restore"], Some(&t.sets))?;
            lab.exec(&lab.fw, &["iptables-restore", "-w"], Some(&t.v4))?;
            lab.exec(&lab.fw, &["ip6tables-restore", "-w"], Some(&t.v6))?;
            Ok(())
        }
    }
}

fn ifaces() -> Vec<String> {
    ["a0", "a1", "b0", "b1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The programs the static side evaluates: nft's listing; for iptables, the generated text
/// (as `--ruleset` reads it) and the namespace's save output (as `--live` does).
fn programs(lab: &Lab, mode: Mode, t: &Texts) -> Result<Vec<(&'static str, Program)>, String> {
    match mode {
        Mode::Nft => {
            let doc: serde_json::Value = serde_json::from_str(&lab.exec(
                &lab.fw,
                &["nft", "-j", "list", "ruleset"],
                None,
            )?)
            .map_err(|e| e.to_string())?;
            let opts = portolan_verify::lower::Options {
                interfaces: ifaces(),
                ..Default::default()
            };
            Ok(vec![(
                "nft listing",
                portolan_verify::lower::lower(&doc, &opts).map_err(|e| e.to_string())?,
            )])
        }
        Mode::Iptables => {
            let opts = portolan_verify::iptables::Options {
                interfaces: ifaces(),
                ..Default::default()
            };
            let text = Iptables {
                v4: Save::parse(&t.v4).map_err(|e| e.to_string())?,
                v6: Save::parse(&t.v6).map_err(|e| e.to_string())?,
                sets: parse_ipsets(&t.sets).map_err(|e| e.to_string())?,
            };
            let live =
                portolan_nft::iptables::read_live(&portolan_nft::Where::Netns(lab.fw.clone()))
                    .map_err(|e| e.to_string())?;
            let lower = |fw: &Iptables| {
                portolan_verify::iptables::lower(fw, &opts).map_err(|e| e.to_string())
            };
            Ok(vec![
                ("generated text", lower(&text)?),
                ("live save", lower(&live)?),
            ])
        }
    }
}

/// A packet as a one-point class through its path.
fn evaluate(prog: &Program, p: &Packet) -> Vec<Piece> {
    let mut c = prog.all();
    let pt = |c: &mut portolan_verify::space::Class, d: Dim, v: u128| c.set(d, Iv::point(v));
    let n = |a: IpAddr| match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    pt(&mut c, Dim::Family, u128::from(p.v6()));
    pt(&mut c, Dim::Saddr, n(p.src));
    pt(&mut c, Dim::Daddr, n(p.dst));
    pt(&mut c, Dim::Proto, u128::from(p.proto));
    if matches!(p.proto, 6 | 17) {
        pt(&mut c, Dim::Sport, u128::from(p.sport));
        pt(&mut c, Dim::Dport, u128::from(p.dport));
    }
    if matches!(p.proto, 1 | 58) {
        pt(&mut c, Dim::IcmpType, u128::from(p.icmp_type));
    }
    let ct = if p.reply {
        CtState::Established
    } else {
        CtState::New
    };
    pt(&mut c, Dim::Ct, ct.value());
    c.set(Dim::Iif, prog.iface(p.iif));
    c.set(Dim::Oif, prog.iface(p.oif()));
    let path = if p.input() {
        Path::Input
    } else {
        Path::Forward
    };
    prog.evaluate(path, &c)
}

fn verdict_of(pieces: &[Piece]) -> (Option<bool>, String) {
    let why = pieces
        .iter()
        .map(|x| {
            format!(
                "{:?} by {:?}",
                x.outcome,
                x.rule.as_ref().map(|r| r.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let v = if pieces.iter().all(|x| x.outcome == Outcome::Accept) {
        Some(true)
    } else if pieces.iter().all(|x| x.outcome == Outcome::Deny) {
        Some(false)
    } else {
        None
    };
    (v, why)
}

/// Sends the originals of the reply cases with nothing under test loaded (so conntrack
/// confirms them), then their replies through a table that accepts only `ct state
/// established`: the replies that cross it are the ones the kernel itself holds for
/// established, whatever the ruleset under test will say. Returns them (to be sent again).
fn establish(lab: &Lab, mode: Mode, pairs: &[(Packet, Packet)]) -> Result<Vec<Packet>, String> {
    clear(lab, mode)?;
    let origs: Vec<Packet> = pairs.iter().map(|p| p.0.clone()).collect();
    let got = send_batch(lab, &origs)?;
    let backs: Vec<Packet> = pairs
        .iter()
        .zip(got)
        .filter(|(_, ok)| *ok)
        .map(|(p, _)| p.1.clone())
        .collect();
    lab.nft("table inet probe {\n\tchain f {\n\t\ttype filter hook forward priority 0; policy drop;\n\t\tct state established accept\n\t}\n}\n")?;
    let got = send_batch(lab, &backs);
    lab.nft("delete table inet probe\n")?;
    Ok(backs
        .into_iter()
        .zip(got?)
        .filter(|(_, ok)| *ok)
        .map(|(p, _)| p)
        .collect())
}

/// Removes rules of the packet's family while the disagreement persists (each trial with a
/// fresh connection for a reply). Returns the shrunk ruleset as loaded.
fn shrink(
    lab: &Lab,
    mode: Mode,
    l: &Loaded,
    p: &Packet,
    pair: Option<&(Packet, Packet)>,
    which: usize,
) -> String {
    let disagrees = |cand: &Loaded| -> bool {
        let t = texts(cand);
        let mut p = p.clone();
        if let Some(pair) = pair {
            match establish(lab, mode, std::slice::from_ref(pair)) {
                Ok(v) if v.len() == 1 => p = v[0].clone(),
                _ => return false,
            }
        }
        if load(lab, mode, &t).is_err() {
            return false;
        }
        let Ok(progs) = programs(lab, mode, &t) else {
            return false;
        };
        let Ok(k) = send_batch(lab, std::slice::from_ref(&p)) else {
            return false;
        };
        verdict_of(&evaluate(&progs[which].1, &p)).0 != Some(k[0])
    };
    let mut cur = Loaded {
        v4: l.v4.clone(),
        v6: l.v6.clone(),
    };
    for c in 0..2 + USER {
        let mut i = 0;
        loop {
            let rs = if p.v6() { &cur.v6 } else { &cur.v4 };
            if i >= rs.chains[c].len() {
                break;
            }
            let mut trial = Loaded {
                v4: cur.v4.clone(),
                v6: cur.v6.clone(),
            };
            if p.v6() {
                trial.v6.chains[c].remove(i);
            } else {
                trial.v4.chains[c].remove(i);
            }
            if disagrees(&trial) {
                cur = trial;
            } else {
                i += 1;
            }
        }
    }
    let rs = if p.v6() { &cur.v6 } else { &cur.v4 };
    match mode {
        Mode::Nft => render_nft(rs),
        Mode::Iptables => {
            let (s, t) = render_ipt(rs);
            format!(
                "# ipset restore\n{s}# ip{}tables-restore\n{t}",
                if p.v6() { "6" } else { "" }
            )
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    cases: u64,
    v4_new: u64,
    v6_new: u64,
    replies: u64,
    accepted: u64,
    failures: u64,
    /// Reply cases whose original did not arrive or whose reply the kernel did not hold
    /// for established before the ruleset was loaded: not counted.
    lost_originals: u64,
}

fn run_mode(
    lab: &Lab,
    mode: Mode,
    seed: u64,
    rulesets: u64,
    per: usize,
    replies: usize,
    next_reply: &mut u16,
) -> Tally {
    let name = if mode == Mode::Nft {
        "nftables"
    } else {
        "iptables"
    };
    let mut t = Tally::default();
    for k in 0..rulesets {
        let mut r = Rng(seed.wrapping_add(k.wrapping_mul(0x1000_0001)) ^ (mode as u64 + 1));
        let loaded = Loaded {
            v4: gen_ruleset(&mut r, false, mode),
            v6: gen_ruleset(&mut r, true, mode),
        };
        let tx = texts(&loaded);
        let pairs: Vec<(Packet, Packet)> = (0..replies)
            .map(|i| {
                let n = *next_reply;
                *next_reply = (*next_reply + 1) % REPLY_SPAN;
                reply_pair(&mut r, i % 2 == 1, n)
            })
            .collect();
        let news: Vec<Packet> = (0..per).map(|i| new_packet(&mut r, i % 2 == 1)).collect();
        let backs = establish(lab, mode, &pairs).expect("originals");
        t.lost_originals += (pairs.len() - backs.len()) as u64;
        load(lab, mode, &tx).unwrap_or_else(|e| {
            panic!(
                "seed {seed} {name} ruleset {k}: the tools refused the generated ruleset: {e}\n{}",
                if mode == Mode::Nft {
                    tx.nft.clone()
                } else {
                    format!("{}{}{}", tx.sets, tx.v4, tx.v6)
                }
            )
        });
        let packets: Vec<Packet> = news.iter().chain(&backs).cloned().collect();
        let progs = programs(lab, mode, &tx).expect("static reading");
        let kernel = send_batch(lab, &packets).expect("send");
        for (i, p) in packets.iter().enumerate() {
            t.cases += 1;
            match (p.reply, p.v6()) {
                (true, _) => t.replies += 1,
                (false, false) => t.v4_new += 1,
                (false, true) => t.v6_new += 1,
            }
            t.accepted += u64::from(kernel[i]);
            for (w, (what, prog)) in progs.iter().enumerate() {
                let (v, why) = verdict_of(&evaluate(prog, p));
                if v == Some(kernel[i]) {
                    continue;
                }
                t.failures += 1;
                if t.failures <= 3 {
                    let pair = pairs
                        .iter()
                        .find(|x| x.1.src == p.src && x.1.dport == p.dport && p.reply);
                    let small = shrink(lab, mode, &loaded, p, pair, w);
                    eprintln!(
                        "DISAGREEMENT ({name}, {what}) seed {seed} ruleset {k} packet {i}: {p:?}\n  kernel: {}\n  static: {why}\n  reproducer:\n{small}\n",
                        if kernel[i] { "accepted" } else { "dropped" },
                    );
                }
                break;
            }
        }
    }
    println!(
        "verify differential ({name}): {} packet/ruleset cases over {rulesets} rulesets (seed {seed}): {} IPv4 new, {} IPv6 new, {} replies (ct established, both families); {} agree, {} disagree; kernel accepted {}; {} reply cases left out (original lost, or the reply not established in the kernel before the ruleset)",
        t.cases,
        t.v4_new,
        t.v6_new,
        t.replies,
        t.cases - t.failures,
        t.failures,
        t.accepted,
        t.lost_originals
    );
    t
}

fn main() {
    let is_root = sh(&["id", "-u"]).map(|s| s.trim() == "0").unwrap_or(false);
    if !is_root {
        eprintln!("verify kernel differential test (iptables, IPv6, replies): SKIPPED LOUDLY — needs root (network namespaces, iptables, nft)");
        std::process::exit(1);
    }
    let _ = portolan_lab::netns::install_signal_cleanup();
    let _lock = Lock::acquire(&|| eprintln!("waiting for another kernel test to finish"))
        .expect("lab lock");
    let seed = env("VERIFY_DIFF2_SEED", 20261202);
    let rulesets = env("VERIFY_DIFF2_RULESETS", 30);
    let per = env("VERIFY_DIFF2_PACKETS", 60) as usize;
    let replies = env("VERIFY_DIFF2_REPLIES", 20) as usize;
    let lab = setup().expect("differential lab namespaces");
    let start = Instant::now();

    // Control: with nothing under test, every new packet and every reply must arrive, else
    // the comparison would mean nothing.
    let mut r = Rng(seed ^ 0x5eed);
    let mut next_reply = 0u16;
    let pairs: Vec<(Packet, Packet)> = (0..replies)
        .map(|i| {
            next_reply += 1;
            reply_pair(&mut r, i % 2 == 1, next_reply)
        })
        .collect();
    let backs = establish(&lab, Mode::Nft, &pairs).expect("control originals");
    assert_eq!(
        backs.len(),
        pairs.len(),
        "control: originals lost on an empty firewall"
    );
    let control: Vec<Packet> = (0..per)
        .map(|i| new_packet(&mut r, i % 2 == 1))
        .chain(backs)
        .collect();
    let got = send_batch(&lab, &control).expect("control batch");
    let lost: Vec<&Packet> = control
        .iter()
        .zip(&got)
        .filter(|(_, g)| !**g)
        .map(|(p, _)| p)
        .collect();
    assert!(
        lost.is_empty(),
        "control: {} of {} packets did not cross an empty firewall: {lost:?}",
        lost.len(),
        control.len()
    );

    let mut failures = 0;
    let mut cases = 0;
    let only = std::env::var("VERIFY_DIFF2_ONLY").unwrap_or_default();
    for mode in [Mode::Iptables, Mode::Nft] {
        let name = if mode == Mode::Nft {
            "nftables"
        } else {
            "iptables"
        };
        if !only.is_empty() && only != name {
            continue;
        }
        let t = run_mode(&lab, mode, seed, rulesets, per, replies, &mut next_reply);
        failures += t.failures;
        cases += t.cases;
    }
    let _ = clear(&lab, Mode::Iptables);
    println!(
        "verify differential (iptables and nftables, IPv4 and IPv6, new and replies): {cases} cases, {failures} disagreements, {:.1} s",
        start.elapsed().as_secs_f64()
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
