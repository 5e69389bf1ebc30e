//! The lab's check of its own oracle: which rule of the loaded ruleset admitted each required
//! probe, read from the kernel's rule tracing (`nft monitor trace`).
//!
//! The lab's expectations for required flows come from the policy IR; a probe that passes
//! only proves that *some* rule admitted it. Each emitted rule carries its `profile/flow`
//! comment, so a required probe admitted by a rule with another flow's comment (a wider rule
//! of another device, a rule for anyone on the segment) is a mismatch, even though it passed.
//!
//! How: a table of the lab's own (`inet portolan_lab_trace`, verdicts untouched: its chains
//! only set `meta nftrace` and accept, and an accept in one table does not skip another's
//! chains) marks the first packet of every connection arriving at the firewall, and a
//! `nft monitor trace` process in the firewall namespace writes each traced packet's header
//! and the rules it met to a file. Each trace is keyed by the arriving interface, addresses,
//! protocol, destination port and source MAC; the rule whose verdict was `accept` in table
//! `inet portolan` (or the chain policy that accepted it) is what admitted it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::{self, Where};
use crate::error::{Error, Result};
use crate::netns::{Handle, Resources};

/// The lab's tracing table: a packet's first (connection-tracking state `new`) packet in
/// prerouting, after conntrack (-200), and the readiness marker in output.
const TRACE_TABLE: &str = "table inet portolan_lab_trace {
	chain pre {
		type filter hook prerouting priority -150; policy accept;
		ct state new meta nftrace set 1
	}
	chain out {
		type filter hook output priority -150; policy accept;
		ip daddr 127.0.0.1 udp dport 9 meta nftrace set 1
	}
}
";

/// The table whose rules the check reads.
const TABLE: &str = "portolan";

/// One traced packet: its header and the rule that accepted it in table `inet portolan`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub iif: Option<String>,
    pub mac: Option<String>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub protocol: Option<u8>,
    pub dport: Option<u16>,
    /// The accepting rule's comment; `policy CHAIN` when a chain's policy accepted it, the
    /// rule's text when it has no comment.
    pub accepted_by: Option<String>,
    /// The accepting rule: its chain and its text without the comment.
    pub rule: Option<(String, String)>,
}

/// What a probe's packet looks like in a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub iif: String,
    pub mac: Option<String>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub dport: Option<u16>,
}

impl Event {
    pub fn matches(&self, k: &Key) -> bool {
        self.iif.as_deref() == Some(k.iif.as_str())
            && (k.mac.is_none() || self.mac == k.mac)
            && self.src == Some(k.src)
            && self.dst == Some(k.dst)
            && self.protocol == Some(k.protocol)
            && self.dport == k.dport
    }
}

fn protocol_number(name: &str) -> Option<u8> {
    Some(match name {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "ipv6-icmp" | "icmpv6" => 58,
        "sctp" => 132,
        n => return n.parse().ok(),
    })
}

/// The word after `key` in a list of words.
fn after<'a>(words: &[&'a str], key: &[&str]) -> Option<&'a str> {
    words
        .windows(key.len() + 1)
        .find(|w| w[..key.len()] == *key)
        .map(|w| w[key.len()])
}

/// The text of a `comment "..."` in a rule.
fn comment(rule: &str) -> Option<String> {
    let i = rule.find("comment \"")? + "comment \"".len();
    let rest = &rule[i..];
    let j = rest.find('"')?;
    Some(rest[..j].to_string())
}

