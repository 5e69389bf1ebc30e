//! The packet space the evaluator works in, and its boxes.
//!
//! A packet is a point with one coordinate per [`Dim`]: layer-3 family, source and destination
//! address (an IPv4 address is a number below 2^32 in the same `u128` axis), layer-4
//! protocol, source and destination port, ICMP type, conntrack state, input and output
//! interface (interned, [`Interfaces`]), and one 0/1 axis per *dynamic* set lookup ("the key
//! is in this set whose elements change at run time": a DNS-filled set). A [`Class`] is a box:
//! one inclusive interval per axis. Matching a box against an expression splits it into
//! disjoint boxes that match and boxes that do not, so a verdict is always exact for every
//! packet of each piece.
//!
//! Axes that do not apply to a packet (ports of an ICMP packet) keep their full interval;
//! every expression that reads them also constrains the protocol, so such a value is never
//! read.

use std::fmt;

pub use crate::hull::{Hull, Skip};

/// One axis of the packet space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    /// 0 = IPv4, 1 = IPv6.
    Family,
    Saddr,
    Daddr,
    /// IANA protocol number of the transport header (`meta l4proto`).
    Proto,
    Sport,
    Dport,
    IcmpType,
    /// [`CtState`] as a number.
    Ct,
    Iif,
    Oif,
}

/// The fixed axes, in index order; dynamic-set axes follow from [`FIXED`] on.
pub const DIMS: [Dim; 10] = [
    Dim::Family,
    Dim::Saddr,
    Dim::Daddr,
    Dim::Proto,
    Dim::Sport,
    Dim::Dport,
    Dim::IcmpType,
    Dim::Ct,
    Dim::Iif,
    Dim::Oif,
];
pub const FIXED: usize = DIMS.len();

impl Dim {
    pub fn index(self) -> usize {
        self as usize
    }

    /// The largest value on this axis (an address axis is as wide as IPv6).
    pub fn top(self) -> u128 {
        match self {
            Dim::Family => 1,
            Dim::Saddr | Dim::Daddr => u128::MAX,
            Dim::Proto | Dim::IcmpType => 255,
            Dim::Sport | Dim::Dport => 65535,
            Dim::Ct => CtState::ALL.len() as u128 - 1,
            Dim::Iif | Dim::Oif => u128::from(u32::MAX),
        }
    }
}

/// Conntrack states as nftables names them (`ct state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
}

impl CtState {
    pub const ALL: [CtState; 5] = [
        CtState::New,
        CtState::Established,
        CtState::Related,
        CtState::Invalid,
        CtState::Untracked,
    ];

    pub fn from_name(s: &str) -> Option<CtState> {
        Some(match s {
            "new" => CtState::New,
            "established" => CtState::Established,
            "related" => CtState::Related,
            "invalid" => CtState::Invalid,
            "untracked" => CtState::Untracked,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CtState::New => "new",
            CtState::Established => "established",
            CtState::Related => "related",
            CtState::Invalid => "invalid",
            CtState::Untracked => "untracked",
        }
    }

    pub fn value(self) -> u128 {
        self as u128
    }
}

/// An inclusive interval on one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iv {
    pub lo: u128,
    pub hi: u128,
}

impl Iv {
    pub fn new(lo: u128, hi: u128) -> Iv {
        Iv { lo, hi }
    }

    pub fn point(v: u128) -> Iv {
        Iv { lo: v, hi: v }
    }

    pub fn intersect(self, o: Iv) -> Option<Iv> {
        let lo = self.lo.max(o.lo);
        let hi = self.hi.min(o.hi);
        (lo <= hi).then_some(Iv { lo, hi })
    }

    pub fn contains(self, o: Iv) -> bool {
        self.lo <= o.lo && o.hi <= self.hi
    }

    /// The parts of `self` outside `o` (zero, one or two intervals).
    pub fn minus(self, o: Iv) -> Vec<Iv> {
        let Some(i) = self.intersect(o) else {
            return vec![self];
        };
        let mut out = Vec::new();
        if self.lo < i.lo {
            out.push(Iv::new(self.lo, i.lo - 1));
        }
        if i.hi < self.hi {
            out.push(Iv::new(i.hi + 1, self.hi));
        }
        out
    }
}

