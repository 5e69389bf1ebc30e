//! What nftables makes of an IPv6 ACE whose `protocol` is an extension header, with the
//! kernel as judge. Eight UNSW MUD files (HueBulb, NetatmoCamera, hpprinter, ihomepowerplug,
//! pixstarphotoframe, samsungsmartcam, tribyspeaker, wemomotion) hold ACEs "from the device to
//! ff00::/8, protocol 0" (and one "protocol 44"). Portolan used to emit them as
//! `ip6 daddr ff00::/8 meta l4proto 0 accept` (`… 44 …`), which `compile --check` could not
//! verify.
//!
//! RFC 8519's `protocol` leaf is the upper-layer protocol ("if extension headers are present,
//! the protocol is present in the 'upper-layer' header"), and 0 (Hop-by-Hop Options), 43
//! (Routing), 44 (Fragment) and 60 (Destination Options) are extension headers (RFC 8200
//! section 4), so such an ACE matches no packet; the importer now skips it with a warning
//! (`ipv6-extension-header`). This test shows the kernel agrees: `meta l4proto N` for those N
//! matches none of the packets that carry those headers, well-formed or not, so the old rules
//! accepted nothing and dropping them changes no packet's fate. It also shows why the reading
//! "first next-header is 0" (`ip6 nexthdr 0`) is not taken: it would accept a Hop-by-Hop +
//! UDP packet to any port, which no ACE of those files allows (least privilege).
//!
//! Two namespaces (a sender and a receiver holding a scratch ruleset with counters in its
//! input hook); the packets are written by hand (RFC 8200 layouts) and sent with an
//! AF_PACKET socket from python3 to the all-nodes group ff02::1, which every interface joins.
//! It needs root; without it, it fails (`portolan-testkit`'s skip policy).

use std::collections::BTreeMap;

use portolan_testkit::kernel;
use portolan_testkit::netns::{must_in, Net};

/// The rules, each counting what it matches: the old emission for protocols 0, 43, 44 and 60,
/// an upper-layer protocol that does occur (ICMPv6), and the literal first-next-header reading.
const RULESET: &str = r#"table inet t {
    chain input {
        type filter hook input priority 0; policy accept;
        ip6 daddr ff02::1 counter comment "all"
        ip6 daddr ff02::1 meta l4proto 0 counter comment "l4proto-0"
        ip6 daddr ff02::1 meta l4proto 43 counter comment "l4proto-43"
        ip6 daddr ff02::1 meta l4proto 44 counter comment "l4proto-44"
        ip6 daddr ff02::1 meta l4proto 60 counter comment "l4proto-60"
        ip6 daddr ff02::1 meta l4proto ipv6-icmp counter comment "l4proto-icmpv6"
        ip6 daddr ff02::1 meta l4proto udp counter comment "l4proto-udp"
        ip6 daddr ff02::1 ip6 nexthdr 0 counter comment "nexthdr-0"
    }
}
"#;

