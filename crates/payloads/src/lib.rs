//! The UDP requests Portolan sends so that a service answers, and the recognition of each
//! answer: a UDP port is `open` only when something answered in its application's terms,
//! otherwise `open|filtered` at best. One place for `probe` (a flow's port, its application
//! label) and `scan` (a device's UDP ports and the common IoT services), so both send the
//! same bytes and read answers the same way.
//!
//! - [`udp_apps`]: the request chosen for a port or label and the [`udp_apps::Expect`] that
//!   recognises its answer (DNS, NTP, CoAP ping, DTLS 1.2 ClientHello, IKE_SA_INIT, SNMP get,
//!   SSDP M-SEARCH, mDNS, the responder's echo);
//! - [`snmp`]: an SNMPv2c GetRequest and its response (BER, RFC 3416);
//! - [`discovery`]: SSDP (UPnP Device Architecture) and mDNS (RFC 6762) queries;
//! - [`nonce`]: random identifiers that tell our answers from stray packets;
//! - [`checksum`]: the Internet and transport checksums (RFC 1071, RFC 9293) of forged packets.
//!
//! Pure: bytes in, bytes out, no sockets.

pub mod checksum;
pub mod discovery;
pub mod nonce;
pub mod snmp;
pub mod udp_apps;
