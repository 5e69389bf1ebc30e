//! iptables rulesets, typed, as `iptables-save` / `ip6tables-save` and `ipset save` print
//! them (iptables-save(8), iptables(8), iptables-extensions(8), ipset(8)): tables of chains
//! with their policies, and rules of basic matches (`-s`, `-d`, `-i`, `-o`, `-p`, `-f`, each
//! possibly negated with `!`), extension matches (`-m NAME --option ARGS`, kept by name with
//! their options) and a target (`-j`, `-g`). A token the reader does not place is kept in
//! [`Rule::unknown`], so a reader can say "unsupported here" and name the line.
//!
//! Reading needs no scratch namespace: `iptables-save` text is what the tools print and
//! what a `--ruleset` file of this kind holds.

use crate::error::{Error, Result};
use crate::exec::{self, Where};

/// The output of one `iptables-save` (or `ip6tables-save`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Save {
    pub tables: Vec<Table>,
}

/// `*filter` … `COMMIT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub chains: Vec<Chain>,
    pub rules: Vec<Rule>,
}

/// `:NAME POLICY [packets:bytes]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// `ACCEPT` or `DROP` for a built-in chain; `None` for a user chain (`-`).
    pub policy: Option<String>,
}

/// `-A CHAIN …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// 1-based line in the text read.
    pub line: usize,
    pub chain: String,
    pub matches: Vec<Match>,
    pub target: Option<Target>,
    /// Tokens the reader did not place.
    pub unknown: Vec<String>,
    /// The line as printed.
    pub text: String,
}

/// A match; `negated` for a `!` before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// `-s ADDRESS[/MASK]`.
    Source { negated: bool, net: String },
    /// `-d ADDRESS[/MASK]`.
    Destination { negated: bool, net: String },
    /// `-i NAME` (`+` ends a prefix).
    InInterface { negated: bool, name: String },
    /// `-o NAME`.
    OutInterface { negated: bool, name: String },
    /// `-p tcp|udp|icmp|NUMBER…`.
    Protocol { negated: bool, name: String },
    /// `-f`: second and later fragments.
    Fragment { negated: bool },
    /// `-m NAME --option ARGS …`.
    Extension(Extension),
}

/// An extension match or target with its options (`set` with `--match-set p4 dst,dst`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    pub name: String,
    pub options: Vec<Opt>,
}

/// `[!] --name ARGS…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    pub name: String,
    pub negated: bool,
    pub args: Vec<String>,
}

/// `-j ACCEPT`, `-j CHAIN`, `-g CHAIN`, `-j LOG --log-prefix …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Accept,
    Drop,
    Return,
    /// `-j CHAIN` (a user chain: comes back after it).
    Jump(String),
    /// `-g CHAIN` (does not come back).
    Goto(String),
    /// A target extension (`REJECT`, `LOG`, `MARK`, …) with its options; whether it ends
    /// the packet depends on the extension (REJECT does, LOG does not).
    Extension(Extension),
}

impl Extension {
    /// The arguments of option `name` (without `--`).
    pub fn option(&self, name: &str) -> Option<&Opt> {
        self.options.iter().find(|o| o.name == name)
    }
}

impl Rule {
    /// The extension match `name` (`conntrack`, `set`, `multiport`, …), if the rule has one.
    pub fn extension(&self, name: &str) -> Option<&Extension> {
        self.matches.iter().find_map(|m| match m {
            Match::Extension(e) if e.name == name => Some(e),
            _ => None,
        })
    }

    /// The rule's `-m comment --comment` text: its `profile/flow` when Portolan wrote it.
    pub fn comment(&self) -> Option<&str> {
        self.extension("comment")?
            .option("comment")?
            .args
            .first()
            .map(String::as_str)
    }
}

