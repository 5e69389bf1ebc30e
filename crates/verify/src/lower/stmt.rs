//! A rule's statements: matches become tests on regions of the packet space, verdict maps
//! become dispatch on them, verdicts and the statements with no effect on the verdict are
//! read, and anything else becomes [`Stmt::Unknown`] naming what is outside the subset.
//! Statements are also rendered in nft's words for reports.

use serde_json::Value;

use super::expr::{table_family, Key, ValKind};
use super::Lowering;
use crate::program::{DynamicKey, Rule, RuleRef, Stmt, Test, Verdict};
use crate::space::{Cube, Dim, Iv, Region, FIXED};

impl Lowering<'_> {
    pub(super) fn rule(
        &mut self,
        r: &Value,
        fam: &str,
        table: &str,
        chain: &str,
        line: Option<usize>,
    ) -> Rule {
        let exprs: Vec<Value> = r
            .get("expr")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let at = RuleRef {
            family: fam.into(),
            table: table.into(),
            chain: chain.into(),
            handle: r.get("handle").and_then(Value::as_u64),
            line,
            comment: r.get("comment").and_then(Value::as_str).map(str::to_string),
            text: exprs.iter().map(render_stmt).collect::<Vec<_>>().join(" "),
        };
        let mut stmts = Vec::new();
        let has_verdict_after = |i: usize| {
            exprs[i + 1..].iter().any(|s| {
                s.as_object()
                    .and_then(|o| o.keys().next())
                    .is_some_and(|k| {
                        matches!(
                            k.as_str(),
                            "accept"
                                | "drop"
                                | "reject"
                                | "jump"
                                | "goto"
                                | "return"
                                | "continue"
                                | "vmap"
                                | "queue"
                                | "snat"
                                | "dnat"
                                | "masquerade"
                                | "redirect"
                        )
                    })
            })
        };
        for (i, s) in exprs.iter().enumerate() {
            let Some((k, body)) = s.as_object().and_then(|o| o.iter().next()) else {
                stmts.push(Stmt::Unknown(format!("statement {s}")));
                continue;
            };
            let st = match k.as_str() {
                "match" => self.test(body, fam, table),
                "vmap" => self.vmap(body, fam, table),
                "accept" => Stmt::Verdict(Verdict::Accept),
                "drop" => Stmt::Verdict(Verdict::Drop),
                "reject" => Stmt::Verdict(Verdict::Reject),
                "return" => Stmt::Verdict(Verdict::Return),
                "continue" => Stmt::Verdict(Verdict::Continue),
                "jump" | "goto" => {
                    let target = body.get("target").and_then(Value::as_str).unwrap_or("");
                    match self
                        .chain_index
                        .get(&(fam.into(), table.into(), target.into()))
                    {
                        Some(&c) if k == "jump" => Stmt::Verdict(Verdict::Jump(c)),
                        Some(&c) => Stmt::Verdict(Verdict::Goto(c)),
                        None => Stmt::Unknown(format!("{k} to unknown chain {target}")),
                    }
                }
                // `ct timeout set "name"` (JSON key `ct timeout`, `compile --ct-timeouts`)
                // gives the connection a conntrack timeout object: how long an idle entry
                // lives, never whether this packet passes.
                "counter" | "log" | "comment" | "set" | "map" | "ct timeout" => continue,
                "mangle"
                    if body
                        .get("key")
                        .and_then(|k| k.get("meta"))
                        .and_then(|m| m.get("key"))
                        .and_then(Value::as_str)
                        == Some("mark") =>
                {
                    continue
                }
                "limit" | "quota" if !has_verdict_after(i) => continue,
                "limit" | "quota" => {
                    Stmt::Unknown(format!("{k}: whether a packet passes depends on the rate"))
                }
                "snat" | "masquerade" => Stmt::Verdict(Verdict::Accept),
                other => Stmt::Unknown(format!(
                    "statement `{other}` is outside the supported subset"
                )),
            };
            stmts.push(st);
        }
        Rule { at, stmts }
    }

    pub(super) fn dynamic_axis(&mut self, fam: &str, table: &str, set: &str, key: &str) -> usize {
        let d = DynamicKey {
            family: fam.into(),
            table: table.into(),
            set: set.into(),
            key: key.into(),
        };
        let i = match self.dynamic.iter().position(|x| *x == d) {
            Some(i) => i,
            None => {
                self.dynamic.push(d);
                self.dynamic.len() - 1
            }
        };
        FIXED + i
    }

    pub(super) fn test(&mut self, m: &Value, fam: &str, table: &str) -> Stmt {
        let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
        let left = m.get("left").unwrap_or(&Value::Null);
        let right = m.get("right").unwrap_or(&Value::Null);
        let key = match self.key(left) {
            Ok(k) => k,
            Err(what) => return Stmt::Unknown(format!("{what} is outside the supported subset")),
        };
        let (mut deps, unknown_deps, _) = Self::deps_of(&key);
        deps = deps.meet(&table_family(fam));
        let result = match op {
            "==" | "!=" | "in" => self.region(&key, right, fam, table),
            "<" | "<=" | ">" | ">=" => match &key {
                Key::Axis { dim, kind, .. } => self.values(*kind, right).and_then(|(v, _)| {
                    let x = v.first().ok_or("empty value")?.lo;
                    let max = if *dim == Dim::Saddr || *dim == Dim::Daddr {
                        if *kind == ValKind::Addr4 {
                            u128::from(u32::MAX)
                        } else {
                            u128::MAX
                        }
                    } else {
                        dim.top()
                    };
                    let iv = match op {
                        "<" if x == 0 => None,
                        "<" => Some(Iv::new(0, x - 1)),
                        "<=" => Some(Iv::new(0, x)),
                        ">" if x >= max => None,
                        ">" => Some(Iv::new(x + 1, max)),
                        _ => Some(Iv::new(x, max)),
                    };
                    Ok((
                        iv.map(|iv| Cube::new().with(dim.index(), iv))
                            .into_iter()
                            .collect(),
                        Vec::new(),
                    ))
                }),
                Key::Concat(_) => Err("an ordering on a concatenation".into()),
            },
            other => Err(format!("operator `{other}`")),
        };
        match result {
            Ok((region, mut unknown)) => {
                unknown.extend(unknown_deps);
                Stmt::Test(Test {
                    deps,
                    region: Region::plain(region),
                    negate: op == "!=",
                    unknown,
                })
            }
            Err(what) => Stmt::Unknown(format!("{what} is outside the supported subset")),
        }
    }

    pub(super) fn vmap(&mut self, body: &Value, fam: &str, table: &str) -> Stmt {
        let key = match self.key(body.get("key").unwrap_or(&Value::Null)) {
            Ok(k) => k,
            Err(what) => {
                return Stmt::Unknown(format!("vmap key {what} is outside the supported subset"))
            }
        };
        let (deps, unknown, _) = Self::deps_of(&key);
        if !unknown.is_empty() {
            return Stmt::Unknown("vmap on a key read from any transport header".into());
        }
        let data = body.get("data").unwrap_or(&Value::Null);
        let elems: Vec<Value> = if let Some(name) = data.as_str().and_then(|s| s.strip_prefix('@'))
        {
            match self.sets.get(&(fam.into(), table.into(), name.into())) {
                Some(d)
                    if d.flags.iter().any(|f| f == "timeout" || f == "dynamic")
                        || self
                            .updated
                            .contains(&(fam.into(), table.into(), name.into())) =>
                {
                    return Stmt::Unknown(format!("verdict map @{name} changes at run time"));
                }
                Some(d) => d.elems.clone(),
                None => return Stmt::Unknown(format!("verdict map @{name} not declared")),
            }
        } else {
            data.get("set")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let mut arms = Vec::new();
        let mut verdicts = Vec::new();
        for e in elems {
            let pair = e
                .get("elem")
                .and_then(|x| x.get("val"))
                .map(|_| e.clone())
                .unwrap_or(e);
            let (k, v) = match pair.as_array() {
                Some(a) if a.len() == 2 => (a[0].clone(), a[1].clone()),
                _ => return Stmt::Unknown(format!("verdict map element {pair}")),
            };
            let cubes = match self.element(&key, &k) {
                Ok((c, u)) if u.is_empty() => c,
                Ok(_) => return Stmt::Unknown("verdict map key with an interface wildcard".into()),
                Err(what) => return Stmt::Unknown(format!("verdict map element: {what}")),
            };
            let verdict = match v.as_object().and_then(|o| o.iter().next()) {
                Some((k, b)) => match k.as_str() {
                    "accept" => Verdict::Accept,
                    "drop" => Verdict::Drop,
                    "reject" => Verdict::Reject,
                    "return" => Verdict::Return,
                    "continue" => Verdict::Continue,
                    "jump" | "goto" => {
                        let target = b.get("target").and_then(Value::as_str).unwrap_or("");
                        match self
                            .chain_index
                            .get(&(fam.into(), table.into(), target.into()))
                        {
                            Some(&c) if k == "jump" => Verdict::Jump(c),
                            Some(&c) => Verdict::Goto(c),
                            None => return Stmt::Unknown(format!("{k} to unknown chain {target}")),
                        }
                    }
                    _ => return Stmt::Unknown(format!("verdict {k}")),
                },
                None => return Stmt::Unknown(format!("verdict {v}")),
            };
            let tag = verdicts.len();
            verdicts.push(verdict);
            arms.extend(cubes.into_iter().map(|c| (c, tag)));
        }
        Stmt::Vmap {
            deps: deps.meet(&table_family(fam)),
            region: Region::new(arms),
            verdicts,
        }
    }
}

