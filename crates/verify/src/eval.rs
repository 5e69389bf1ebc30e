//! The packet-class evaluator: a class of packets through the hooks of a path, every base
//! chain of each hook by priority, rule by rule, splitting the class wherever a rule tells
//! its packets apart. The result is a partition of the class into pieces, each with one
//! outcome and the rule that decided it:
//!
//! - **accept**: every base chain on the path accepted (by a rule or its policy);
//! - **deny**: a `drop` or `reject` (or a base chain's `policy drop`) stopped it;
//! - **depends**: the piece reached an expression outside the supported subset, a rate
//!   (`limit` with a verdict), or a jump deeper than the kernel allows.
//!
//! Semantics followed (nft(8) "VERDICT STATEMENT", "CHAINS"): `accept` ends the current
//! base chain only, the next base chain of the hook (and the next hook) still sees the
//! packet; `drop`/`reject` end everything; `jump` returns to the next rule after `return`
//! or the end of the called chain; `goto` does not return to its caller; `continue` goes
//! on with the next rule; falling off a base chain applies its policy. A verdict map
//! applies the verdict of the element holding the key and is no match when none does.
//! Chains of type `nat` see only the first packet of a connection (ct state new).
//!
//! Membership in sets filled at run time is a 0/1 axis of the class ([`crate::space`]):
//! the evaluator splits on it like on any other axis, so a verdict that does not depend on
//! a DNS-filled set's contents is exact, and one that does is reported with that axis.

use serde::Serialize;

use crate::program::{Hook, Path, Program, RuleRef, Stmt, Test, Verdict};
use crate::space::{merge_axis, split, Class, CtState, Cube, Dim, Iv};

/// The nft limit on nested jumps.
pub(crate) const MAX_DEPTH: usize = 16;

thread_local! {
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Adds to this thread's work counter ([`work`]).
pub(crate) fn count_work(n: u64) {
    WORK.with(|w| w.set(w.get() + n));
}

/// The evaluator's work on this thread so far: every (box, rule) pair it looked at and every
/// verdict-map element a box was split on. Machine-independent, so tests can bound how it
/// grows with the ruleset (time would depend on the machine's load).
pub fn work() -> u64 {
    WORK.with(std::cell::Cell::get)
}

/// Whether some packet of `piece` may match `stmts`: false when one of its leading tests (a
/// rule's matches, which only read the packet, so their order does not matter) cannot hold
/// for any packet of it. The whole piece then goes to the next rule unsplit, where splitting
/// test by test would cut it on the tests before the one that fails, and pass on every part.
fn may_match(stmts: &[Stmt], piece: &Class) -> bool {
    for s in stmts {
        let Stmt::Test(t) = s else { break };
        if !piece.meets(&t.deps) {
            return false;
        }
        if !t.negate && t.unknown.is_empty() && !t.region.meets(piece) {
            return false;
        }
    }
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "outcome", content = "why")]
pub enum Outcome {
    Accept,
    Deny,
    /// Why it cannot be decided statically.
    Depends(String),
}

/// One part of an evaluated class.
#[derive(Clone, Debug)]
pub struct Piece {
    pub class: Class,
    pub outcome: Outcome,
    /// The rule that decided it: the drop, the expression it depends on, or the accepting
    /// rule (the last one on the path that is not a policy).
    pub rule: Option<RuleRef>,
}

enum End {
    Accept,
    Deny,
    Return,
    Depends(String),
}

struct Res {
    class: Class,
    end: End,
    rule: Option<RuleRef>,
}