/// Sends each packet (IPv6 header from fe80::1 to ff02::1, then the given next header and
/// bytes) as an Ethernet frame to 33:33:00:00:00:01 (RFC 2464 section 7) out of `ifname`.
const SENDER: &str = r#"
import socket, struct, sys
ifname = sys.argv[1]
src = socket.inet_pton(socket.AF_INET6, "fe80::1")
dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
def ip6(nh, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 1) + src + dst + payload
udp = struct.pack("!HHHH", 40000, 9, 8, 0)
mld = bytes([143, 0, 0, 0, 0, 0, 0, 0])
packets = [
    # Hop-by-Hop (next: ICMPv6), Router Alert (RFC 2711), then an MLDv2 report header: what
    # the UNSW captures recorded as "protocol 0".
    ip6(0, bytes([58, 0, 5, 2, 0, 0, 1, 0]) + mld),
    # Hop-by-Hop (next: UDP), PadN, then UDP to port 9.
    ip6(0, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + udp),
    # Routing header type 4, segments left 0 (next: UDP), then UDP.
    ip6(43, bytes([17, 0, 4, 0, 0, 0, 0, 0]) + udp),
    # Fragment header, offset 0, more fragments (next: UDP), then UDP.
    ip6(44, bytes([17, 0, 0, 1, 0, 0, 0, 7]) + udp),
    # Fragment header, offset 8 (next: Destination Options): a later fragment.
    ip6(44, bytes([60, 0, 0, 8, 0, 0, 0, 7]) + bytes(8)),
    # Destination Options, PadN (next: UDP), then UDP.
    ip6(60, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + udp),
    # Destination Options claiming 24 bytes where 8 follow (next: Destination Options).
    ip6(60, bytes([60, 2, 1, 4, 0, 0, 0, 0])),
    # No Next Header (59).
    ip6(59, b""),
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
mac = bytes.fromhex(open(f"/sys/class/net/{ifname}/address").read().strip().replace(":", ""))
for p in packets:
    s.send(bytes.fromhex("333300000001") + mac + b"\x86\xdd" + p)
print(len(packets))
"#;

/// Each rule's comment with its packet count, from `nft list chain`.
fn counters(listing: &str) -> BTreeMap<String, u64> {
    listing
        .lines()
        .filter_map(|l| {
            let packets = l.split("counter packets ").nth(1)?.split(' ').next()?;
            let name = l.split("comment \"").nth(1)?.split('"').next()?;
            Some((name.to_string(), packets.parse().ok()?))
        })
        .collect()
}

#[test]
fn an_extension_header_as_l4proto_matches_no_packet_on_the_kernel() {
    let _turn = kernel::turn();
    kernel::require_tools(&["ip", "nft", "python3"]);
    let mut net = Net::new();
    let tx = net.ns("tx");
    let rx = net.ns("rx");
    net.veth(&tx, "tx0", &rx, "rx0");
    must_in(&rx, &["nft", "-f", "-"], Some(RULESET));
    // The receiver's IPv6 on rx0 exists once the link is up; wait until it is.
    portolan_testkit::netns::wait_for(
        "rx0 up with IPv6",
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(50),
        || {
            must_in(&rx, &["ip", "-6", "addr", "show", "dev", "rx0"], None).contains("inet6")
                && must_in(&rx, &["ip", "link", "show", "rx0"], None).contains("LOWER_UP")
        },
    );
    let sent = must_in(&tx, &["python3", "-c", SENDER, "tx0"], None);
    assert_eq!(sent.trim(), "8");
    // The receiver counts what arrives; wait for all eight (veth delivers at once, but the
    // receive path is asynchronous).
    let mut got = BTreeMap::new();
    portolan_testkit::netns::wait_for(
        "the eight packets counted",
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(50),
        || {
            got = counters(&must_in(
                &rx,
                &["nft", "list", "chain", "inet", "t", "input"],
                None,
            ));
            got.get("all") == Some(&8)
        },
    );
    // Expected from RFC 8200 (which headers are extension headers, which is upper-layer) and
    // the kernel's reading of `meta l4proto` (the upper-layer protocol, extension headers
    // skipped): no packet is "protocol 0, 43, 44 or 60"; the MLD report is ICMPv6; the four
    // UDP headers behind one extension header (Hop-by-Hop, Routing, first fragment,
    // Destination Options) are UDP; the later fragment, the truncated chain and No Next Header
    // are none of these. The literal first next-header 0 takes both Hop-by-Hop packets, the
    // UDP one included.
    let want: BTreeMap<String, u64> = [
        ("all", 8),
        ("l4proto-0", 0),
        ("l4proto-43", 0),
        ("l4proto-44", 0),
        ("l4proto-60", 0),
        ("l4proto-icmpv6", 1),
        ("l4proto-udp", 4),
        ("nexthdr-0", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
}
