//! Problems found in a MUD file, each with the JSON path it concerns (an RFC 6901 JSON Pointer
//! into the file as written), a stable code and a message. The importer repairs what real files
//! get wrong and reports each repair as a warning; in strict mode the same deviations are errors.

use std::fmt;

use portolan_model::Severity;

pub use crate::code::Code;
use serde::Serialize;

/// One problem in a MUD file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Stable code, written in kebab-case (`draft-acl-container`, `hex-ethertype`, …).
    pub code: Code,
    /// JSON Pointer (RFC 6901) into the file: `/ietf-mud:mud/mud-url`.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {sev}[{}]: {}", self.code, self.message)
    }
}

/// Appends one reference token to a JSON Pointer, escaping `~` and `/` (RFC 6901 section 3).
pub fn join(path: &str, token: impl fmt::Display) -> String {
    let t = token.to_string().replace('~', "~0").replace('/', "~1");
    format!("{path}/{t}")
}

/// Where the repaired tree's nodes were in the file as written. [`crate::repair`] renames and
/// moves members (`…:access-lists` → `…:acls`, `rule-name` → `name`, draft port ranges into
/// `tcp`/`udp`, …), replaces values (`"0x0800"` → `2048`, `[]` → `[null]`) and inserts what is
/// missing; every later pass names paths in the repaired tree. [`PathMap::original`] turns such
/// a path back into a JSON Pointer into the file as written, so that every path a user sees
/// resolves in their file.
#[derive(Clone, Debug, Default)]
pub struct PathMap {
    /// (path in the repaired tree, path in the file, whether what lies below is kept).
    entries: Vec<(String, String, bool)>,
}

impl PathMap {
    /// The node at `repaired` was at `original` in the file (renamed or moved); what lies
    /// below it was moved with it.
    pub fn moved(&mut self, repaired: &str, original: &str) {
        self.entries
            .push((repaired.to_string(), original.to_string(), true));
    }

    /// The node at `repaired` is not in the file as written: the repair inserted it (a missing
    /// leaf, a container the repair created). Paths at or below it name its parent in the file.
    pub fn created(&mut self, repaired: &str) {
        let parent = repaired.rfind('/').map_or("", |i| &repaired[..i]);
        let original = self.original(parent);
        self.entries.push((repaired.to_string(), original, false));
    }

    /// The value at `repaired` was replaced (`[]` by `[null]`, a string by a number): paths
    /// below it name the node itself.
    pub fn replaced(&mut self, repaired: &str) {
        let original = self.original(repaired);
        self.entries.push((repaired.to_string(), original, false));
    }

    /// `path` (a JSON Pointer into the repaired tree, or one already naming a member only the
    /// file has, such as `…/rule-name`) as a JSON Pointer into the file as written.
    pub fn original(&self, path: &str) -> String {
        let mut best: Option<&(String, String, bool)> = None;
        for e in &self.entries {
            let under = path == e.0
                || (path.starts_with(e.0.as_str())
                    && path.as_bytes().get(e.0.len()) == Some(&b'/'));
            if under && best.is_none_or(|b| e.0.len() > b.0.len()) {
                best = Some(e);
            }
        }
        match best {
            None => path.to_string(),
            Some((from, to, true)) => format!("{to}{}", &path[from.len()..]),
            Some((_, to, false)) => to.clone(),
        }
    }

    /// Rewrites the path of each problem with [`PathMap::original`].
    pub fn restore(&self, problems: &mut [Problem]) {
        for p in problems {
            p.path = self.original(&p.path);
        }
    }
}

/// Collects problems while a pass walks a file. `deviation` records an RFC deviation: an error
/// in strict mode, a warning (the repair was made) otherwise.
#[derive(Debug, Default)]
pub struct Problems {
    pub strict: bool,
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn new(strict: bool) -> Self {
        Problems {
            strict,
            list: Vec::new(),
        }
    }

    /// Something the RFCs do not allow, which lenient mode repairs.
    pub fn deviation(&mut self, path: &str, code: Code, message: impl Into<String>) {
        let message = message.into();
        if self.strict {
            let m = strict_wording(&message);
            self.push(Severity::Error, path, code, m);
        } else {
            self.push(Severity::Warning, path, code, message);
        }
    }

