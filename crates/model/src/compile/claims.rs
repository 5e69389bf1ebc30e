//! The addresses the site's devices claim, for `address-conflict`.

use std::collections::BTreeMap;

use ipnet::IpNet;

/// The addresses claimed so far, for `address-conflict`. Prefixes either nest or are disjoint,
/// so a claim overlapping a new prefix is one of its supernets (looked up at each shorter
/// length) or starts inside it (a range query): O(prefix length + log n) per address rather
/// than a scan of every claim, which large sites need.
#[derive(Default)]
pub(super) struct Claims {
    /// (is IPv6, network as a number, prefix length) → the device that claimed it first.
    by_net: BTreeMap<(bool, u128, u8), String>,
}

impl Claims {
    fn key(n: &IpNet) -> (bool, u128, u8, u8) {
        match n {
            IpNet::V4(v) => (
                false,
                u128::from(u32::from(v.network())),
                v.prefix_len(),
                32,
            ),
            IpNet::V6(v) => (true, u128::from(v.network()), v.prefix_len(), 128),
        }
    }

    /// The leading `len` bits of a `max`-bit address set.
    fn mask(len: u8, max: u8) -> u128 {
        if len == 0 {
            return 0;
        }
        let ones = if len >= 128 {
            u128::MAX
        } else {
            (1u128 << len) - 1
        };
        ones << (max - len)
    }

    /// The device owning a claimed prefix that contains `n` or lies inside it.
    pub(super) fn overlapping(&self, n: &IpNet) -> Option<&str> {
        let (v6, start, len, max) = Self::key(n);
        // One lookup per prefix length, and the range query.
        crate::work::visit(usize::from(len) + 2);
        for l in 0..=len {
            if let Some(o) = self.by_net.get(&(v6, start & Self::mask(l, max), l)) {
                return Some(o);
            }
        }
        let all = Self::mask(max, max);
        let end = start | (all & !Self::mask(len, max));
        self.by_net
            .range((v6, start, 0)..=(v6, end, u8::MAX))
            .next()
            .map(|(_, o)| o.as_str())
    }

    pub(super) fn insert(&mut self, n: IpNet, owner: &str) {
        let (v6, start, len, _) = Self::key(&n);
        self.by_net
            .entry((v6, start, len))
            .or_insert_with(|| owner.to_string());
    }
}