/// A box of the packet space: one interval per axis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Class {
    pub iv: Vec<Iv>,
}

/// A partial box: constraints on some axes, the others free. An expression lowers to a union
/// of these.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Cube {
    pub parts: Vec<(usize, Iv)>,
}

impl Cube {
    pub fn new() -> Cube {
        Cube::default()
    }

    pub fn with(mut self, axis: usize, iv: Iv) -> Cube {
        self.and(axis, iv);
        self
    }

    /// Adds a constraint; two constraints on one axis keep their intersection (an empty one
    /// makes the cube empty, see [`Cube::is_empty`]).
    pub fn and(&mut self, axis: usize, iv: Iv) {
        if let Some(p) = self.parts.iter_mut().find(|(a, _)| *a == axis) {
            p.1 = match p.1.intersect(iv) {
                Some(x) => x,
                // An empty interval, written lo > hi.
                None => Iv { lo: 1, hi: 0 },
            };
        } else {
            self.parts.push((axis, iv));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.iter().any(|(_, iv)| iv.lo > iv.hi)
    }

    /// The conjunction of two cubes.
    pub fn meet(&self, o: &Cube) -> Cube {
        let mut c = self.clone();
        for (a, iv) in &o.parts {
            c.and(*a, *iv);
        }
        c
    }
}

impl Class {
    /// Every packet: all axes full, `dynamic` dynamic-set axes of 0/1.
    pub fn all(dynamic: usize) -> Class {
        let mut iv: Vec<Iv> = DIMS.iter().map(|d| Iv::new(0, d.top())).collect();
        iv.extend(std::iter::repeat_n(Iv::new(0, 1), dynamic));
        Class { iv }
    }

    pub fn get(&self, d: Dim) -> Iv {
        self.iv[d.index()]
    }

    pub fn set(&mut self, d: Dim, v: Iv) {
        self.iv[d.index()] = v;
    }

    /// Grows the dynamic axes to `n` (new ones full: membership unknown).
    pub fn widen(&mut self, n: usize) {
        while self.iv.len() < FIXED + n {
            self.iv.push(Iv::new(0, 1));
        }
    }

    /// Whether the cube holds some packet of the class.
    pub fn meets(&self, c: &Cube) -> bool {
        c.parts
            .iter()
            .all(|(a, iv)| self.iv[*a].intersect(*iv).is_some())
    }

    pub fn intersect_cube(&self, c: &Cube) -> Option<Class> {
        let mut out = self.clone();
        for (a, iv) in &c.parts {
            out.iv[*a] = out.iv[*a].intersect(*iv)?;
        }
        Some(out)
    }

    pub fn intersect(&self, o: &Class) -> Option<Class> {
        let mut out = self.clone();
        for (a, iv) in o.iv.iter().enumerate() {
            out.iv[a] = out.iv[a].intersect(*iv)?;
        }
        Some(out)
    }

    /// `self` minus a cube, as disjoint boxes: for each constrained axis in turn, the part
    /// outside it, then narrow to the inside and go on.
    pub fn minus_cube(&self, c: &Cube) -> Vec<Class> {
        if self.intersect_cube(c).is_none() {
            return vec![self.clone()];
        }
        let mut out = Vec::new();
        let mut rest = self.clone();
        for (a, iv) in &c.parts {
            for outside in rest.iv[*a].minus(*iv) {
                let mut p = rest.clone();
                p.iv[*a] = outside;
                out.push(p);
            }
            rest.iv[*a] = rest.iv[*a].intersect(*iv).unwrap_or(rest.iv[*a]);
        }
        out
    }

    pub fn minus(&self, o: &Class) -> Vec<Class> {
        let cube = Cube {
            parts: o.iv.iter().copied().enumerate().collect(),
        };
        self.minus_cube(&cube)
    }