impl Save {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Reads `iptables-save` text. A line outside a table, or a malformed chain line, is an
    /// error naming the line.
    pub fn parse(text: &str) -> Result<Save> {
        let mut out = Save::default();
        let mut current: Option<Table> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let n = i + 1;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| Error::Parse {
                what: format!("iptables-save line {n}: {what}: {line}"),
            };
            if let Some(name) = line.strip_prefix('*') {
                if let Some(t) = current.take() {
                    out.tables.push(t);
                }
                current = Some(Table {
                    name: name.trim().to_string(),
                    ..Table::default()
                });
                continue;
            }
            let table = current.as_mut().ok_or_else(|| bad("outside a table"))?;
            if line == "COMMIT" {
                if let Some(t) = current.take() {
                    out.tables.push(t);
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix(':') {
                let mut w = rest.split_whitespace();
                let name = w.next().ok_or_else(|| bad("a chain without a name"))?;
                let policy = w.next().ok_or_else(|| bad("a chain without a policy"))?;
                table.chains.push(Chain {
                    name: name.to_string(),
                    policy: (policy != "-").then(|| policy.to_string()),
                });
                continue;
            }
            let tokens = tokens(line).ok_or_else(|| bad("an unterminated quote"))?;
            match tokens.first().map(String::as_str) {
                Some("-A") | Some("--append") => {}
                _ => return Err(bad("not a chain, rule or table line")),
            }
            let chain = tokens.get(1).ok_or_else(|| bad("-A without a chain"))?;
            let r = rule(n, chain, &tokens[2..], line, &table.chains);
            table.rules.push(r);
        }
        if let Some(t) = current.take() {
            out.tables.push(t);
        }
        Ok(out)
    }
}

/// The words of a line as a shell would split them (double quotes, `\"` inside them).
fn tokens(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return None;
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

/// Whether a token starts an option (`-s`, `--dport`), rather than being an argument.
fn is_option(t: &str) -> bool {
    t == "!"
        || (t.starts_with('-') && t.len() > 1 && !t[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// One `-A` line; `chains` are the table's (a `-j` to one of them is a jump, to another
/// name a target extension).
fn rule(line: usize, chain: &str, t: &[String], text: &str, chains: &[Chain]) -> Rule {
    let mut r = Rule {
        line,
        chain: chain.to_string(),
        matches: Vec::new(),
        target: None,
        unknown: Vec::new(),
        text: text.to_string(),
    };
    // Where `--option`s go: the last `-m` extension, or the `-j` target extension.
    enum Into {
        Nothing,
        Match,
        Target,
    }
    let mut into = Into::Nothing;
    let mut negated = false;
    let mut i = 0;
    while i < t.len() {
        let tok = t[i].as_str();
        i += 1;
        if tok == "!" {
            negated = true;
            continue;
        }
        let neg = std::mem::take(&mut negated);
        let mut value = || {
            let v = t.get(i).cloned();
            if v.is_some() {
                i += 1;
            }
            v.unwrap_or_default()
        };
        match tok {
            "-s" | "--source" => r.matches.push(Match::Source {
                negated: neg,
                net: value(),
            }),
            "-d" | "--destination" => r.matches.push(Match::Destination {
                negated: neg,
                net: value(),
            }),
            "-i" | "--in-interface" => r.matches.push(Match::InInterface {
                negated: neg,
                name: value(),
            }),
            "-o" | "--out-interface" => r.matches.push(Match::OutInterface {
                negated: neg,
                name: value(),
            }),
            "-p" | "--protocol" => r.matches.push(Match::Protocol {
                negated: neg,
                name: value(),
            }),
            "-f" | "--fragment" => r.matches.push(Match::Fragment { negated: neg }),
            "-m" | "--match" => {
                r.matches.push(Match::Extension(Extension {
                    name: value(),
                    options: Vec::new(),
                }));
                into = Into::Match;
            }
            "-j" | "--jump" => {
                let name = value();
                r.target = Some(match name.as_str() {
                    "ACCEPT" => Target::Accept,
                    "DROP" => Target::Drop,
                    "RETURN" => Target::Return,
                    n if chains.iter().any(|c| c.name == n) => Target::Jump(name),
                    _ => Target::Extension(Extension {
                        name,
                        options: Vec::new(),
                    }),
                });
                into = Into::Target;
            }
            "-g" | "--goto" => r.target = Some(Target::Goto(value())),
            "-c" | "--set-counters" => {
                value();
                value();
            }
            o if o.starts_with("--") => {
                let mut args = Vec::new();
                while i < t.len() && !is_option(&t[i]) {
                    args.push(t[i].clone());
                    i += 1;
                }
                let opt = Opt {
                    name: o.trim_start_matches("--").to_string(),
                    negated: neg,
                    args,
                };
                let placed = match into {
                    Into::Match => match r.matches.last_mut() {
                        Some(Match::Extension(e)) => {
                            e.options.push(opt.clone());
                            true
                        }
                        _ => false,
                    },
                    Into::Target => match r.target.as_mut() {
                        Some(Target::Extension(e)) => {
                            e.options.push(opt.clone());
                            true
                        }
                        _ => false,
                    },
                    Into::Nothing => false,
                };
                if !placed {
                    r.unknown.push(o.to_string());
                    r.unknown.extend(opt.args);
                }
            }
            other => r.unknown.push(other.to_string()),
        }
    }
    r
}

/// An ipset (`create NAME TYPE OPTIONS`) and its members (`add NAME MEMBER OPTIONS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSet {
    pub name: String,
    /// `hash:ip`, `hash:net`, `hash:net,port`, …
    pub kind: String,
    /// What follows the type (`family inet hashsize 1024 maxelem 65536 timeout 3600`).
    pub options: Vec<String>,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `10.20.0.0/24`, `198.51.100.10,udp:500`.
    pub value: String,
    /// An exception inside a wider member (`nomatch`).
    pub nomatch: bool,
    /// What follows the member (`timeout 3599`, `nomatch`).
    pub options: Vec<String>,
}

impl IpSet {
    /// The value after option `key` (`family` → `inet`).
    pub fn option(&self, key: &str) -> Option<&str> {
        let i = self.options.iter().position(|o| o == key)?;
        self.options.get(i + 1).map(String::as_str)
    }

    /// `inet` or `inet6`.
    pub fn family(&self) -> Option<&str> {
        self.option("family")
    }

    /// The default timeout in seconds: members come and go (DNS-filled).
    pub fn timeout(&self) -> Option<u64> {
        self.option("timeout")?.parse().ok()
    }
}

/// Reads `ipset save` text, or `ipset restore` input: `create` (a set declared again is kept
/// as it is, as `-exist` does), `add`, `flush`, `swap` and `destroy`, applied in order, so
/// a file that fills a twin and swaps it in (Portolan's iptables output) reads as the sets it
/// leaves. `-exist` and `-!` are accepted anywhere. A member of a set not created before, or
/// another command, is an error naming the line.
pub fn parse_ipsets(text: &str) -> Result<Vec<IpSet>> {
    let mut out: Vec<IpSet> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| Error::Parse {
            what: format!("ipset save line {}: {what}: {line}", i + 1),
        };
        let w: Vec<&str> = line
            .split_whitespace()
            .filter(|t| *t != "-exist" && *t != "-!")
            .collect();
        let find = |out: &[IpSet], name: &str| out.iter().position(|s| s.name == name);
        match w.as_slice() {
            ["create", name, kind, rest @ ..] => {
                if find(&out, name).is_none() {
                    out.push(IpSet {
                        name: name.to_string(),
                        kind: kind.to_string(),
                        options: rest.iter().map(|s| s.to_string()).collect(),
                        members: Vec::new(),
                    });
                }
            }
            ["add", name, value, rest @ ..] => {
                let k =
                    find(&out, name).ok_or_else(|| bad("a member of a set not created before"))?;
                out[k].members.push(Member {
                    value: value.to_string(),
                    nomatch: rest.contains(&"nomatch"),
                    options: rest.iter().map(|s| s.to_string()).collect(),
                });
            }
            ["flush", name] => {
                let k = find(&out, name).ok_or_else(|| bad("flush of a set not created"))?;
                out[k].members.clear();
            }
            ["flush"] => out.iter_mut().for_each(|s| s.members.clear()),
            ["swap", a, b] => {
                let (Some(x), Some(y)) = (find(&out, a), find(&out, b)) else {
                    return Err(bad("swap of a set not created"));
                };
                // The names stay; what they hold (type, options, members) changes places.
                let (na, nb) = (out[x].name.clone(), out[y].name.clone());
                out.swap(x, y);
                out[x].name = na;
                out[y].name = nb;
            }
            ["destroy", name] => {
                let k = find(&out, name).ok_or_else(|| bad("destroy of a set not created"))?;
                out.remove(k);
            }
            ["destroy"] => out.clear(),
            _ => return Err(bad("not a create, add, flush, swap or destroy line")),
        }
    }
    Ok(out)
}

/// An iptables firewall as loaded: both families and the ipsets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Iptables {
    pub v4: Save,
    pub v6: Save,
    pub sets: Vec<IpSet>,
}

/// `iptables-save`, `ip6tables-save` and `ipset save` in `w`.
pub fn read_live(w: &Where) -> Result<Iptables> {
    let run = |program: &str, args: &[&str]| exec::run(w.command(program, args));
    Ok(Iptables {
        v4: Save::parse(&run("iptables-save", &[])?)?,
        v6: Save::parse(&run("ip6tables-save", &[])?)?,
        sets: parse_ipsets(&run("ipset", &["save"])?)?,
    })
}

/// A file of iptables text as `portolan verify --ruleset` takes it: `iptables-save` and
/// `ip6tables-save` output, `ipset save` output or `ipset restore` input, in one file or
/// several, or Portolan's own iptables output (sections `#> ipset`, `#> iptables`,
/// `#> ip6tables`, `#> dnsmasq`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dump {
    pub firewall: Iptables,
    /// The `#> dnsmasq` section (its `ipset=` lines say which sets dnsmasq fills), if any.
    pub dnsmasq: Option<String>,
}

/// The family a table block is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveFamily {
    /// Decide per block: a `#> ip6tables` marker or an `ip6tables-save` header before it, or
    /// an IPv6 address or ICMPv6 in it, make it IPv6; otherwise IPv4.
    Detect,
    V4,
    V6,
}

