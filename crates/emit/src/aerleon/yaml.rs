//! The YAML Aerleon reads: network and service definitions (Aerleon's naming reference,
//! `networks: NAME: values: [{address|fqdn, comment}]`, `services: NAME: [{port, protocol}]`)
//! and policy filters (its YAML policy reference: `filters: [{header: {comment, targets},
//! terms: [...]}]`). Every scalar is written double-quoted with YAML's escapes, so no text
//! can end a string or start a key; names are built here from ids in Aerleon's token
//! alphabet (`A-Z a-z 0-9 - _`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ipnet::IpNet;

use crate::names::object_max;
use crate::EmitError;

/// The longest network or service token: pf truncates tokens at 31 characters (Aerleon's
/// packetfilter `_DEF_MAX_LENGTH`), so longer ones could merge there.
const TOKEN_MAX: usize = 31;

/// A YAML double-quoted scalar.
pub fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04x}", u32::from(c));
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Text for a `#` comment line: one line.
pub fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A token from id parts, in Aerleon's alphabet.
fn token(parts: &[&str]) -> String {
    object_max(parts, TOKEN_MAX).replace('.', "-")
}

/// One value of a network.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Net {
    Addr(IpNet, Option<String>),
    Fqdn(String),
}

/// Named values, each content once, each name once.
#[derive(Default)]
struct Named<V> {
    by_content: BTreeMap<V, String>,
    defs: BTreeMap<String, (String, V)>,
}

impl<V: Ord + Clone> Named<V> {
    fn add(&mut self, parts: &[&str], comment: &str, v: V) -> String {
        if let Some(n) = self.by_content.get(&v) {
            return n.clone();
        }
        let base = token(parts);
        let mut name = base.clone();
        let mut k = 2;
        while self.defs.contains_key(&name) {
            name = format!("{}-{k}", &base[..base.len().min(TOKEN_MAX - 4)]);
            k += 1;
        }
        self.by_content.insert(v.clone(), name.clone());
        self.defs.insert(name.clone(), (comment.to_string(), v));
        name
    }
}

/// `def/networks.yaml`.
#[derive(Default)]
pub struct Networks(Named<Vec<Net>>);

impl Networks {
    /// The token of `vals` (sorted, deduplicated), defined on first use.
    pub fn add(
        &mut self,
        parts: &[&str],
        comment: &str,
        mut vals: Vec<Net>,
    ) -> Result<String, EmitError> {
        vals.sort();
        vals.dedup();
        Ok(self.0.add(parts, comment, vals))
    }

    pub fn render(&self) -> String {
        let mut o =
            String::from("# Portolan: network definitions, generated, do not edit.\nnetworks:\n");
        for (name, (comment, vals)) in &self.0.defs {
            let _ = writeln!(o, "  # {}", comment_safe(comment));
            let _ = writeln!(o, "  {}:\n    values:", q(name));
            for v in vals {
                match v {
                    Net::Addr(a, c) => {
                        let _ = writeln!(o, "      - address: {}", q(&a.to_string()));
                        if let Some(c) = c {
                            let _ = writeln!(o, "        comment: {}", q(c));
                        }
                    }
                    Net::Fqdn(f) => {
                        let _ = writeln!(o, "      - fqdn: {}", q(f));
                    }
                }
            }
        }
        o
    }
}

/// `def/services.yaml`: (port or range, protocol) entries.
#[derive(Default)]
pub struct Services(Named<Vec<(String, String)>>);

impl Services {
    pub fn add(&mut self, parts: &[&str], mut entries: Vec<(String, String)>) -> String {
        entries.sort();
        entries.dedup();
        self.0.add(parts, "", entries)
    }

    pub fn render(&self) -> String {
        let mut o =
            String::from("# Portolan: service definitions, generated, do not edit.\nservices:\n");
        for (name, (_, entries)) in &self.0.defs {
            let _ = writeln!(o, "  {}:", q(name));
            for (port, proto) in entries {
                let _ = writeln!(o, "    - port: {}\n      protocol: {}", q(port), q(proto));
            }
        }
        o
    }
}

/// One term of a filter.
#[derive(Clone, Debug, Default)]
pub struct Term {
    pub name: String,
    pub comment: String,
    pub src_if: Option<String>,
    pub src: Vec<String>,
    pub dst: Vec<String>,
    pub src_fqdn: Vec<String>,
    pub dst_fqdn: Vec<String>,
    pub protocol: Option<String>,
    pub sport: Option<String>,
    pub dport: Option<String>,
    pub icmp_type: Vec<String>,
    pub option: Option<String>,
    pub action: String,
}

/// One filter: a header with one target and its terms.
pub struct Filter {
    pub comment: String,
    pub target: String,
    pub options: String,
    pub terms: Vec<Term>,
}

fn list(o: &mut String, key: &str, v: &[String]) {
    if v.is_empty() {
        return;
    }
    let _ = writeln!(o, "        {key}:");
    for x in v {
        let _ = writeln!(o, "          - {}", q(x));
    }
}

fn one(o: &mut String, key: &str, v: &Option<String>) {
    if let Some(x) = v {
        let _ = writeln!(o, "        {key}: {}", q(x));
    }
}

pub fn render_filters(filters: &[Filter]) -> String {
    let mut o = String::from("filters:\n");
    for f in filters {
        let _ = writeln!(
            o,
            "  - header:\n      comment: {}\n      targets:",
            q(&f.comment)
        );
        let _ = writeln!(o, "        {}: {}", q(&f.target), q(&f.options));
        o.push_str("    terms:\n");
        for t in &f.terms {
            let _ = writeln!(o, "      - name: {}", q(&t.name));
            let _ = writeln!(o, "        comment: {}", q(&t.comment));
            one(&mut o, "source-interface", &t.src_if);
            list(&mut o, "source-address", &t.src);
            list(&mut o, "source-fqdn", &t.src_fqdn);
            list(&mut o, "destination-address", &t.dst);
            list(&mut o, "destination-fqdn", &t.dst_fqdn);
            one(&mut o, "protocol", &t.protocol);
            one(&mut o, "source-port", &t.sport);
            one(&mut o, "destination-port", &t.dport);
            list(&mut o, "icmp-type", &t.icmp_type);
            one(&mut o, "option", &t.option);
            let _ = writeln!(o, "        action: {}", q(&t.action));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_cannot_break_out_of_their_quotes() {
        assert_eq!(q(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(q("x\ny: 1"), "\"x\\u000ay: 1\"");
    }

    #[test]
    fn one_content_one_name_and_names_stay_distinct() {
        let mut n = Networks::default();
        let a = Net::Addr("10.0.0.1/32".parse().expect("prefix"), None);
        let b = Net::Addr("10.0.0.2/32".parse().expect("prefix"), None);
        let x = n
            .add(&["peer", "p", "f"], "", vec![a.clone()])
            .expect("add");
        assert_eq!(n.add(&["peer", "q", "g"], "", vec![a]).expect("add"), x);
        let y = n.add(&["peer", "p", "f"], "", vec![b]).expect("add");
        assert_ne!(x, y);
        assert!(y.len() <= TOKEN_MAX);
    }
}