impl Program {
    /// Evaluates `class` along `path`.
    pub fn evaluate(&self, path: Path, class: &Class) -> Vec<Piece> {
        let mut out = Vec::new();
        for fam in [0u128, 1] {
            let Some(c) =
                class.intersect_cube(&Cube::new().with(Dim::Family.index(), Iv::point(fam)))
            else {
                continue;
            };
            // (piece, accepting rules so far)
            let mut live: Vec<(Class, Vec<RuleRef>)> = vec![(c, Vec::new())];
            for &hook in path.hooks() {
                for ci in self.base_chains(hook, fam == 0) {
                    let chain = &self.chains[ci];
                    let Some(base) = &chain.base else { continue };
                    let policy = RuleRef {
                        family: chain.family.clone(),
                        table: chain.table.clone(),
                        chain: chain.name.clone(),
                        handle: None,
                        line: None,
                        comment: None,
                        text: format!("policy {}", if base.accept { "accept" } else { "drop" }),
                    };
                    let mut next = Vec::new();
                    for (mut p, trail) in live {
                        // Before routing there is no output interface (`oifname` is "").
                        let oif = p.get(Dim::Oif);
                        if hook == Hook::Prerouting {
                            p.set(Dim::Oif, Iv::point(0));
                        }
                        // nat chains see only a connection's first packet.
                        let (seen, skipped) = if base.kind == "nat" {
                            split(
                                &p,
                                &[Cube::new()
                                    .with(Dim::Ct.index(), Iv::point(CtState::New.value()))],
                            )
                        } else {
                            (vec![p], Vec::new())
                        };
                        for mut s in skipped {
                            if hook == Hook::Prerouting {
                                s.set(Dim::Oif, oif);
                            }
                            next.push((s, trail.clone()));
                        }
                        for s in seen {
                            for mut r in self.run_chain(ci, s, 0) {
                                if hook == Hook::Prerouting {
                                    r.class.set(Dim::Oif, oif);
                                }
                                match r.end {
                                    End::Accept => {
                                        let mut t = trail.clone();
                                        t.extend(r.rule);
                                        next.push((r.class, t));
                                    }
                                    End::Return if base.accept => {
                                        let mut t = trail.clone();
                                        t.push(policy.clone());
                                        next.push((r.class, t));
                                    }
                                    End::Return => out.push(Piece {
                                        class: r.class,
                                        outcome: Outcome::Deny,
                                        rule: Some(policy.clone()),
                                    }),
                                    End::Deny => out.push(Piece {
                                        class: r.class,
                                        outcome: Outcome::Deny,
                                        rule: r.rule,
                                    }),
                                    End::Depends(why) => out.push(Piece {
                                        class: r.class,
                                        outcome: Outcome::Depends(why),
                                        rule: r.rule,
                                    }),
                                }
                            }
                        }
                    }
                    live = next;
                }
            }
            for (p, trail) in live {
                let rule = trail
                    .iter()
                    .rev()
                    .find(|r| r.handle.is_some() || r.line.is_some())
                    .or(trail.last())
                    .cloned();
                out.push(Piece {
                    class: p,
                    outcome: Outcome::Accept,
                    rule,
                });
            }
        }
        out
    }

    fn run_chain(&self, ci: usize, class: Class, depth: usize) -> Vec<Res> {
        let mut out = Vec::new();
        if depth > MAX_DEPTH {
            let c = &self.chains[ci];
            out.push(Res {
                class,
                end: End::Depends(format!(
                    "jumps nested deeper than {MAX_DEPTH} at chain {}",
                    c.name
                )),
                rule: None,
            });
            return out;
        }
        let mut pending = vec![class];
        for rule in &self.chains[ci].rules {
            let mut next = Vec::new();
            count_work(pending.len() as u64);
            for p in pending {
                if may_match(&rule.stmts, &p) {
                    self.run_stmts(&rule.stmts, &rule.at, p, depth, &mut next, &mut out);
                } else {
                    next.push(p);
                }
            }
            pending = next;
            if pending.is_empty() {
                break;
            }
        }
        out.extend(pending.into_iter().map(|class| Res {
            class,
            end: End::Return,
            rule: None,
        }));
        out
    }