    pub fn is_ipv4(&self) -> bool {
        self.get(Dim::Family) == Iv::point(0)
    }
}

/// Splits `class` by a union of cubes into (inside, outside), both lists of disjoint boxes.
pub fn split(class: &Class, cubes: &[Cube]) -> (Vec<Class>, Vec<Class>) {
    let mut inside = Vec::new();
    let mut rest = vec![class.clone()];
    for c in cubes {
        if c.is_empty() {
            continue;
        }
        let mut next = Vec::new();
        for p in rest {
            match p.intersect_cube(c) {
                Some(i) => {
                    inside.push(i);
                    next.extend(p.minus_cube(c));
                }
                None => next.push(p),
            }
        }
        rest = next;
        if rest.is_empty() {
            break;
        }
    }
    (inside, rest)
}

/// Joins boxes that differ on axis `a` only, where their intervals touch: the same packets
/// in fewer boxes. One sort by that axis; the other axes are compared with the few runs still
/// open.
pub fn merge_axis(mut v: Vec<Class>, a: usize) -> Vec<Class> {
    if v.len() < 2 {
        return v;
    }
    v.sort_by(|x, y| x.iv[a].cmp(&y.iv[a]));
    let mut out: Vec<Class> = Vec::with_capacity(v.len());
    // Open runs: the last box of each distinct rest-of-axes seen so far, by position in out.
    let mut open: Vec<usize> = Vec::new();
    for c in v {
        let hit = open.iter().copied().find(|&i| {
            let last = &out[i];
            last.iv[a].hi.checked_add(1) == Some(c.iv[a].lo)
                && (0..c.iv.len()).all(|k| k == a || last.iv[k] == c.iv[k])
        });
        match hit {
            Some(i) => out[i].iv[a].hi = c.iv[a].hi,
            None => {
                open.push(out.len());
                out.push(c);
                if open.len() > 16 {
                    open.remove(0);
                }
            }
        }
    }
    out
}

/// A class split by a region: the parts inside with the tag of the cube holding each, and
/// the parts outside.
pub type Split = (Vec<(Class, usize)>, Vec<Class>);

/// A union of cubes, each tagged (a verdict map's arm; 0 for a set), matched in order: a
/// packet belongs to the first cube that holds it. When every cube constrains the same one
/// axis and none overlap (an interval set, a verdict map keyed by one field: nft refuses
/// overlapping elements), the cubes are also kept sorted so that a class finds the few it
/// meets by binary search instead of trying them all.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Region {
    cubes: Vec<(Cube, usize)>,
    /// (axis, (interval, index into `cubes`) sorted by interval)
    index: Option<(usize, Vec<(Iv, usize)>)>,
    /// For a sorted verdict map: where each element's verdict can change a packet's fate
    /// ([`Skip`]), set by [`crate::program::Program::prepared`].
    skip: Option<Skip>,
}

impl Region {
    pub fn new(cubes: Vec<(Cube, usize)>) -> Region {
        let cubes: Vec<(Cube, usize)> = cubes.into_iter().filter(|(c, _)| !c.is_empty()).collect();
        let mut index = None;
        if cubes.len() >= 8 {
            if let Some(axis) = cubes[0].0.parts.first().map(|p| p.0) {
                if cubes
                    .iter()
                    .all(|(c, _)| c.parts.len() == 1 && c.parts[0].0 == axis)
                {
                    let mut sorted: Vec<(Iv, usize)> = cubes
                        .iter()
                        .enumerate()
                        .map(|(i, (c, _))| (c.parts[0].1, i))
                        .collect();
                    sorted.sort();
                    if sorted.windows(2).all(|w| w[0].0.hi < w[1].0.lo) {
                        index = Some((axis, sorted));
                    }
                }
            }
        }
        Region {
            cubes,
            index,
            skip: None,
        }
    }

