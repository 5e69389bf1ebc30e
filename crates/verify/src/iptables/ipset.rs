//! `-m set --match-set NAME FLAGS` against an ipset (ipset(8)): each of the set's
//! dimensions is read from the packet's source or destination as FLAGS say, each member is
//! a box of the packet space, and `nomatch` members are exceptions where the most specific
//! prefix decides (for `hash:net` and `hash:net,port`, per port).

use super::matches::addr_iv;
use super::Lowering;
use crate::space::{Cube, Dim, Iv};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Addr,
    Port,
}

/// The dimensions of a set type.
fn parts(kind: &str) -> Option<&'static [Part]> {
    use Part::*;
    Some(match kind {
        "hash:ip" | "hash:net" | "bitmap:ip" => &[Addr],
        "hash:ip,port" | "hash:net,port" => &[Addr, Port],
        "hash:net,net" => &[Addr, Addr],
        "hash:ip,port,ip" | "hash:ip,port,net" | "hash:net,port,net" => &[Addr, Port, Addr],
        "bitmap:port" => &[Port],
        _ => return None,
    })
}

/// `[PROTO:]PORT[-PORT]` (TCP when no protocol is given, ipset(8)).
fn port_part(s: &str) -> Option<(u128, Iv)> {
    let (proto, ports) = match s.split_once(':') {
        Some((p, rest)) => (p, rest),
        None => ("tcp", s),
    };
    let proto: u128 = match proto {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        "udplite" => 136,
        _ => return None,
    };
    let (a, b) = match ports.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
        None => {
            let p = ports.parse::<u16>().ok()?;
            (p, p)
        }
    };
    (a <= b).then(|| (proto, Iv::new(u128::from(a), u128::from(b))))
}

/// An address part: `A`, `A/LEN` or `A-B`.
fn addr_part(fam: &str, s: &str) -> Option<Iv> {
    match s.split_once('-') {
        Some((a, b)) if !s.contains('/') => {
            let (a, b) = (addr_iv(fam, a)?, addr_iv(fam, b)?);
            (a.lo <= b.lo).then(|| Iv::new(a.lo, b.lo))
        }
        _ => addr_iv(fam, s),
    }
}

/// Paints intervals in order (wider prefixes first), the last paint winning: the most
/// specific member decides.
fn paint(members: &mut [(Iv, bool)]) -> Vec<Iv> {
    members.sort_by_key(|(iv, _)| std::cmp::Reverse(iv.hi - iv.lo));
    let mut canvas: Vec<(Iv, bool)> = Vec::new();
    for (iv, on) in members.iter() {
        let mut next: Vec<(Iv, bool)> = Vec::new();
        for (c, v) in canvas {
            for rest in c.minus(*iv) {
                next.push((rest, v));
            }
        }
        next.push((*iv, *on));
        canvas = next;
    }
    let mut out: Vec<Iv> = canvas.into_iter().filter(|x| x.1).map(|x| x.0).collect();
    out.sort();
    out
}

/// Members that share their parts after the first address (their text, their box), with
/// each one's first address and whether it matches (false: a `nomatch` exception).
type Group = (String, Cube, Vec<(Iv, bool)>);