/// Whether `text` looks like iptables or ipset text rather than an nftables file: a table
/// line (`*filter`), a Portolan section marker, or an ipset `create NAME TYPE` line.
pub fn looks_like(text: &str) -> bool {
    text.lines().map(str::trim).any(|l| {
        (l.starts_with('*') && l.len() > 1 && l[1..].chars().all(|c| c.is_ascii_lowercase()))
            || matches!(l, "#> ipset" | "#> iptables" | "#> ip6tables")
            || (l.starts_with("create ")
                && l.split_whitespace().nth(2).is_some_and(|t| {
                    t.starts_with("hash:") || t.starts_with("bitmap:") || t.starts_with("list:")
                }))
    })
}

/// Reads a [`Dump`]. Line numbers in rules and errors are the file's: each part is read from
/// a copy of the text with the other parts' lines left blank.
pub fn read_dump(text: &str, family: SaveFamily) -> Result<Dump> {
    let lines: Vec<&str> = text.lines().collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Part {
        None,
        V4,
        V6,
        Ipset,
        Dnsmasq,
    }
    let mut part = vec![Part::None; lines.len()];
    // The family the next table block is read as, from a marker or a header comment.
    let mut hint: Option<Part> = None;
    let mut section: Option<&str> = None;
    let mut block: Option<usize> = None;
    for (i, raw) in lines.iter().enumerate() {
        let l = raw.trim();
        if let Some(start) = block {
            if l == "COMMIT" {
                let fam = match (family, hint) {
                    (SaveFamily::V4, _) => Part::V4,
                    (SaveFamily::V6, _) => Part::V6,
                    (SaveFamily::Detect, Some(h)) => h,
                    (SaveFamily::Detect, None) if lines[start..=i].iter().any(|l| ipv6_line(l)) => {
                        Part::V6
                    }
                    (SaveFamily::Detect, None) => Part::V4,
                };
                part[start..=i].iter_mut().for_each(|p| *p = fam);
                block = None;
                if section.is_none() {
                    hint = None;
                }
            }
            continue;
        }
        if let Some(name) = l.strip_prefix("#> ") {
            section = Some(name.trim());
            hint = match name.trim() {
                "iptables" => Some(Part::V4),
                "ip6tables" => Some(Part::V6),
                _ => None,
            };
            continue;
        }
        if l.starts_with("# Generated by ip6tables-save") {
            hint = Some(Part::V6);
        } else if l.starts_with("# Generated by iptables-save") {
            hint = Some(Part::V4);
        }
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if section == Some("dnsmasq") {
            part[i] = Part::Dnsmasq;
        } else if l.starts_with('*') {
            block = Some(i);
        } else {
            part[i] = Part::Ipset;
        }
    }
    if let Some(start) = block {
        return Err(Error::Parse {
            what: format!(
                "iptables-save line {}: a table without COMMIT: {}",
                start + 1,
                lines[start].trim()
            ),
        });
    }
    let only = |p: Part| -> String {
        lines
            .iter()
            .zip(&part)
            .map(|(l, q)| if *q == p { *l } else { "" })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let dnsmasq = part.contains(&Part::Dnsmasq).then(|| only(Part::Dnsmasq));
    Ok(Dump {
        firewall: Iptables {
            v4: Save::parse(&only(Part::V4))?,
            v6: Save::parse(&only(Part::V6))?,
            sets: parse_ipsets(&only(Part::Ipset))?,
        },
        dnsmasq,
    })
}

/// Whether a rule line names an IPv6 address or ICMPv6 (an `ip6tables-save` block).
fn ipv6_line(l: &str) -> bool {
    let w: Vec<&str> = l.split_whitespace().collect();
    w.windows(2)
        .any(|p| matches!(p[0], "-s" | "-d" | "--source" | "--destination") && p[1].contains(':'))
        || w.iter()
            .any(|t| matches!(*t, "ipv6-icmp" | "icmpv6" | "icmp6" | "--icmpv6-type"))
}