/// A statement in nft's words, for reports.
pub fn render_stmt(s: &Value) -> String {
    let Some((k, b)) = s.as_object().and_then(|o| o.iter().next()) else {
        return s.to_string();
    };
    match k.as_str() {
        "match" => {
            let op = b.get("op").and_then(Value::as_str).unwrap_or("==");
            let l = render_expr(b.get("left").unwrap_or(&Value::Null));
            let r = render_expr(b.get("right").unwrap_or(&Value::Null));
            match op {
                "==" | "in" => format!("{l} {r}"),
                _ => format!("{l} {op} {r}"),
            }
        }
        "vmap" => format!(
            "{} vmap {}",
            render_expr(b.get("key").unwrap_or(&Value::Null)),
            render_expr(b.get("data").unwrap_or(&Value::Null))
        ),
        "jump" | "goto" => format!(
            "{k} {}",
            b.get("target").and_then(Value::as_str).unwrap_or("")
        ),
        "counter" => "counter".into(),
        "log" => "log".into(),
        "ct timeout" => format!("ct timeout set {b}"),
        "limit" => format!(
            "limit rate {}/{}",
            b.get("rate").map(Value::to_string).unwrap_or_default(),
            b.get("per").and_then(Value::as_str).unwrap_or("second")
        ),
        _ => k.clone(),
    }
}