impl Lowering<'_> {
    /// The boxes of packets a `--match-set NAME FLAGS` holds, or why it cannot be decided.
    pub(super) fn set_region(
        &mut self,
        fam: &str,
        name: &str,
        flags: &str,
    ) -> Result<Vec<Cube>, String> {
        let set = *self
            .sets
            .get(name)
            .ok_or_else(|| format!("ipset {name} is not in the ipset save"))?;
        let dims = parts(&set.kind).ok_or_else(|| {
            format!(
                "ipset {name} of type {} is outside the supported subset",
                set.kind
            )
        })?;
        let want = if fam == "ip" { "inet" } else { "inet6" };
        if dims.contains(&Part::Addr) && set.family().unwrap_or("inet") != want {
            return Err(format!("ipset {name} is not of the rule's family"));
        }
        if set.option("netmask").is_some() {
            return Err(format!(
                "ipset {name} with a netmask is outside the supported subset"
            ));
        }
        let flags: Vec<&str> = flags.split(',').collect();
        if flags.len() != dims.len() || flags.iter().any(|f| *f != "src" && *f != "dst") {
            return Err(format!(
                "--match-set {name} {}: the set has {} dimensions",
                flags.join(","),
                dims.len()
            ));
        }
        let axis = |part: Part, flag: &str| match (part, flag) {
            (Part::Addr, "src") => Dim::Saddr,
            (Part::Addr, _) => Dim::Daddr,
            (Part::Port, "src") => Dim::Sport,
            (Part::Port, _) => Dim::Dport,
        };
        let mut cubes = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        for m in &set.members {
            let vals: Vec<&str> = m.value.split(',').collect();
            if vals.len() != dims.len() {
                return Err(format!("ipset {name} member {}", m.value));
            }
            let mut cube = Cube::new();
            let mut first: Option<Iv> = None;
            for (k, ((part, flag), v)) in dims.iter().zip(&flags).zip(&vals).enumerate() {
                let dim = axis(*part, flag);
                match part {
                    Part::Addr => {
                        let iv = addr_part(fam, v)
                            .ok_or_else(|| format!("ipset {name} member {}", m.value))?;
                        if k == 0 {
                            first = Some(iv);
                        } else {
                            cube.and(dim.index(), iv);
                        }
                    }
                    Part::Port => {
                        let (proto, iv) = port_part(v).ok_or_else(|| {
                            format!(
                                "ipset {name} member {}: outside the supported subset",
                                m.value
                            )
                        })?;
                        cube.and(Dim::Proto.index(), Iv::point(proto));
                        cube.and(dim.index(), iv);
                    }
                }
            }
            match first {
                None => cubes.push(cube),
                Some(a) => {
                    let key = vals[1..].join(",");
                    match groups.iter_mut().find(|g| g.0 == key) {
                        Some(g) => g.2.push((a, !m.nomatch)),
                        None => groups.push((key, cube, vec![(a, !m.nomatch)])),
                    }
                }
            }
        }
        if set.members.iter().any(|m| m.nomatch)
            && !matches!(set.kind.as_str(), "hash:net" | "hash:net,port")
        {
            return Err(format!("ipset {name}: nomatch in a {} set", set.kind));
        }
        let first_dim = dims
            .first()
            .zip(flags.first())
            .map(|(p, f)| axis(*p, f))
            .unwrap_or(Dim::Daddr);
        for (_, rest, mut members) in groups {
            let ivs = if members.iter().any(|m| !m.1) {
                paint(&mut members)
            } else {
                members.into_iter().map(|m| m.0).collect()
            };
            cubes.extend(
                ivs.into_iter()
                    .map(|iv| rest.clone().with(first_dim.index(), iv)),
            );
        }
        if self.dynamic_sets.contains(name) {
            let key: Vec<String> = dims
                .iter()
                .zip(&flags)
                .map(|(p, f)| match p {
                    Part::Addr => format!("{fam} {}addr", if *f == "src" { "s" } else { "d" }),
                    Part::Port => format!("th {}port", if *f == "src" { "s" } else { "d" }),
                })
                .collect();
            let a = self.dynamic_axis(fam, name, &key.join(" . "));
            cubes.push(Cube::new().with(a, Iv::point(1)));
        }
        Ok(cubes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_prefix_decides() {
        // 10.0.0.0/8 in, 10.1.0.0/16 nomatch, 10.1.2.0/24 in (ipset(8) "nomatch").
        let ten = |b: u128, len: u32| {
            let base = (10u128 << 24) | (b << 16);
            let size = 1u128 << (32 - len);
            (Iv::new(base, base + size - 1), len)
        };
        let (a, _) = ten(0, 8);
        let (b, _) = ten(1, 16);
        let c = Iv::new(
            (10 << 24) | (1 << 16) | (2 << 8),
            (10 << 24) | (1 << 16) | (2 << 8) | 255,
        );
        let got = paint(&mut [(c, true), (a, true), (b, false)]);
        assert_eq!(
            got,
            vec![Iv::new(a.lo, b.lo - 1), c, Iv::new(b.hi + 1, a.hi),]
        );
    }

    #[test]
    fn ports_default_to_tcp() {
        assert_eq!(port_part("80"), Some((6, Iv::point(80))));
        assert_eq!(port_part("udp:500"), Some((17, Iv::point(500))));
        assert_eq!(port_part("udp:1000-1010"), Some((17, Iv::new(1000, 1010))));
        assert_eq!(port_part("icmp:8/0"), None);
    }
}
