//! Hulls: one box holding every packet a rule, a chain or a verdict-map element can act on,
//! so that a class outside it is known to pass unchanged without being split
//! ([`crate::program::Program::prepared`] computes them); and [`Skip`], a segment tree of
//! the hulls of a sorted verdict map's elements, which [`crate::space::Region::split_skipping`]
//! walks to find the few elements a class can meet among thousands.

use crate::space::{Class, Cube, Iv, FIXED};

/// An over-approximation of a set of packets by one box: every packet a rule (or a chain,
/// or a verdict) can act on lies inside its hull, so a class outside it passes unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hull {
    Empty,
    Full,
    Box(Vec<Iv>),
}

impl Hull {
    /// The smallest hull holding both.
    pub fn join(&self, o: &Hull) -> Hull {
        match (self, o) {
            (Hull::Empty, x) | (x, Hull::Empty) => x.clone(),
            (Hull::Full, _) | (_, Hull::Full) => Hull::Full,
            (Hull::Box(a), Hull::Box(b)) => Hull::Box(
                a.iter()
                    .zip(b)
                    .map(|(x, y)| Iv::new(x.lo.min(y.lo), x.hi.max(y.hi)))
                    .collect(),
            ),
        }
    }

    /// The hull narrowed to a cube (`axes`: the class length, for a hull still full).
    pub fn and_cube(self, c: &Cube, axes: usize) -> Hull {
        let mut v = match self {
            Hull::Empty => return Hull::Empty,
            Hull::Full => Class::all(axes.saturating_sub(FIXED)).iv,
            Hull::Box(v) => v,
        };
        for (a, iv) in &c.parts {
            let Some(x) = v.get(*a).and_then(|x| x.intersect(*iv)) else {
                return Hull::Empty;
            };
            v[*a] = x;
        }
        Hull::Box(v)
    }

    /// The hull of a union of cubes.
    pub fn of_cubes<'a>(cubes: impl Iterator<Item = &'a Cube>, axes: usize) -> Hull {
        cubes.fold(Hull::Empty, |h, c| h.join(&Hull::Full.and_cube(c, axes)))
    }

    /// Both hulls at once: a box holding their intersection.
    pub fn meet(self, o: &Hull) -> Hull {
        match (self, o) {
            (Hull::Empty, _) | (_, Hull::Empty) => Hull::Empty,
            (x, Hull::Full) => x,
            (Hull::Full, x) => x.clone(),
            (Hull::Box(a), Hull::Box(b)) => {
                let mut v = Vec::with_capacity(a.len());
                for (x, y) in a.iter().zip(b) {
                    match x.intersect(*y) {
                        Some(i) => v.push(i),
                        None => return Hull::Empty,
                    }
                }
                Hull::Box(v)
            }
        }
    }

    /// Whether some packet of `c` may lie inside.
    pub fn meets(&self, c: &Class) -> bool {
        match self {
            Hull::Empty => false,
            Hull::Full => true,
            Hull::Box(v) => v.iter().zip(&c.iv).all(|(x, y)| x.intersect(*y).is_some()),
        }
    }
}

/// A segment tree over a sorted verdict map's elements: each node the [`Hull`] of what the
/// verdicts of its elements can act on. A class walks down only where a hull meets it, so
/// the elements whose chains ignore it are skipped in bulk: a class of one device's packets
/// crossing the destination map of a thousand devices visits the few chains that name it,
/// not a thousand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    pub(crate) size: usize,
    hulls: Vec<Hull>,
}

impl Skip {
    pub(crate) fn new(leaves: Vec<Hull>) -> Skip {
        let size = leaves.len().next_power_of_two().max(1);
        let mut hulls = vec![Hull::Empty; 2 * size];
        for (i, h) in leaves.into_iter().enumerate() {
            hulls[size + i] = h;
        }
        for i in (1..size).rev() {
            hulls[i] = hulls[2 * i].join(&hulls[2 * i + 1]);
        }
        Skip { size, hulls }
    }

    /// Pushes, in order, the leaves in `range` (start, end) below `node` (covering `lo..hi`)
    /// whose hull meets `c`.
    pub(crate) fn collect(
        &self,
        node: usize,
        lo: usize,
        hi: usize,
        range: (usize, usize),
        c: &Class,
        out: &mut Vec<usize>,
    ) {
        if hi <= range.0 || lo >= range.1 || !self.hulls[node].meets(c) {
            return;
        }
        if hi - lo == 1 {
            out.push(lo);
            return;
        }
        let mid = (lo + hi) / 2;
        self.collect(2 * node, lo, mid, range, c, out);
        self.collect(2 * node + 1, mid, hi, range, c, out);
    }
}