    /// The (interval, tag) of a sorted region's elements in key order.
    pub fn sorted(&self) -> Option<impl Iterator<Item = (Iv, usize)> + '_> {
        let (_, sorted) = self.index.as_ref()?;
        Some(sorted.iter().map(|(iv, k)| (*iv, self.cubes[*k].1)))
    }

    /// Attaches the hulls of a sorted region's elements (in the order of [`Self::sorted`]).
    pub fn set_skip(&mut self, leaves: Vec<Hull>) {
        if self
            .index
            .as_ref()
            .is_some_and(|(_, s)| s.len() == leaves.len())
        {
            self.skip = Some(Skip::new(leaves));
        }
    }

    /// [`Self::split_tagged`] for a region with a [`Skip`] tree: only the elements whose
    /// hull meets `class` come out as hits; the others join the misses, where they touch,
    /// into the fewest boxes. `None` when the region has no tree.
    ///
    /// Exact when every element left out passes its packets on unchanged (its hull says it
    /// cannot match them), which is what the tree's builder promises. Cost: the elements
    /// that meet `class`, times the tree's depth, instead of every element on the key's
    /// interval.
    pub fn split_skipping(&self, class: &Class) -> Option<Split> {
        let (axis, sorted) = self.index.as_ref()?;
        let skip = self.skip.as_ref()?;
        let iv = class.iv[*axis];
        let start = sorted.partition_point(|(x, _)| x.hi < iv.lo);
        let end = sorted.partition_point(|(x, _)| x.lo <= iv.hi);
        let mut active = Vec::new();
        if start < end {
            skip.collect(1, 0, skip.size, (start, end), class, &mut active);
        }
        crate::eval::count_work(active.len() as u64);
        let mut inside = Vec::new();
        let mut outside = Vec::new();
        let mut cur = Some(iv.lo);
        for j in active {
            let (x, k) = sorted[j];
            let Some(i) = x.intersect(iv) else { continue };
            if let Some(c) = cur {
                if c < i.lo {
                    let mut o = class.clone();
                    o.iv[*axis] = Iv::new(c, i.lo - 1);
                    outside.push(o);
                }
            }
            let mut m = class.clone();
            m.iv[*axis] = i;
            inside.push((m, self.cubes[k].1));
            cur = i.hi.checked_add(1);
        }
        if let Some(c) = cur {
            if c <= iv.hi {
                let mut o = class.clone();
                o.iv[*axis] = Iv::new(c, iv.hi);
                outside.push(o);
            }
        }
        Some((inside, outside))
    }

    /// Untagged cubes (a set's elements).
    pub fn plain(cubes: Vec<Cube>) -> Region {
        Region::new(cubes.into_iter().map(|c| (c, 0)).collect())
    }

    pub fn cubes(&self) -> impl Iterator<Item = &Cube> {
        self.cubes.iter().map(|(c, _)| c)
    }

    pub fn is_empty(&self) -> bool {
        self.cubes.is_empty()
    }

    /// Splits `class` into the parts inside (with the tag of the cube holding them) and the
    /// parts outside, all disjoint.
    pub fn split_tagged(&self, class: &Class) -> (Vec<(Class, usize)>, Vec<Class>) {
        let Some((axis, sorted)) = &self.index else {
            let mut inside = Vec::new();
            let mut rest = vec![class.clone()];
            for (c, tag) in &self.cubes {
                let mut next = Vec::new();
                for p in rest {
                    match p.intersect_cube(c) {
                        Some(i) => {
                            inside.push((i, *tag));
                            next.extend(p.minus_cube(c));
                        }
                        None => next.push(p),
                    }
                }
                rest = next;
                if rest.is_empty() {
                    break;
                }
            }
            return (inside, rest);
        };
        let iv = class.iv[*axis];
        let start = sorted.partition_point(|(x, _)| x.hi < iv.lo);
        let mut inside = Vec::new();
        let mut outside = Vec::new();
        let mut cur = Some(iv.lo);
        for (x, k) in sorted[start..].iter().take_while(|(x, _)| x.lo <= iv.hi) {
            let Some(i) = x.intersect(iv) else { continue };
            if let Some(c) = cur {
                if c < i.lo {
                    let mut o = class.clone();
                    o.iv[*axis] = Iv::new(c, i.lo - 1);
                    outside.push(o);
                }
            }
            let mut m = class.clone();
            m.iv[*axis] = i;
            inside.push((m, self.cubes[*k].1));
            cur = i.hi.checked_add(1);
        }
        if let Some(c) = cur {
            if c <= iv.hi {
                let mut o = class.clone();
                o.iv[*axis] = Iv::new(c, iv.hi);
                outside.push(o);
            }
        }
        (inside, outside)
    }

    /// Whether some cube of the region meets `class` (no allocation: the evaluator's fast
    /// path for the many rules a class does not touch).
    pub fn meets(&self, class: &Class) -> bool {
        match &self.index {
            Some((axis, sorted)) => {
                let iv = class.iv[*axis];
                let start = sorted.partition_point(|(x, _)| x.hi < iv.lo);
                sorted.get(start).is_some_and(|(x, _)| x.lo <= iv.hi)
            }
            None => self.cubes.iter().any(|(c, _)| class.meets(c)),
        }
    }

    /// The one axis of a sorted region.
    pub fn axis(&self) -> Option<usize> {
        self.index.as_ref().map(|(a, _)| *a)
    }

    pub fn split(&self, class: &Class) -> (Vec<Class>, Vec<Class>) {
        let (i, o) = self.split_tagged(class);
        (i.into_iter().map(|x| x.0).collect(), o)
    }
}

