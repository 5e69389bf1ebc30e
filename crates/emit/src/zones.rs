//! Which interface each address of the site sits behind, for the spoofing check of every back
//! end: the networks of each zone that names an interface, and the addresses of its devices
//! where it lists no networks. A packet whose source is one of them but that arrives on another
//! interface is dropped and logged as spoofed. The check is derived from the site, not from the
//! routing table (see ARCHITECTURE.md, "Zones are interfaces").
//!
//! Prefixes of two zones may nest (a management /24 inside a plant /16): the most specific
//! prefix decides. nftables interval maps refuse overlapping elements, so [`Ownership::ranges`]
//! cuts the outer prefix around the inner ones; ipset's `hash:net` tries the most specific
//! prefix first, so [`Ownership::inner`] gives the inner prefixes to list as `nomatch`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use portolan_model::ir::Policy;

use crate::names::{safe_interface, Family};
use crate::EmitError;

/// The owner of the addresses no interface owns (carved out of a zone's `0.0.0.0/0`).
pub(crate) const EXEMPT: usize = usize::MAX;

/// A zone that names an interface.
pub(crate) struct OwnerZone {
    pub id: String,
    pub interface: String,
}

/// The site's addresses by the zone (index into `zones`) they belong to.
pub(crate) struct Ownership {
    pub zones: Vec<OwnerZone>,
    /// Aggregated per zone, sorted; no prefix is listed by two zones. [`EXEMPT`] marks what is
    /// carved out of a zone as belonging to no interface.
    pub prefixes: Vec<(IpNet, usize)>,
}

fn bounds(n: &IpNet) -> (u128, u128) {
    match n {
        IpNet::V4(v) => (
            u128::from(u32::from(v.network())),
            u128::from(u32::from(v.broadcast())),
        ),
        IpNet::V6(v) => (u128::from(v.network()), u128::from(v.broadcast())),
    }
}

fn addr(fam: Family, x: u128) -> IpAddr {
    match fam {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(x).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(x)),
    }
}

/// An inclusive range as nft writes it: the prefix when it is one (the address for a host),
/// else `first-last`.
fn range_text(fam: Family, lo: u128, hi: u128) -> String {
    let bits: u32 = if fam == Family::V4 { 32 } else { 128 };
    let size = hi.wrapping_sub(lo).wrapping_add(1);
    let whole = lo == 0
        && hi
            == if bits == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
    let aligned = size != 0 && size.is_power_of_two() && lo.is_multiple_of(size);
    if whole || aligned {
        let len = if whole {
            0
        } else {
            bits - size.trailing_zeros()
        };
        let a = addr(fam, lo);
        if len == bits {
            return a.to_string();
        }
        if let Ok(n) = IpNet::new(a, u8::try_from(len).unwrap_or(0)) {
            return n.to_string();
        }
    }
    format!("{}-{}", addr(fam, lo), addr(fam, hi))
}

impl Ownership {
    pub(crate) fn of(policy: &Policy, target: &'static str) -> Result<Ownership, EmitError> {
        let mut zones = Vec::new();
        let mut raw: Vec<(IpNet, usize)> = Vec::new();
        for z in &policy.zones {
            let Some(i) = &z.interface else { continue };
            let idx = zones.len();
            zones.push(OwnerZone {
                id: z.id.clone(),
                interface: safe_interface(target, i)?,
            });
            let mut nets: Vec<IpNet> = if z.networks.is_empty() {
                policy
                    .groups
                    .iter()
                    .filter(|g| g.zone == z.id)
                    .flat_map(|g| g.addresses.iter().copied())
                    .collect()
            } else {
                z.networks.clone()
            };
            nets = IpNet::aggregate(&nets);
            raw.extend(nets.into_iter().map(|n| (n, idx)));
        }
        // Sources that belong to no interface: the unspecified address (a host without an
        // address yet: DHCP discovery, duplicate address detection) and link-local ranges,
        // which every link has. A zone declared as `0.0.0.0/0` or `::/0` keeps them out. A zone
        // that names one of them exactly (`networks: [169.254.0.0/16]`) owns it: the site said
        // so, and the inner prefix is cut out of any wider zone as for any nested prefix.
        let exempt: Vec<IpNet> = ["0.0.0.0/32", "169.254.0.0/16", "::/128", "fe80::/10"]
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect();
        let carved: Vec<(IpNet, usize)> = exempt
            .into_iter()
            .filter(|e| {
                raw.iter().any(|(n, _)| n.contains(e) && n != e) && !raw.iter().any(|(n, _)| n == e)
            })
            .map(|e| (e, EXEMPT))
            .collect();
        raw.extend(carved);
        raw.sort_by_key(|(n, z)| {
            (
                Family::of(n),
                bounds(n).0,
                std::cmp::Reverse(bounds(n).1),
                *z,
            )
        });
        for w in raw.windows(2) {
            if w[0].0 == w[1].0 && w[0].1 != w[1].1 {
                return Err(EmitError::Unsupported {
                    target,
                    what: format!(
                        "{} in two zones, `{}` and `{}`: an address sits behind one interface",
                        w[0].0, zones[w[0].1].id, zones[w[1].1].id
                    ),
                });
            }
        }
        raw.dedup();
        Ok(Ownership {
            zones,
            prefixes: raw,
        })
    }

