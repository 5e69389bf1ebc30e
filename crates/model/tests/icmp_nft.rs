//! The ICMP type names profiles may write are exactly the ones nftables knows: the table in
//! `portolan_model::icmp` is compared with `nft describe icmp type` / `icmpv6 type` (the
//! real tool; Debian's `nftables`, installed by scripts/setup.sh).

use std::process::Command;

use portolan_model::icmp::{type_name, type_number};

/// (name, number) pairs printed by `nft describe KIND type`.
fn nft_describe(kind: &str) -> Vec<(String, u8)> {
    let out = Command::new("nft")
        .args(["describe", &format!("{kind} type")])
        .output()
        .unwrap_or_else(|e| {
            panic!("`nft describe` cannot run ({e}); scripts/setup.sh installs nftables")
        });
    assert!(
        out.status.success(),
        "nft describe {kind} type failed: {out:?}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let pairs: Vec<(String, u8)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (name, number) = (it.next()?, it.next()?);
            Some((name.to_string(), number.parse().ok()?))
        })
        .collect();
    assert!(pairs.len() > 10, "nft printed no type table: {text}");
    pairs
}

#[test]
fn icmp_names_are_nfts() {
    for (kind, v6) in [("icmp", false), ("icmpv6", true)] {
        let nft = nft_describe(kind);
        for (name, number) in &nft {
            assert_eq!(type_number(v6, name), Some(*number), "{kind} {name}");
            assert!(type_name(v6, *number).is_some(), "{kind} {number}");
        }
        for n in 0..=255u8 {
            if let Some(name) = type_name(v6, n) {
                assert!(
                    nft.iter().any(|(x, y)| x == name && *y == n),
                    "{kind}: {name} = {n} is not nft's"
                );
            }
        }
    }
}
