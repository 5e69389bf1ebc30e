//! The `nft` tool as `apply` uses it: list the `inet portolan` table, check and load a file in
//! one transaction, and read the objects (sets, maps, chains) a ruleset text declares.

use std::collections::BTreeMap;
use std::path::Path;

use crate::command::{self, Where};
use crate::error::{Error, Result};

/// The table Portolan owns, as `nft` commands spell it.
pub const TABLE: [&str; 2] = ["inet", "portolan"];

/// The current `inet portolan` table as `nft list table` prints it, or `None` if there is
/// none.
pub fn list_table(w: &Where) -> Result<Option<String>> {
    let cmd = w.command("nft", &["list", "table", TABLE[0], TABLE[1]]);
    let shown = command::show(&cmd);
    let out = command::output(cmd)?;
    if out.ok {
        return Ok(Some(out.stdout));
    }
    if out.stderr.contains("No such file or directory") {
        return Ok(None);
    }
    Err(Error::Command {
        command: shown,
        detail: command::first_lines(&out.stderr, 12),
    })
}

/// `nft -c -f FILE` (check only) or `nft -f FILE` (one transaction). `Err` holds nft's
/// message.
pub fn run_file(
    w: &Where,
    file: &Path,
    check_only: bool,
) -> Result<std::result::Result<(), String>> {
    let path = file.display().to_string();
    let args: Vec<&str> = if check_only {
        vec!["-c", "-f", &path]
    } else {
        vec!["-f", &path]
    };
    let out = command::output(w.command("nft", &args))?;
    Ok(if out.ok {
        Ok(())
    } else {
        Err(command::first_lines(&out.stderr, 20))
    })
}

/// An object of the table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Object {
    /// `set`, `map`, `chain` (or another keyword nft prints at that level).
    pub kind: String,
    pub name: String,
    /// What defines it beyond its name: `type` and `flags` of a set or map (flags sorted),
    /// the hook of a base chain. Empty when the text only references it.
    pub decl: String,
}

impl Object {
    /// Portolan's DNS-filled sets (named by the emitter, `gk_sensorist_com_v4`): kept across
    /// reloads.
    pub fn dns_filled(&self) -> bool {
        self.kind == "set" && portolan_emit::nftables::dns_filled(&self.name)
    }

    pub fn label(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }
}

fn normalize_decl(line: &str) -> Option<String> {
    let l = line.trim().trim_end_matches(';').trim();
    if let Some(f) = l.strip_prefix("flags ") {
        let mut v: Vec<&str> = f.split(',').map(str::trim).collect();
        v.sort_unstable();
        return Some(format!("flags {}", v.join(",")));
    }
    // A default element timeout implies `flags timeout`, and `nft list` then prints only the
    // timeout: both spellings must compare equal, or a reload would recreate (and empty) a
    // DNS-filled set.
    if l.starts_with("timeout ") {
        return Some("flags timeout".to_string());
    }
    if l.starts_with("type ") {
        // For base chains keep the hook, not the policy (which a reload may change).
        let core = l.split(';').next().unwrap_or(l).trim();
        return Some(core.to_string());
    }
    None
}

/// The objects a ruleset text (emitted, or printed by `nft list table`) declares inside
/// `table inet portolan { … }` blocks, by (kind, name).
pub fn objects(text: &str) -> BTreeMap<(String, String), Object> {
    let mut out: BTreeMap<(String, String), Object> = BTreeMap::new();
    let mut depth = 0usize;
    let mut in_table = false;
    let mut current: Option<(String, String, Vec<String>)> = None;
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if depth == 0 {
            if words.len() >= 4
                && words[0] == "table"
                && words[1] == "inet"
                && words[2] == "portolan"
                && line.ends_with('{')
            {
                in_table = true;
                depth = 1;
            }
            continue;
        }
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if depth == 1 && in_table && opens > 0 && words.len() >= 2 {
            if closes >= opens {
                // a one-line object: `chain x { }`
                finish(
                    &mut out,
                    words[0].to_string(),
                    words[1].to_string(),
                    Vec::new(),
                );
            } else {
                current = Some((words[0].to_string(), words[1].to_string(), Vec::new()));
                depth = 2;
            }
            continue;
        }
        if depth == 2 {
            if let Some((_, _, d)) = current.as_mut() {
                if let Some(x) = normalize_decl(line) {
                    d.push(x);
                }
            }
        }
        depth = (depth + opens).saturating_sub(closes);
        if depth == 1 {
            if let Some((k, n, d)) = current.take() {
                finish(&mut out, k, n, d);
            }
        }
        if depth == 0 {
            in_table = false;
        }
    }
    out
}

