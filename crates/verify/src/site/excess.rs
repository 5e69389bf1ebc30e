//! The excess half of a site check: for each group, the widest classes the ruleset accepts
//! for new connections from and to its addresses, minus what its rules allow, under the
//! assumption that DNS-filled sets hold addresses outside the site's zones only; the boxes
//! left are merged where they touch and reported with the rule that admits each.

use portolan_model::ir::Initiator;

use super::{any_addr, describe, fam_iv, v4_of, Ctx, Excess, Peer};
use crate::eval::Outcome;
use crate::eval::Piece;
use crate::lower::net_iv;
use crate::program::{Path, Program, RuleRef};
use crate::space::{Class, CtState, Dim, Iv, FIXED};

impl Ctx<'_> {
    /// What the group's rules allow, as boxes without interfaces or conntrack state.
    pub(super) fn allowed(&self, group: &str) -> Vec<(Path, Class)> {
        let mut out = Vec::new();
        for r in self.rules_of(group) {
            let Some(g) = self.group(group) else {
                continue;
            };
            for dev in &g.addresses {
                if !r.admits_family(&dev.addr()) {
                    continue;
                }
                for peer in self.peers(r, v4_of(dev)) {
                    for (path, mut c, _) in self.classes(r, dev, &peer, false) {
                        if let Peer::Name { .. } = peer {
                            // Allowed: whatever the name's sets hold, wherever it is.
                            let key = if r.initiator == Initiator::Device {
                                Dim::Daddr
                            } else {
                                Dim::Saddr
                            };
                            c.set(key, any_addr(v4_of(dev)));
                            if (FIXED..c.iv.len()).all(|i| c.iv[i] != Iv::point(1)) {
                                continue; // no set carries the name: nothing is allowed by it
                            }
                        }
                        out.push((path, c));
                    }
                }
            }
        }
        out
    }

    /// The accepted pieces of every new packet of one family on `path` whose device-side
    /// interface (`Iif` for a packet from the device, `Oif` for one to it; `dim` is the
    /// device's address axis) is `side`, evaluated once per verify and shared: a group's
    /// "from" and "to its addresses" are these pieces cut to its addresses (the evaluation
    /// is exact for every packet, so cutting a piece gives what a query of the cut class
    /// would). Asking per group instead walks every other group's dispatch and chains once
    /// per group: devices x groups.
    fn shared(&self, path: Path, dim: Dim, v4: bool, side: Iv) -> std::rc::Rc<Shared> {
        let key = (path, dim, v4, side);
        if let Some((_, v)) = self.shared.borrow().iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        let mut c = family_class(self.prog, v4);
        c.set(Dim::Ct, Iv::point(CtState::New.value()));
        c.set(
            if dim == Dim::Saddr {
                Dim::Iif
            } else {
                Dim::Oif
            },
            side,
        );
        // Each accepted piece cut on the device axis at the ends of the zones' networks,
        // and the parts inside them pinned as a device's address is ([`Self::
        // pin_inside_zones`]): a piece accepted only because an address in the zones is in a
        // DNS-filled set (one device's rule to a name, for any destination) would be found
        // by every group's cut and then dropped, devices x devices times.
        let ends = self.zone_ends(v4);
        let accepted = self
            .prog
            .evaluate(path, &c)
            .into_iter()
            .filter(|p| p.outcome == Outcome::Accept)
            .flat_map(|p| {
                let iv = p.class.get(dim);
                let mut parts = Vec::new();
                let mut lo = iv.lo;
                for &e in ends.iter().filter(|&&e| iv.lo < e && e <= iv.hi) {
                    parts.push(Iv::new(lo, e - 1));
                    lo = e;
                }
                parts.push(Iv::new(lo, iv.hi));
                parts
                    .into_iter()
                    .filter_map(|part| {
                        let mut c = p.class.clone();
                        c.set(dim, part);
                        let c = self.pinned_inside_zones(c)?;
                        Some(Piece {
                            class: c,
                            outcome: Outcome::Accept,
                            rule: p.rule.clone(),
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let v = std::rc::Rc::new(Shared::new(accepted, dim));
        self.shared.borrow_mut().push((key, v.clone()));
        v
    }

    /// Where the zones' networks of one family start and end (the first address after),
    /// sorted: between two of these, every network holds all addresses or none.
    fn zone_ends(&self, v4: bool) -> Vec<u128> {
        let mut ends: Vec<u128> = self
            .policy
            .zones
            .iter()
            .flat_map(|z| &z.networks)
            .filter(|n| v4_of(n) == v4)
            .flat_map(|n| {
                let iv = net_iv(n);
                [Some(iv.lo), iv.hi.checked_add(1)]
            })
            .flatten()
            .collect();
        ends.sort_unstable();
        ends.dedup();
        ends
    }

    /// [`Self::pin_inside_zones`] applied after the evaluation: the part of `c` where every
    /// run-time set lookup of an address inside the site's zones misses, if any.
    fn pinned_inside_zones(&self, mut c: Class) -> Option<Class> {
        let mut pinned = c.clone();
        self.pin_inside_zones(&mut pinned);
        for i in FIXED..c.iv.len() {
            if pinned.iv[i] != c.iv[i] {
                c.iv[i] = c.iv[i].intersect(pinned.iv[i])?;
            }
        }
        Some(c)
    }

    /// Under the same assumption as [`Self::outside_for_names`]: a lookup of an address the
    /// class keeps inside the site's zones in a run-time set is a miss.
    pub(super) fn pin_inside_zones(&self, c: &mut Class) {
        let v4 = c.is_ipv4();
        for i in FIXED..c.iv.len() {
            let key = &self.prog.dynamic[i - FIXED].key;
            let dim = if key.ends_with("daddr") {
                Dim::Daddr
            } else if key.ends_with("saddr") {
                Dim::Saddr
            } else {
                continue;
            };
            let a = c.get(dim);
            let inside = self
                .policy
                .zones
                .iter()
                .flat_map(|z| &z.networks)
                .filter(|n| v4_of(n) == v4)
                .any(|n| net_iv(n).contains(a));
            if inside {
                c.iv[i] = Iv::point(0);
            }
        }
    }

    /// The parts of `x` consistent with the assumption that run-time (DNS-filled) sets hold
    /// addresses outside the site's zones only: where `x` is accepted because an address
    /// is in such a set, that address is not one of the site's.
    pub(super) fn outside_for_names(&self, x: Class) -> Vec<Class> {
        let v4 = x.is_ipv4();
        let pinned: Vec<usize> = (FIXED..x.iv.len())
            .filter(|&i| x.iv[i] == Iv::point(1))
            .collect();
        let mut out = vec![x];
        for i in pinned {
            let key = &self.prog.dynamic[i - FIXED].key;
            let dim = if key.ends_with("daddr") {
                Dim::Daddr
            } else if key.ends_with("saddr") {
                Dim::Saddr
            } else {
                continue;
            };
            let allowed = self.outside_zones(v4);
            out = out
                .into_iter()
                .flat_map(|c| {
                    allowed.iter().filter_map(move |iv| {
                        let mut c = c.clone();
                        let v = c.get(dim).intersect(*iv)?;
                        c.set(dim, v);
                        Some(c)
                    })
                })
                .collect();
        }
        out
    }

    /// The part of `c` the DNS can produce: where one DNS-filled set holds only addresses of
    /// another ([`DnsFills::subsets`]) and both are looked up for the same address, a hit in
    /// the first with a miss in the second cannot happen. `None` when nothing is left.
    pub(super) fn consistent_fills(&self, mut c: Class) -> Option<Class> {
        let axes: Vec<(usize, &crate::program::DynamicKey)> = self
            .prog
            .dynamic
            .iter()
            .enumerate()
            .map(|(i, k)| (i + FIXED, k))
            .collect();
        for (a, b) in self.subsets.iter() {
            for (i, ka) in axes.iter().filter(|(_, k)| k.table == a.0 && k.set == a.1) {
                for (j, _) in axes
                    .iter()
                    .filter(|(_, k)| k.table == b.0 && k.set == b.1 && k.key == ka.key)
                {
                    if c.iv[*j] == Iv::point(0) {
                        // A miss in the wider set: a miss in the narrower one too.
                        c.iv[*i] = c.iv[*i].intersect(Iv::point(0))?;
                    }
                }
            }
        }
        Some(c)
    }

    pub(super) fn excess(&self, group: &str) -> Vec<Excess> {
        let Some(g) = self.group(group) else {
            return Vec::new();
        };
        let allowed = self.allowed(group);
        let mut found: Vec<(Path, Class, Option<RuleRef>)> = Vec::new();
        for dev in &g.addresses {
            let v4 = v4_of(dev);
            let mut base = family_class(self.prog, v4);
            base.set(Dim::Ct, Iv::point(CtState::New.value()));
            // The device's side of the firewall: its zone's interface where the site names
            // one (routing sends its address there; forged sources on other interfaces are
            // the lab's adversarial probes' concern), else any but the loopback.
            let side: Vec<Iv> = match self.zone_iface(&g.zone) {
                Some(i) => vec![self.prog.iface(i)],
                None => match self.prog.ifaces.lookup("lo") {
                    Some(lo) => self.prog.ifaces.full().minus(Iv::point(lo)),
                    None => vec![self.prog.ifaces.full()],
                },
            };
            // From and to the device: the accepted pieces of one evaluation of "from any
            // address" and "to any address" (shared by every group) cut to its address, as a
            // query of its own would give them.
            let mut pieces: Vec<(Path, Piece)> = Vec::new();
            for iv in &side {
                for (path, dim) in [
                    (Path::Forward, Dim::Saddr),
                    (Path::Input, Dim::Saddr),
                    (Path::Forward, Dim::Daddr),
                ] {
                    let shared = self.shared(path, dim, v4, *iv);
                    for p in shared.cut(net_iv(dev)) {
                        let Some(d) = p.class.get(dim).intersect(net_iv(dev)) else {
                            continue;
                        };
                        let mut c = p.class.clone();
                        c.set(dim, d);
                        if let Some(c) = self.pinned_inside_zones(c) {
                            pieces.push((
                                path,
                                Piece {
                                    class: c,
                                    outcome: Outcome::Accept,
                                    rule: p.rule.clone(),
                                },
                            ));
                        }
                    }
                }
            }
            {
                for (path, p) in pieces {
                    if p.outcome != Outcome::Accept {
                        continue;
                    }
                    let mut rest = vec![p.class.clone()];
                    for (_, a) in allowed.iter().filter(|(ap, _)| *ap == path) {
                        rest = rest
                            .into_iter()
                            .flat_map(|x| subtract_ignoring_ifaces(&x, a))
                            .collect();
                        if rest.is_empty() {
                            break;
                        }
                    }
                    let rest = rest
                        .into_iter()
                        .flat_map(|x| self.outside_for_names(x))
                        .filter_map(|x| self.consistent_fills(x));
                    found.extend(rest.map(|x| (path, x, p.rule.clone())));
                }
            }
        }
        let found = coalesce(found);

        found
            .into_iter()
            .map(|(path, c, rule)| Excess {
                group: group.to_string(),
                conditional: (FIXED..c.iv.len()).any(|i| c.iv[i] == Iv::point(1)),
                class: describe(self.prog, &c, None),
                path,
                rule,
            })
            .collect()
    }
}

/// Every packet of one family.
pub(super) fn family_class(prog: &Program, v4: bool) -> Class {
    let mut c = prog.all();
    c.set(Dim::Family, fam_iv(v4));
    c.set(Dim::Saddr, any_addr(v4));
    c.set(Dim::Daddr, any_addr(v4));
    c
}

/// `x` minus `a`, where `a` says nothing of interfaces or conntrack state.
fn subtract_ignoring_ifaces(x: &Class, a: &Class) -> Vec<Class> {
    let mut a = a.clone();
    for d in [Dim::Iif, Dim::Oif, Dim::Ct] {
        a.set(d, x.get(d));
    }
    a.widen(x.iv.len() - FIXED);
    x.minus(&a)
}

/// Merges boxes of one path and rule that differ on one axis with touching intervals.
fn coalesce(mut v: Vec<(Path, Class, Option<RuleRef>)>) -> Vec<(Path, Class, Option<RuleRef>)> {
    if v.len() > 4000 {
        return v;
    }
    loop {
        let mut merged = false;
        'outer: for i in 0..v.len() {
            for j in i + 1..v.len() {
                if v[i].0 != v[j].0 || v[i].2 != v[j].2 {
                    continue;
                }
                let a = &v[i].1;
                let b = &v[j].1;
                let diff: Vec<usize> = (0..a.iv.len()).filter(|&k| a.iv[k] != b.iv[k]).collect();
                if diff.len() == 1 {
                    let k = diff[0];
                    let (x, y) = (a.iv[k], b.iv[k]);
                    if x.hi.checked_add(1).is_some_and(|n| n >= y.lo)
                        && y.hi.checked_add(1).is_some_and(|n| n >= x.lo)
                        || x.intersect(y).is_some()
                    {
                        let m = Iv::new(x.lo.min(y.lo), x.hi.max(y.hi));
                        v[i].1.iv[k] = m;
                        v.swap_remove(j);
                        merged = true;
                        break 'outer;
                    }
                }
            }
        }
        if !merged {
            return v;
        }
    }
}

/// Accepted pieces indexed on one address axis: the narrow ones sorted by where they start
/// (found by binary search), the wide ones (more than 2^16 addresses) tried every time.
pub(super) struct Shared {
    dim: Dim,
    narrow: Vec<Piece>,
    /// The widest narrow piece's width, less one.
    span: u128,
    wide: Vec<Piece>,
}

impl Shared {
    fn new(pieces: Vec<Piece>, dim: Dim) -> Shared {
        let (mut narrow, wide): (Vec<Piece>, Vec<Piece>) = pieces.into_iter().partition(|p| {
            let iv = p.class.get(dim);
            iv.hi - iv.lo < 1 << 16
        });
        narrow.sort_by_key(|p| p.class.get(dim).lo);
        let span = narrow
            .iter()
            .map(|p| p.class.get(dim).hi - p.class.get(dim).lo)
            .max()
            .unwrap_or(0);
        Shared {
            dim,
            narrow,
            span,
            wide,
        }
    }

    /// The pieces that may meet `iv` on the axis (a superset; the caller intersects).
    fn cut(&self, iv: Iv) -> impl Iterator<Item = &Piece> {
        let from = self
            .narrow
            .partition_point(|p| p.class.get(self.dim).lo < iv.lo.saturating_sub(self.span));
        let to = self
            .narrow
            .partition_point(|p| p.class.get(self.dim).lo <= iv.hi);
        self.narrow[from..to.max(from)].iter().chain(&self.wide)
    }
}