    /// Runs the statements of one rule on a piece: what does not match goes to `next` (the
    /// next rule), what ends goes to `out`.
    fn run_stmts(
        &self,
        stmts: &[Stmt],
        at: &RuleRef,
        piece: Class,
        depth: usize,
        next: &mut Vec<Class>,
        out: &mut Vec<Res>,
    ) {
        let Some((first, rest)) = stmts.split_first() else {
            next.push(piece); // no verdict: the next rule
            return;
        };
        match first {
            Stmt::Test(t) => {
                // Fast path: a test whose values the class never takes (not negated, nothing
                // undecidable) leaves the whole class for the next rule.
                if !t.negate
                    && t.unknown.is_empty()
                    && (!piece.meets(&t.deps) || !t.region.meets(&piece))
                {
                    next.push(piece);
                    return;
                }
                let (matched, unmatched, unknown) = apply_test(t, &piece);
                next.extend(unmatched);
                for u in unknown {
                    out.push(Res { class: u, end: End::Depends(format!("{} in {}", "an interface name the ruleset does not list, or a transport header without ports", at.chain)), rule: Some(at.clone()) });
                }
                for m in matched {
                    self.run_stmts(rest, at, m, depth, next, out);
                }
            }
            Stmt::Vmap {
                deps,
                region,
                verdicts,
            } => {
                let (inside, outside) = split(&piece, std::slice::from_ref(deps));
                next.extend(outside);
                for p in inside {
                    // Skipping the elements whose verdicts cannot act on the piece is exact
                    // only while a jump returns what it does not match: not past the depth
                    // limit, where a jump's every packet "depends".
                    let skipped = if depth < MAX_DEPTH {
                        region.split_skipping(&p)
                    } else {
                        None
                    };
                    let (hit, miss) = skipped.unwrap_or_else(|| region.split_tagged(&p));
                    let mut on = miss;
                    for (h, arm) in hit {
                        self.verdict(verdicts[arm], at, h, depth, &mut on, out);
                    }
                    // What goes on is one set of packets whichever element split it: boxes
                    // that touch along the key are joined again, so a long map's splits do
                    // not multiply through the rest of the chain.
                    match region.axis() {
                        Some(a) if on.len() > 2 => next.extend(merge_axis(on, a)),
                        _ => next.extend(on),
                    }
                }
            }
            Stmt::Verdict(v) => self.verdict(*v, at, piece, depth, next, out),
            Stmt::Unknown(why) => out.push(Res {
                class: piece,
                end: End::Depends(why.clone()),
                rule: Some(at.clone()),
            }),
        }
    }

    fn verdict(
        &self,
        v: Verdict,
        at: &RuleRef,
        piece: Class,
        depth: usize,
        next: &mut Vec<Class>,
        out: &mut Vec<Res>,
    ) {
        match v {
            Verdict::Accept => out.push(Res {
                class: piece,
                end: End::Accept,
                rule: Some(at.clone()),
            }),
            Verdict::Drop | Verdict::Reject => out.push(Res {
                class: piece,
                end: End::Deny,
                rule: Some(at.clone()),
            }),
            Verdict::Return => out.push(Res {
                class: piece,
                end: End::Return,
                rule: None,
            }),
            Verdict::Continue => next.push(piece),
            Verdict::Jump(c) => {
                for r in self.run_chain(c, piece, depth + 1) {
                    match r.end {
                        End::Return => next.push(r.class),
                        _ => out.push(r),
                    }
                }
            }
            Verdict::Goto(c) => out.extend(self.run_chain(c, piece, depth + 1)),
        }
    }
}

/// (matched, unmatched, undecidable) parts of `piece` for one test.
fn apply_test(t: &Test, piece: &Class) -> (Vec<Class>, Vec<Class>, Vec<Class>) {
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    let mut unknown = Vec::new();
    let (in_deps, out_deps) = split(piece, std::slice::from_ref(&t.deps));
    unmatched.extend(out_deps);
    for p in in_deps {
        let (unk, known) = split(&p, &t.unknown);
        unknown.extend(unk);
        for k in known {
            let (inr, outr) = t.region.split(&k);
            if t.negate {
                matched.extend(outr);
                unmatched.extend(inr);
            } else {
                matched.extend(inr);
                unmatched.extend(outr);
            }
        }
    }
    (matched, unmatched, unknown)
}