fn finish(
    out: &mut BTreeMap<(String, String), Object>,
    kind: String,
    name: String,
    mut decl: Vec<String>,
) {
    decl.sort();
    decl.dedup();
    let decl = decl.join("; ");
    let e = out.entry((kind.clone(), name.clone())).or_insert(Object {
        kind,
        name,
        decl: String::new(),
    });
    if e.decl.is_empty() {
        e.decl = decl;
    }
}

/// A listing without the parts that change by themselves (`expires …` of set elements), to
/// compare two listings of the same table.
pub fn normalize(listing: &str) -> String {
    let mut out = String::with_capacity(listing.len());
    let mut rest = listing;
    while let Some(i) = rest.find(" expires ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " expires ".len()..];
        let end = after.find([',', ' ', '}', '\n']).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "table inet portolan {\n\tset gk_example_com_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 9.9.9.9 timeout 1h expires 59m59s968ms, 9.9.9.8 }\n\t}\n\n\tset s {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 1.2.3.0/24 }\n\t}\n\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tip saddr @s accept\n\t}\n\tchain c {\n\t}\n}\n";

    #[test]
    fn a_default_timeout_reads_as_flags_timeout() {
        // What the emitter writes, and what `nft list` prints back for the same set.
        let emitted = "table inet portolan {\n\tset gk_example_com_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\ttimeout 3600s\n\t}\n}\n";
        let listed = "table inet portolan {\n\tset gk_example_com_v4 {\n\t\ttype ipv4_addr\n\t\ttimeout 1h\n\t\telements = { 192.0.2.99 expires 59m59s964ms }\n\t}\n}\n";
        let key = ("set".to_string(), "gk_example_com_v4".to_string());
        assert_eq!(objects(emitted)[&key].decl, objects(listed)[&key].decl);
    }

    #[test]
    fn objects_of_a_listing() {
        let o = objects(LISTING);
        let names: Vec<String> = o.values().map(Object::label).collect();
        assert_eq!(
            names,
            ["chain c", "chain forward", "set gk_example_com_v4", "set s"]
        );
        assert!(o[&("set".into(), "gk_example_com_v4".into())].dns_filled());
        assert_eq!(
            o[&("set".into(), "s".into())].decl,
            "flags interval; type ipv4_addr"
        );
        assert_eq!(
            o[&("chain".into(), "forward".into())].decl,
            "type filter hook forward priority filter"
        );
    }

    #[test]
    fn expiry_is_ignored_when_comparing() {
        let a = normalize(LISTING);
        let b = normalize(&LISTING.replace("59m59s968ms", "58m1s"));
        assert_eq!(a, b);
        assert!(!a.contains("expires"));
    }

    #[test]
    fn objects_of_emitted_text() {
        let text = "table inet portolan {\n\tset a_example_com_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t}\n}\nflush table inet portolan\ntable inet portolan {\n\tmap fwd_src4 {\n\t\ttype ipv4_addr : verdict\n\t\tflags interval\n\t}\n\tchain k_x_out {\n\t}\n}\n";
        let o = objects(text);
        let names: Vec<String> = o.values().map(Object::label).collect();
        assert_eq!(
            names,
            ["chain k_x_out", "map fwd_src4", "set a_example_com_v4"]
        );
    }
}