    /// Something allowed that Portolan cannot carry, or that changes what is enforced.
    pub fn warning(&mut self, path: &str, code: Code, message: impl Into<String>) {
        self.push(Severity::Warning, path, code, message.into());
    }

    /// Something that makes the file (or the part at `path`) unusable in either mode.
    pub fn error(&mut self, path: &str, code: Code, message: impl Into<String>) {
        self.push(Severity::Error, path, code, message.into());
    }

    fn push(&mut self, severity: Severity, path: &str, code: Code, message: String) {
        self.list.push(Problem {
            severity,
            code,
            path: path.to_string(),
            message,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Problem::is_error)
    }

    pub fn errors(&self) -> Vec<Problem> {
        self.list.iter().filter(|p| p.is_error()).cloned().collect()
    }
}

/// A deviation's message as a strict refusal: the lenient repair it names ("…; ignored",
/// "…; read as X", "…; the ACE is skipped") did not happen, the file is refused.
fn strict_wording(message: &str) -> String {
    const REPAIRS: &[&str] = &[
        "ignored", "skipped", "read as", "read by", "kept", "repaired",
    ];
    let head = match message.rsplit_once("; ") {
        Some((head, tail)) if REPAIRS.iter().any(|r| tail.contains(r)) => head,
        _ => message,
    };
    format!("{head}; refused (--strict)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_refusals_do_not_claim_a_repair() {
        let mut p = Problems::new(true);
        p.deviation(
            "/a",
            Code::IgnoredMember,
            "`k` is not an RFC 8520 leaf; ignored",
        );
        p.deviation(
            "/b",
            Code::ReversedRange,
            "lower-port 9 is above upper-port 3; the ACE is skipped",
        );
        p.deviation("/c", Code::NotStated, "no repair named here");
        let got: Vec<&str> = p.list.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(
            got,
            [
                "`k` is not an RFC 8520 leaf; refused (--strict)",
                "lower-port 9 is above upper-port 3; refused (--strict)",
                "no repair named here; refused (--strict)",
            ]
        );
        let mut lenient = Problems::new(false);
        lenient.deviation(
            "/a",
            Code::IgnoredMember,
            "`k` is not an RFC 8520 leaf; ignored",
        );
        assert_eq!(
            lenient.list[0].message,
            "`k` is not an RFC 8520 leaf; ignored"
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(join("/a", "b/c~d"), "/a/b~1c~0d");
        assert_eq!(join("", 3), "/3");
    }

    #[test]
    fn repaired_paths_map_back_to_the_file() {
        let mut m = PathMap::default();
        m.moved("/acls", "/access-lists");
        m.moved(
            "/acls/acl/0/aces",
            &format!("{}/access-list-entries", m.original("/acls/acl/0")),
        );
        m.created("/acls/acl/0/aces/ace/1/matches/tcp");
        m.moved(
            "/acls/acl/0/aces/ace/1/matches/tcp/source-port",
            "/access-lists/acl/0/access-list-entries/ace/1/matches/ipv4-acl/source-port-range",
        );
        m.replaced("/acls/acl/0/aces/ace/2/matches/eth/ethertype");
        assert_eq!(m.original("/acls/acl/3/name"), "/access-lists/acl/3/name");
        assert_eq!(m.original("/aclsx"), "/aclsx");
        assert_eq!(
            m.original("/acls/acl/0/aces/ace/1/matches/tcp"),
            "/access-lists/acl/0/access-list-entries/ace/1/matches"
        );
        assert_eq!(
            m.original("/acls/acl/0/aces/ace/1/matches/tcp/source-port/operator"),
            "/access-lists/acl/0/access-list-entries/ace/1/matches/ipv4-acl/source-port-range/operator"
        );
        assert_eq!(
            m.original("/acls/acl/0/aces/ace/2/matches/eth/ethertype/x"),
            "/access-lists/acl/0/access-list-entries/ace/2/matches/eth/ethertype"
        );
        assert_eq!(m.original(""), "");
    }
}
