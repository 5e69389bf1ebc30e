//! What profile and site files share, checked the same way in both: the text before it is
//! parsed (no tab in an indentation, `portolan:` first), the format version, identifiers and
//! addresses, and [`Loaded`], a validated value with its warnings.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::diag::{Code, Diagnostic, Pos, Sink};
use crate::raw::Spanned;
use crate::syntax::is_ident;

/// A validated profile and its warnings.
#[derive(Debug)]
pub struct Loaded<T> {
    pub value: T,
    pub warnings: Vec<Diagnostic>,
}

/// The position a diagnostic about a value points at.
pub(crate) fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos::from(s.referenced)
}

/// Checks that the first key of the document is `portolan:`.
/// YAML forbids tabs in indentation; the parser reports them late and on the line before.
/// This finds the first one with its exact position.
pub fn check_tabs(file: &str, text: &str) -> Option<Diagnostic> {
    for (i, line) in text.lines().enumerate() {
        let rest = line.trim_start_matches([' ', '\t']);
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        let indent: &str = &line[..line.len() - rest.len()];
        if let Some(col) = indent.find('\t') {
            let mut sink = Sink::new(file);
            sink.error(
                Pos::new(i as u64 + 1, col as u64 + 1),
                Code::TabIndent,
                "a tab character in the indentation",
                "YAML indents with spaces only: replace the tab with spaces",
            );
            return sink.finish().pop();
        }
    }
    None
}

pub fn check_version_first(file: &str, text: &str) -> Option<Diagnostic> {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t.is_empty() || t.trim_start().starts_with('#') || t == "---" {
            continue;
        }
        if t.starts_with("portolan:") {
            return None;
        }
        let mut sink = Sink::new(file);
        sink.error(
            Pos::new(i as u64 + 1, 1),
            Code::MissingVersion,
            "the first key must be `portolan: 1`",
            "start the file with the line `portolan: 1`",
        );
        return sink.finish().pop();
    }
    let mut sink = Sink::new(file);
    sink.error(
        Pos::new(1, 1),
        Code::MissingVersion,
        "the file is empty",
        "start the file with `portolan: 1`",
    );
    sink.finish().pop()
}

/// `portolan:` must be an edition this Portolan reads: 1 for sites, 1 or 2 for profiles
/// (`latest`).
pub(crate) fn check_format_version(sink: &mut Sink, v: &Spanned<i64>, latest: i64) {
    if !(1..=latest).contains(&v.value) {
        let editions = if latest == 1 {
            "`portolan: 1`".to_string()
        } else {
            format!("`portolan: 1` to `portolan: {latest}`")
        };
        sink.error(
            pos(v),
            Code::UnsupportedVersion,
            format!("format version {} is not supported", v.value),
            format!("this Portolan reads {editions} here"),
        );
    }
}

/// An identifier (of a flow, endpoint, zone, device, site…), or `invalid-id` at its position.
pub(crate) fn check_ident(sink: &mut Sink, what: &str, id: &Spanned<String>) {
    if !is_ident(&id.value) {
        sink.error(
            pos(id),
            Code::InvalidId,
            format!("{what} `{}` is not a valid identifier", id.value),
            "use letters, digits, '-', '_' and '.', starting with a letter or digit",
        );
    }
}

/// An IP address or CIDR prefix (host bits clear), or a diagnostic at its position.
pub(crate) fn address(sink: &mut Sink, a: &Spanned<String>) -> Option<IpNet> {
    let t = a.value.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        if net.trunc() != net {
            sink.error(
                pos(a),
                Code::InvalidAddress,
                format!("`{t}` has host bits set"),
                format!("write the network as {}", net.trunc()),
            );
        }
        return Some(net);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(IpNet::from(ip));
    }
    sink.error(
        pos(a),
        Code::InvalidAddress,
        format!("`{t}` is not an IP address or CIDR prefix"),
        "write 192.0.2.1, 192.0.2.0/24 or 2001:db8::/32",
    );
    None
}