/// Interface names interned to numbers on the `Iif`/`Oif` axes: 0 is "no interface" (`""`:
/// the input interface of a locally sent packet, the output interface of one delivered
/// locally), then every name the ruleset or the query mentions, then one value standing for
/// every other name.
#[derive(Clone, Debug, Default)]
pub struct Interfaces {
    names: Vec<String>,
}

impl Interfaces {
    pub fn new() -> Interfaces {
        Interfaces {
            names: vec![String::new()],
        }
    }

    pub fn intern(&mut self, name: &str) -> u128 {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return i as u128;
        }
        self.names.push(name.to_string());
        (self.names.len() - 1) as u128
    }

    pub fn lookup(&self, name: &str) -> Option<u128> {
        self.names.iter().position(|n| n == name).map(|i| i as u128)
    }

    /// The value standing for every name not interned (valid once interning is over).
    pub fn other(&self) -> u128 {
        self.names.len() as u128
    }

    /// The full range of the axis: every interned value and "other".
    pub fn full(&self) -> Iv {
        Iv::new(0, self.other())
    }

    pub fn name(&self, v: u128) -> Option<&str> {
        self.names.get(v as usize).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl fmt::Display for Iv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_minus_leaves_the_outer_parts() {
        assert_eq!(
            Iv::new(0, 10).minus(Iv::new(3, 4)),
            vec![Iv::new(0, 2), Iv::new(5, 10)]
        );
        assert_eq!(Iv::new(0, 10).minus(Iv::new(0, 10)), vec![]);
        assert_eq!(Iv::new(5, 10).minus(Iv::new(0, 2)), vec![Iv::new(5, 10)]);
        assert_eq!(Iv::new(5, 10).minus(Iv::new(0, 7)), vec![Iv::new(8, 10)]);
    }

    #[test]
    fn the_sorted_index_splits_as_the_plain_loop_does() {
        let cubes: Vec<Cube> = (0..20u128)
            .map(|i| Cube::new().with(Dim::Dport.index(), Iv::new(i * 10, i * 10 + 4)))
            .collect();
        let indexed = Region::plain(cubes.clone());
        assert!(indexed.index.is_some());
        let mut q = Class::all(0);
        q.set(Dim::Dport, Iv::new(33, 152));
        let (i1, o1) = indexed.split(&q);
        let (mut i2, mut o2) = split(&q, &cubes);
        let (mut i1, mut o1) = (i1, o1);
        for v in [&mut i1, &mut o1, &mut i2, &mut o2] {
            v.sort();
        }
        assert_eq!(i1, i2);
        assert_eq!(o1, o2);
        // 33-34 (of 30-34), then 40-44, 50-54, ..., 140-144, and 150-152 (of 150-154):
        // elements 3 to 15, 13 pieces inside.
        assert_eq!(i1.len(), 13);
    }

    #[test]
    fn the_skip_tree_leaves_out_the_elements_whose_hull_misses_the_class() {
        // Elements 10i..10i+4 (i < 20) on the destination axis; the even ones act on any
        // packet, the odd ones on none (a jump to a chain that cannot match).
        let cubes: Vec<Cube> = (0..20u128)
            .map(|i| Cube::new().with(Dim::Daddr.index(), Iv::new(i * 10, i * 10 + 4)))
            .collect();
        let mut r = Region::plain(cubes);
        r.set_skip(
            (0..20)
                .map(|i| if i % 2 == 0 { Hull::Full } else { Hull::Empty })
                .collect(),
        );
        let mut q = Class::all(0);
        q.set(Dim::Daddr, Iv::new(33, 152));
        let (inside, outside) = r.split_skipping(&q).expect("a tree");
        // Elements 3 to 15 meet 33-152; the even ones are 40, 60, ..., 140: six hits.
        let hits: Vec<Iv> = inside.iter().map(|(c, _)| c.get(Dim::Daddr)).collect();
        let want: Vec<Iv> = (2..8u128).map(|i| Iv::new(i * 20, i * 20 + 4)).collect();
        assert_eq!(hits, want);
        // Everything else of 33-152 goes on as the gaps between those: 33-39, 45-59, ...,
        // 125-139, 145-152.
        let rest: Vec<Iv> = outside.iter().map(|c| c.get(Dim::Daddr)).collect();
        let mut want = vec![Iv::new(33, 39)];
        want.extend((2..7u128).map(|i| Iv::new(i * 20 + 5, i * 20 + 19)));
        want.push(Iv::new(145, 152));
        assert_eq!(rest, want);
        // Only the daddr axis was cut.
        for c in outside.iter().chain(inside.iter().map(|(c, _)| c)) {
            let mut c = c.clone();
            c.set(Dim::Daddr, q.get(Dim::Daddr));
            assert_eq!(c, q);
        }
    }

    #[test]
    fn merge_axis_joins_touching_boxes_and_keeps_the_rest() {
        let mut a = Class::all(0);
        a.set(Dim::Dport, Iv::new(0, 9));
        let mut b = a.clone();
        b.set(Dim::Dport, Iv::new(10, 19));
        let mut c = a.clone();
        c.set(Dim::Dport, Iv::new(30, 39));
        let mut d = a.clone();
        d.set(Dim::Proto, Iv::point(6));
        d.set(Dim::Dport, Iv::new(20, 29));
        let mut got = merge_axis(vec![c.clone(), b, a.clone(), d.clone()], Dim::Dport.index());
        let mut ab = a;
        ab.set(Dim::Dport, Iv::new(0, 19));
        let mut want = vec![ab, c, d];
        want.sort();
        got.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn split_is_a_partition() {
        let all = Class::all(0);
        let cubes = vec![
            Cube::new()
                .with(Dim::Proto.index(), Iv::point(6))
                .with(Dim::Dport.index(), Iv::new(20, 30)),
            Cube::new().with(Dim::Dport.index(), Iv::new(25, 40)),
        ];
        let (inside, outside) = split(&all, &cubes);
        // Count points on the two small axes only (proto x dport): 256 * 65536 in all; the
        // inside is tcp 20-30 (11) plus any proto 25-40 not already counted (256*16 - 6).
        let count = |v: &[Class]| -> u128 {
            v.iter()
                .map(|c| {
                    let p = c.get(Dim::Proto);
                    let d = c.get(Dim::Dport);
                    (p.hi - p.lo + 1) * (d.hi - d.lo + 1)
                })
                .sum()
        };
        assert_eq!(count(&inside), 11 + 256 * 16 - 6);
        assert_eq!(count(&inside) + count(&outside), 256 * 65536);
    }
}