/// Parses the output of `nft monitor trace`: one event per traced packet.
pub fn parse(text: &str) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 7 || words[0] != "trace" || words[1] != "id" {
            continue;
        }
        let (id, table, chain, what) = (words[2], words[4], words[5], words[6]);
        if what == "packet:" {
            let fresh = table != TABLE || !open.contains_key(id);
            if fresh {
                let proto = after(&words, &["ip", "protocol"])
                    .or_else(|| after(&words, &["ip6", "nexthdr"]))
                    .and_then(protocol_number);
                let dport = ["tcp", "udp", "sctp"]
                    .iter()
                    .find_map(|p| after(&words, &[p, "dport"]))
                    .and_then(|p| p.parse().ok());
                let addr = |k: &str| {
                    after(&words, &["ip", k])
                        .or_else(|| after(&words, &["ip6", k]))
                        .and_then(|a| a.parse().ok())
                };
                let ev = Event {
                    iif: after(&words, &["iif"]).map(|s| s.trim_matches('"').to_string()),
                    mac: after(&words, &["ether", "saddr"]).map(str::to_ascii_lowercase),
                    src: addr("saddr"),
                    dst: addr("daddr"),
                    protocol: proto,
                    dport,
                    accepted_by: None,
                    rule: None,
                };
                if table == TABLE {
                    if let Some(&i) = open.get(id) {
                        out[i] = ev;
                        continue;
                    }
                }
                open.insert(id.to_string(), out.len());
                out.push(ev);
            }
            continue;
        }
        if table != TABLE {
            continue;
        }
        let Some(&i) = open.get(id) else {
            continue;
        };
        if what == "rule" && line.ends_with("(verdict accept)") {
            let rule = line
                .split_once(" rule ")
                .map(|(_, r)| r.trim_end_matches("(verdict accept)").trim())
                .unwrap_or_default();
            out[i].accepted_by = Some(comment(rule).unwrap_or_else(|| rule.to_string()));
            out[i].rule = Some((chain.to_string(), bare(rule)));
        } else if what == "policy" && words.get(7) == Some(&"accept") {
            out[i].accepted_by = Some(format!("policy {chain}"));
        }
    }
    out
}

/// A rule's text without its comment and with counters' values left out, as both the trace
/// and the table listing print it.
pub fn bare(rule: &str) -> String {
    let mut words: Vec<&str> = Vec::new();
    let mut it = rule.split_whitespace().peekable();
    while let Some(w) = it.next() {
        if w == "comment" {
            break;
        }
        words.push(w);
        if w == "counter" && it.peek() == Some(&"packets") {
            for _ in 0..4 {
                it.next();
            }
        }
    }
    words.join(" ")
}

/// The comments of the rules of each chain, by their bare text (see [`bare`]), from
/// `nft list table inet portolan`: rules written alike admit alike, so a packet the trace
/// shows admitted by one is admitted by each of them.
pub fn alike(listing: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut chain: Option<String> = None;
    for line in listing.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("chain ") {
            chain = rest.split_whitespace().next().map(str::to_string);
            continue;
        }
        let Some(c) = &chain else {
            continue;
        };
        if t == "}" {
            chain = None;
            continue;
        }
        if t.is_empty() || t.starts_with("type ") || t.starts_with("policy ") {
            continue;
        }
        if let Some(text) = comment(t) {
            out.entry((c.clone(), bare(t))).or_default().push(text);
        }
    }
    out
}

/// Whether a rule comment names `provenance` (one `profile/flow`, or a list of them).
pub fn names(comment: &str, provenance: &str) -> bool {
    comment
        .split([',', ' ', ';'])
        .any(|w| w.trim() == provenance)
}

/// A running `nft monitor trace` in the firewall namespace, writing to a file.
pub struct Tracer {
    file: PathBuf,
}

