//! MUD → profile → MUD over the corpus, compared ACE by ACE: each ACE is read as what it
//! matches (policy, address family, peer, protocol, the peer's and the device's ports, ICMP
//! type and code) and its `direction-initiated`. For every corpus file that imports:
//!
//! - every ACE the import took without a warning at its path is in the exported file, with
//!   the same matches, and a `direction-initiated` that is the original's or, where the
//!   original had none, the initiator the direction rule read (never the other side);
//! - every exported ACE is either an original one or the return path of one (the same matches
//!   in the other policy, mirrored): export adds replies, never new destinations, ports or
//!   families;
//! - an ACE with a warning at its path is a documented, warned repair (`any-port`,
//!   `any-protocol`, `unpaired-return-path`, …) and is excused from the first check only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use portolan_model::PortItem;
use portolan_mud::problem::{PathMap, Problems};
use portolan_mud::rules::{AceRule, Dir, Family, Peer};
use portolan_mud::schema::MudFile;
use portolan_mud::{export, import, ExportOptions, ImportOptions};

/// `shared/interop/mud` beside the repository clone, or `PORTOLAN_MUD_CORPUS` (a worktree
/// kept elsewhere than the clone).
fn corpus_dir() -> PathBuf {
    std::env::var_os("PORTOLAN_MUD_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/mud"),
        PathBuf::from,
    )
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            files(&p, out);
        } else if !p.ends_with("README.md") && !p.ends_with("SOURCES.txt") {
            out.push(p);
        }
    }
}

/// An ACE as compared: what it matches, then its direction-initiated.
type Key = (
    Dir,
    Option<Family>,
    Peer,
    Option<u8>,
    bool,
    String,
    String,
    Option<(Option<u8>, Option<u8>)>,
);

fn key(r: &AceRule) -> Key {
    // Echo request and reply have only code 0 (RFC 792, RFC 4443): code 0 is no match.
    let icmp = r.icmp.map(|(t, c)| match (t, c) {
        (Some(0 | 8 | 128 | 129), Some(0)) => (t, None),
        other => other,
    });
    // Every port (1-65535) is what no port match says: port 0 is no usable port.
    let ports = |p: &Option<Vec<PortItem>>| match p.as_deref() {
        Some([PortItem::Range(1, 65535)]) | None => "any".to_string(),
        Some(items) => format!("{items:?}"),
    };
    (
        r.dir,
        r.family,
        r.peer.clone(),
        r.protocol,
        r.arp,
        ports(&r.peer_port),
        ports(&r.dev_port),
        icmp,
    )
}

/// The return path of the packets `k` matches: the other policy; for ICMP, the reply type.
fn mirror(k: &Key) -> Key {
    let mut m = k.clone();
    m.0 = match k.0 {
        Dir::FromDevice => Dir::ToDevice,
        Dir::ToDevice => Dir::FromDevice,
    };
    if let Some((Some(t), c)) = k.7 {
        let v6 = k.3 == Some(58);
        if let Some(reply) = portolan_mud::icmp::reply_of(t, v6) {
            m.7 = Some((Some(reply), c));
        }
    }
    m
}

/// The rules of a MUD file (repaired as the importer repairs it), each with its path in the
/// file as written.
fn rules(bytes: &[u8]) -> Vec<(AceRule, String)> {
    let mut doc: serde_json::Value = serde_json::from_slice(bytes).expect("JSON");
    let mut p = Problems::new(false);
    let mut map = PathMap::default();
    portolan_mud::repair::repair(&mut doc, &mut p, &mut map).expect("repairs");
    let file: MudFile = serde_json::from_value(doc).expect("typed");
    portolan_mud::rules::read(&file, &mut p)
        .rules
        .into_iter()
        .map(|r| {
            let at = map.original(&r.path);
            (r, at)
        })
        .collect()
}

#[test]
fn the_corpus_survives_mud_profile_mud_ace_by_ace() {
    let mut all = Vec::new();
    files(&corpus_dir(), &mut all);
    assert!(all.len() >= 50, "the corpus has {} files", all.len());
    let mut checked = 0;
    let mut compared = 0;
    let mut failures = Vec::new();
    for path in &all {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).expect("readable");
        let Ok(imp) = import(
            &bytes,
            &ImportOptions {
                strict: false,
                file: name.clone(),
            },
        ) else {
            continue;
        };
        let warned: BTreeSet<&str> = imp.warnings.iter().map(|w| w.path.as_str()).collect();
        let excused = |at: &str| {
            warned
                .iter()
                .any(|w| !w.is_empty() && (w.starts_with(&format!("{at}/")) || *w == at))
        };
        let url = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.pointer("/ietf-mud:mud/mud-url")
                    .and_then(|u| u.as_str().map(str::to_string))
            })
            .filter(|u| u.starts_with("https://") && !u.contains(char::is_whitespace))
            .unwrap_or_else(|| "https://example.com/device.json".into());
        let exp = match export(&imp.profile, &ExportOptions::new(url)) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{name}: export fails: {e}"));
                continue;
            }
        };
        let before = rules(&bytes);
        let after = rules(exp.json.as_bytes());
        // A warning at an ACE excuses its group: the ACEs with its matches, in either policy
        // (the importer warns once per flow, at its first ACE).
        let excused_keys: BTreeSet<Key> = before
            .iter()
            .filter(|(_, at)| excused(at))
            .flat_map(|(r, _)| [key(r), mirror(&key(r))])
            .collect();
        let after_keys: BTreeSet<Key> = after.iter().map(|(r, _)| key(r)).collect();
        let before_keys: BTreeSet<Key> = before.iter().map(|(r, _)| key(r)).collect();
        for (r, at) in &before {
            if excused_keys.contains(&key(r)) {
                continue;
            }
            let k = key(r);
            compared += 1;
            if !after_keys.contains(&k) {
                failures.push(format!(
                    "{name}: ACE {} ({at}) is missing from the export",
                    r.ace
                ));
                continue;
            }
            // direction-initiated: the original's, or added where it had none.
            for (e, _) in after.iter().filter(|(e, _)| key(e) == k) {
                if r.initiated.is_some() && e.initiated != r.initiated {
                    failures.push(format!(
                        "{name}: ACE {}: direction-initiated {:?} became {:?}",
                        r.ace, r.initiated, e.initiated
                    ));
                }
            }
        }
        for (e, _) in &after {
            let k = key(e);
            let reply_of_original = before_keys.iter().any(|b| mirror(b) == k);
            if !before_keys.contains(&k) && !reply_of_original {
                failures.push(format!(
                    "{name}: exported ACE {} matches what no original ACE (nor its mirror) does: {k:?}",
                    e.ace
                ));
            }
        }
        checked += 1;
    }
    assert!(checked >= 45, "only {checked} files imported");
    assert!(compared >= 500, "only {compared} ACEs compared");
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}
