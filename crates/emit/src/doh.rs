//! Known DNS-over-HTTPS endpoints (RFC 8484: DNS messages in HTTPS, port 443 over TCP, or UDP
//! for HTTP/3), which `portolan enforce` blocks for the site's devices so that a device cannot
//! resolve around the firewall's forwarder: their addresses go into the enforce policy's
//! `doh4`/`doh6` sets ([`crate::Options::doh`] adds a site's own), and the forwarder reports a
//! device's lookup of one of their names.
//!
//! The list is the large public resolvers' own published service addresses and DoH host
//! names, each from the operator's documentation (read 2026-12):
//! - Google Public DNS: "Get started" (developers.google.com/speed/public-dns/docs/using)
//!   gives 8.8.8.8, 8.8.4.4, 2001:4860:4860::8888, 2001:4860:4860::8844; "DNS-over-HTTPS"
//!   (…/docs/doh) the host `dns.google`.
//! - Cloudflare 1.1.1.1: "IP addresses" (developers.cloudflare.com/1.1.1.1/ip-addresses/)
//!   gives 1.1.1.1, 1.0.0.1, 2606:4700:4700::1111, 2606:4700:4700::1001, and for Families
//!   1.1.1.2, 1.0.0.2, 2606:4700:4700::1112, 2606:4700:4700::1002, 1.1.1.3, 1.0.0.3,
//!   2606:4700:4700::1113, 2606:4700:4700::1003; "Encryption" the hosts `cloudflare-dns.com`,
//!   `one.one.one.one`, `security.cloudflare-dns.com`, `family.cloudflare-dns.com`.
//! - Quad9: "Service addresses & features" (quad9.net/service/service-addresses-and-features)
//!   gives 9.9.9.9, 149.112.112.112, 2620:fe::fe, 2620:fe::9 (and 9.9.9.10, 149.112.112.10,
//!   2620:fe::10, 9.9.9.11, 149.112.112.11, 2620:fe::11); "Encrypted DNS" says DoH on 443
//!   (and 5053) at `dns.quad9.net`, `dns10.quad9.net`, `dns11.quad9.net`.
//! - Cisco OpenDNS: 208.67.222.222, 208.67.220.220, 2620:119:35::35, 2620:119:53::53 and
//!   the DoH host `doh.opendns.com` (support.opendns.com, "Using DNS over HTTPS").
//! - AdGuard DNS: "DNS providers" (adguard-dns.io/kb/general/dns-providers/) gives
//!   94.140.14.14, 94.140.15.15, 2a10:50c0::ad1:ff, 2a10:50c0::ad2:ff and `dns.adguard-dns.com`.
//!
//! An address list is never complete (anycast operators add addresses, and anyone can run a
//! DoH server): it catches the resolvers devices and browsers ship with. A device whose
//! profile admits 443 to wide prefixes can still reach an unlisted one; the forwarder's name
//! check covers the names it is asked.

use std::net::IpAddr;

/// The shipped DoH service addresses (see the module's sources).
pub const ADDRESSES: &[&str] = &[
    // Google Public DNS
    "8.8.8.8",
    "8.8.4.4",
    "2001:4860:4860::8888",
    "2001:4860:4860::8844",
    // Cloudflare 1.1.1.1 and 1.1.1.1 for Families
    "1.1.1.1",
    "1.0.0.1",
    "1.1.1.2",
    "1.0.0.2",
    "1.1.1.3",
    "1.0.0.3",
    "2606:4700:4700::1111",
    "2606:4700:4700::1001",
    "2606:4700:4700::1112",
    "2606:4700:4700::1002",
    "2606:4700:4700::1113",
    "2606:4700:4700::1003",
    // Quad9
    "9.9.9.9",
    "149.112.112.112",
    "9.9.9.10",
    "149.112.112.10",
    "9.9.9.11",
    "149.112.112.11",
    "2620:fe::fe",
    "2620:fe::9",
    "2620:fe::10",
    "2620:fe::11",
    // Cisco OpenDNS
    "208.67.222.222",
    "208.67.220.220",
    "2620:119:35::35",
    "2620:119:53::53",
    // AdGuard DNS
    "94.140.14.14",
    "94.140.15.15",
    "2a10:50c0::ad1:ff",
    "2a10:50c0::ad2:ff",
];

/// The shipped DoH host names (see the module's sources).
pub const NAMES: &[&str] = &[
    "dns.google",
    "cloudflare-dns.com",
    "one.one.one.one",
    "security.cloudflare-dns.com",
    "family.cloudflare-dns.com",
    "dns.quad9.net",
    "dns10.quad9.net",
    "dns11.quad9.net",
    "doh.opendns.com",
    "dns.adguard-dns.com",
];

/// The shipped addresses, parsed.
pub fn addresses() -> Vec<IpAddr> {
    ADDRESSES.iter().filter_map(|a| a.parse().ok()).collect()
}

/// Whether `name` (any case, with or without the final dot) is a known DoH host, shipped or
/// in `extra`.
pub fn is_doh_name(name: &str, extra: &[String]) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    NAMES.iter().any(|k| *k == n)
        || extra
            .iter()
            .any(|k| k.strip_suffix('.').unwrap_or(k).eq_ignore_ascii_case(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_address_parses_and_names_match_without_case_or_dot() {
        assert_eq!(addresses().len(), ADDRESSES.len());
        assert!(is_doh_name("DNS.Google.", &[]));
        assert!(!is_doh_name("google", &[]));
        assert!(!is_doh_name("evil-dns.google", &[]));
        assert!(is_doh_name("doh.example.net", &["doh.example.net.".into()]));
    }
}