    /// Disjoint ranges of one family covering exactly the owned addresses, each with its zone
    /// (an inner prefix cut out of the outer one).
    pub(crate) fn ranges(&self, fam: Family) -> Vec<(String, usize)> {
        let mut out: Vec<(u128, u128, usize)> = Vec::new();
        // Open outer prefixes: (last address, zone, first address not yet emitted).
        let mut stack: Vec<(u128, usize, Option<u128>)> = Vec::new();
        let close = |stack: &mut Vec<(u128, usize, Option<u128>)>, out: &mut Vec<_>| {
            if let Some((hi, z, cursor)) = stack.pop() {
                if let Some(c) = cursor.filter(|c| *c <= hi) {
                    out.push((c, hi, z));
                }
            }
        };
        for (n, z) in self.prefixes.iter().filter(|(n, _)| Family::of(n) == fam) {
            let (lo, hi) = bounds(n);
            while stack.last().is_some_and(|t| t.0 < lo) {
                close(&mut stack, &mut out);
            }
            if let Some(parent) = stack.last_mut() {
                if let Some(c) = parent.2.filter(|c| *c < lo) {
                    out.push((c, lo - 1, parent.1));
                }
                parent.2 = hi.checked_add(1);
            }
            stack.push((hi, *z, Some(lo)));
        }
        while !stack.is_empty() {
            close(&mut stack, &mut out);
        }
        out.sort();
        // Neighbours of one zone merge into one range.
        let mut merged: Vec<(u128, u128, usize)> = Vec::new();
        for (lo, hi, z) in out {
            match merged.last_mut() {
                Some(m) if m.2 == z && m.1.checked_add(1) == Some(lo) => m.1 = hi,
                _ => merged.push((lo, hi, z)),
            }
        }
        merged
            .into_iter()
            .filter(|(_, _, z)| *z != EXEMPT)
            .map(|(lo, hi, z)| (range_text(fam, lo, hi), z))
            .collect()
    }

    /// The prefixes of zone `zone`, and those of other zones (or exempt) nested inside them.
    pub(crate) fn own_and_inner(&self, zone: usize) -> (Vec<IpNet>, Vec<IpNet>) {
        let own: Vec<IpNet> = self
            .prefixes
            .iter()
            .filter(|(_, z)| *z == zone)
            .map(|(n, _)| *n)
            .collect();
        let inner = self
            .prefixes
            .iter()
            .filter(|(n, z)| *z != zone && own.iter().any(|o| o.contains(n) && o != n))
            .map(|(n, _)| *n)
            .collect();
        (own, inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(list: &[(&str, usize)]) -> Ownership {
        Ownership {
            zones: Vec::new(),
            prefixes: {
                let mut v: Vec<(IpNet, usize)> = list
                    .iter()
                    .map(|(n, z)| (n.parse().expect("net"), *z))
                    .collect();
                v.sort_by_key(|(n, z)| {
                    (
                        Family::of(n),
                        bounds(n).0,
                        std::cmp::Reverse(bounds(n).1),
                        *z,
                    )
                });
                v
            },
        }
    }

    #[test]
    fn nested_zones_are_cut_into_disjoint_ranges() {
        // A /16 plant with a management /24 inside it, and a device /32 of a third zone.
        let o = own(&[
            ("10.0.0.0/16", 0),
            ("10.0.5.0/24", 1),
            ("10.0.5.7/32", 2),
            ("192.0.2.0/24", 1),
        ]);
        assert_eq!(
            o.ranges(Family::V4),
            vec![
                ("10.0.0.0-10.0.4.255".to_string(), 0),
                ("10.0.5.0-10.0.5.6".to_string(), 1),
                ("10.0.5.7".to_string(), 2),
                ("10.0.5.8-10.0.5.255".to_string(), 1),
                ("10.0.6.0-10.0.255.255".to_string(), 0),
                ("192.0.2.0/24".to_string(), 1),
            ]
        );
        let (mine, inner) = o.own_and_inner(0);
        assert_eq!(mine.len(), 1);
        assert_eq!(inner.len(), 2, "{inner:?}");
    }

    #[test]
    fn unspecified_and_link_local_sources_belong_to_no_zone() {
        let o = own(&[
            ("0.0.0.0/0", 0),
            ("169.254.0.0/16", EXEMPT),
            ("0.0.0.0/32", EXEMPT),
        ]);
        assert_eq!(
            o.ranges(Family::V4),
            vec![
                ("0.0.0.1-169.253.255.255".to_string(), 0),
                ("169.255.0.0-255.255.255.255".to_string(), 0),
            ]
        );
        let (_, inner) = o.own_and_inner(0);
        assert_eq!(inner.len(), 2);
    }

    #[test]
    fn prefixes_keep_their_form() {
        let o = own(&[
            ("2001:db8::/64", 0),
            ("2001:db8:1::5/128", 1),
            ("0.0.0.0/0", 2),
        ]);
        assert_eq!(
            o.ranges(Family::V6),
            vec![
                ("2001:db8::/64".to_string(), 0),
                ("2001:db8:1::5".to_string(), 1)
            ]
        );
        assert_eq!(o.ranges(Family::V4), vec![("0.0.0.0/0".to_string(), 2)]);
    }
}