fn render_expr(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => a.iter().map(render_expr).collect::<Vec<_>>().join(","),
        Value::Object(o) => {
            if let Some(p) = o.get("payload") {
                return format!(
                    "{} {}",
                    p.get("protocol").and_then(Value::as_str).unwrap_or(""),
                    p.get("field").and_then(Value::as_str).unwrap_or("")
                );
            }
            if let Some(m) = o.get("meta") {
                let k = m.get("key").and_then(Value::as_str).unwrap_or("");
                return if matches!(k, "iifname" | "oifname" | "iif" | "oif") {
                    k.into()
                } else {
                    format!("meta {k}")
                };
            }
            if let Some(c) = o.get("ct") {
                return format!("ct {}", c.get("key").and_then(Value::as_str).unwrap_or(""));
            }
            if let Some(p) = o.get("prefix") {
                return format!(
                    "{}/{}",
                    p.get("addr").and_then(Value::as_str).unwrap_or(""),
                    p.get("len").map(Value::to_string).unwrap_or_default()
                );
            }
            if let Some(Value::Array(r)) = o.get("range") {
                return r.iter().map(render_expr).collect::<Vec<_>>().join("-");
            }
            if let Some(Value::Array(c)) = o.get("concat") {
                return c.iter().map(render_expr).collect::<Vec<_>>().join(" . ");
            }
            if let Some(s) = o.get("set") {
                let items: Vec<String> = match s {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            Value::Array(kv) if kv.len() == 2 => {
                                format!("{} : {}", render_expr(&kv[0]), render_stmt(&kv[1]))
                            }
                            _ => render_expr(x),
                        })
                        .collect(),
                    x => vec![render_expr(x)],
                };
                return format!("{{ {} }}", items.join(", "));
            }
            e.to_string()
        }
        _ => e.to_string(),
    }
}