impl Tracer {
    /// Loads the tracing table, starts the monitor, and waits until it reports a marker
    /// packet (so no probe is sent before tracing works). `Ok(None)`: this kernel or nft
    /// cannot trace; the check is left out, with a note.
    pub fn start(
        fw: &str,
        fw_handle: &Arc<Handle>,
        dir: &Path,
        res: &mut Resources,
    ) -> Result<std::result::Result<Tracer, String>> {
        let table = dir.join("trace.nft");
        std::fs::write(&table, TRACE_TABLE)
            .map_err(|e| Error::io(format!("cannot write {}", table.display()), e))?;
        let path = table.display().to_string();
        let loaded = command::output(Where::Netns(fw.to_string()).command("nft", &["-f", &path]))?;
        if !loaded.ok {
            return Ok(Err(format!(
                "the tracing table does not load: {}",
                command::first_lines(&loaded.stderr, 2)
            )));
        }
        let file = dir.join("trace.log");
        let out = std::fs::File::create(&file)
            .map_err(|e| Error::io(format!("cannot create {}", file.display()), e))?;
        let mut cmd = Where::Netns(fw.to_string()).command("nft", &["monitor", "trace"]);
        cmd.stdin(Stdio::null()).stdout(out).stderr(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| Error::io("cannot start `nft monitor trace`", e))?;
        res.add_child(child);
        let me = Tracer { file };
        let stop = Arc::new(AtomicBool::new(false));
        let (handle, stop2) = (fw_handle.clone(), stop.clone());
        // Marker packets until the monitor reports one (it may subscribe after the first).
        let marker = std::thread::spawn(move || {
            if handle.enter().is_err() {
                return;
            }
            let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
                return;
            };
            let to = SocketAddr::from(([127, 0, 0, 1], 9));
            let start = Instant::now();
            while !stop2.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(5) {
                let _ = s.send_to(b"portolan-lab trace marker", to);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let start = Instant::now();
        let mut ready = false;
        while !ready && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
            ready = std::fs::read_to_string(&me.file)
                .unwrap_or_default()
                .contains("udp dport 9");
        }
        stop.store(true, Ordering::Relaxed);
        let _ = marker.join();
        if ready {
            Ok(Ok(me))
        } else {
            Ok(Err(
                "`nft monitor trace` reported nothing within 5 s (no rule tracing in this kernel?)"
                    .into(),
            ))
        }
    }

    /// Every packet traced so far.
    pub fn events(&self) -> Vec<Event> {
        // The monitor writes each event as it comes; give the last ones a moment.
        std::thread::sleep(Duration::from_millis(300));
        parse(&std::fs::read_to_string(&self.file).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as nftables 1.0.6 printed them in a kept lab of the example site: a DHCP
    /// broadcast from oscar-gateways (10.20.0.33) admitted by the LRR's rule for anyone on
    /// lan0, and a ser2net connection from the management zone.
    const SAMPLE: &str = r#"trace id d5ca9bdb inet portolan_lab_trace pre packet: iif "lan0" ether saddr 52:7c:84:e1:00:fa ether daddr ff:ff:ff:ff:ff:ff ip saddr 10.20.0.33 ip daddr 255.255.255.255 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 28432 ip protocol udp ip length 29 udp sport 68 udp dport 67 udp length 9 @th,64,8 0x78 
trace id d5ca9bdb inet portolan_lab_trace pre rule ct state new meta nftrace set 1 (verdict continue)
trace id d5ca9bdb inet portolan_lab_trace pre policy accept 
trace id d5ca9bdb inet portolan input packet: iif "lan0" ether saddr 52:7c:84:e1:00:fa ether daddr ff:ff:ff:ff:ff:ff ip saddr 10.20.0.33 ip daddr 255.255.255.255 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 28432 ip protocol udp ip length 29 udp sport 68 udp dport 67 udp length 9 @th,64,8 0x78 
trace id d5ca9bdb inet portolan input rule iifname "lan0" udp sport 68 udp dport 67 accept comment "thingpark-lrr/i11" (verdict accept)
trace id 6b93427b inet portolan_lab_trace pre packet: iif "mgmt0" ether saddr 6a:43:05:d7:7e:c0 ether daddr 6e:7c:b8:2f:f6:9f ip saddr 10.99.0.1 ip daddr 10.20.0.5 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 41264 ip protocol tcp ip length 60 tcp sport 46727 tcp dport 4001 tcp flags == syn tcp window 64240 
trace id 6b93427b inet portolan_lab_trace pre rule ct state new meta nftrace set 1 (verdict continue)
trace id 6b93427b inet portolan_lab_trace pre policy accept 
trace id 6b93427b inet portolan forward packet: iif "mgmt0" oif "lan0" ether saddr 6a:43:05:d7:7e:c0 ether daddr 6e:7c:b8:2f:f6:9f ip saddr 10.99.0.1 ip daddr 10.20.0.5 ip dscp cs0 ip ecn not-ect ip ttl 63 ip id 41264 ip protocol tcp ip length 60 tcp sport 46727 tcp dport 4001 tcp flags == syn tcp window 64240 
trace id 6b93427b inet portolan forward rule ip daddr vmap @fwd_dst4h (verdict jump k_wcc-lite_in)
trace id 6b93427b inet portolan k_wcc-lite_in rule ip saddr . tcp dport @p4_wcc-lite_1 accept comment "elseta-wcc-lite/ser2net" (verdict accept)
"#;

    #[test]
    fn traces_name_the_accepting_rule() {
        let ev = parse(SAMPLE);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].iif.as_deref(), Some("lan0"));
        assert_eq!(ev[0].mac.as_deref(), Some("52:7c:84:e1:00:fa"));
        assert_eq!(ev[0].src, "10.20.0.33".parse().ok());
        assert_eq!(ev[0].dst, "255.255.255.255".parse().ok());
        assert_eq!((ev[0].protocol, ev[0].dport), (Some(17), Some(67)));
        assert_eq!(ev[0].accepted_by.as_deref(), Some("thingpark-lrr/i11"));
        assert_eq!(ev[1].iif.as_deref(), Some("mgmt0"));
        assert_eq!((ev[1].protocol, ev[1].dport), (Some(6), Some(4001)));
        assert_eq!(
            ev[1].accepted_by.as_deref(),
            Some("elseta-wcc-lite/ser2net")
        );
        let k = Key {
            iif: "mgmt0".into(),
            mac: None,
            src: "10.99.0.1".parse().expect("address"),
            dst: "10.20.0.5".parse().expect("address"),
            protocol: 6,
            dport: Some(4001),
        };
        assert!(ev[1].matches(&k));
        assert!(!ev[0].matches(&k));
        let wrong_side = Key {
            iif: "wan0".into(),
            ..k
        };
        assert!(!ev[1].matches(&wrong_side));
    }

    /// A chain policy that accepts is what admitted the packet, named as such.
    #[test]
    fn policy_accepts() {
        let text = "trace id 1 inet portolan input packet: iif \"lan0\" ip saddr 10.20.0.5 ip daddr 10.20.0.254 ip protocol udp udp sport 5 udp dport 53\ntrace id 1 inet portolan input policy accept \n";
        let ev = parse(text);
        assert_eq!(ev[0].accepted_by.as_deref(), Some("policy input"));
    }

    /// Two rules written alike but for their comments (nftables 1.0.6 listing of the example
    /// site's input chain, emitted without MACs): the trace names the first, both admit.
    #[test]
    fn rules_written_alike() {
        let listing = r#"table inet portolan {
	chain input {
		type filter hook input priority filter; policy accept;
		iif != "lo" ip saddr vmap @zones4
		iifname "lan0" ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment "oscar-templog-gateway/dhcp"
		iifname "lan0" ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment "thingpark-lrr/i11"
	}
}
"#;
        let a = alike(listing);
        let key = (
            "input".to_string(),
            "iifname \"lan0\" ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept"
                .to_string(),
        );
        assert_eq!(
            a.get(&key),
            Some(&vec![
                "oscar-templog-gateway/dhcp".to_string(),
                "thingpark-lrr/i11".to_string()
            ])
        );
        assert_eq!(
            bare("ip saddr 10.0.0.1 counter packets 3 bytes 180 accept comment \"a/b\""),
            "ip saddr 10.0.0.1 counter accept"
        );
        let ev = parse(SAMPLE);
        assert_eq!(
            ev[1].rule,
            Some((
                "k_wcc-lite_in".to_string(),
                "ip saddr . tcp dport @p4_wcc-lite_1 accept".to_string()
            ))
        );
    }

    #[test]
    fn comments_name_flows() {
        assert!(names("elseta-wcc-lite/snmp", "elseta-wcc-lite/snmp"));
        assert!(names("a/x, b/y", "b/y"));
        assert!(!names("a/xy", "a/x"));
    }
}
