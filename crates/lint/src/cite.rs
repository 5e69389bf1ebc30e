//! The standards and guidance findings cite, each with the section that supports it and a
//! link. Only what a finding rests on is here; each constant says what the cited text states,
//! and only sections read from the documents' own text are cited.
//!
//! Not cited, because their text could not be read where this was written (so no section
//! is claimed for them): NIST SP 800-77 Rev. 1 (Guide to IPsec VPNs), NIST SP 800-52 Rev. 2
//! (TLS implementations) and BSI TR-02102 (parts 1-4). Their recommendations on IPsec and TLS
//! point the same way as RFC 8247, RFC 8221 and RFC 9325, which are cited with sections.

use serde::Serialize;

/// A citation: the document, the section and where to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Citation {
    pub standard: &'static str,
    pub section: &'static str,
    pub url: &'static str,
}

impl std::fmt::Display for Citation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.standard, self.section)
    }
}

/// RFC 8247 section 2.1, the status of each IKEv2 encryption transform (ENCR_AES_CBC MUST;
/// ENCR_CHACHA20_POLY1305, ENCR_AES_GCM_16, ENCR_AES_CCM_8 SHOULD; ENCR_3DES MAY; ENCR_DES
/// and ENCR_NULL MUST NOT).
pub const RFC8247_ENCR: Citation = Citation {
    standard: "RFC 8247",
    section: "section 2.1 (Type 1 - IKEv2 Encryption Algorithm Transforms)",
    url: "https://www.rfc-editor.org/rfc/rfc8247#section-2.1",
};

/// RFC 8247 section 2.2, IKEv2 pseudorandom functions (PRF_HMAC_SHA2_256 MUST,
/// PRF_HMAC_SHA1 MUST-, PRF_HMAC_MD5 MUST NOT).
pub const RFC8247_PRF: Citation = Citation {
    standard: "RFC 8247",
    section: "section 2.2 (Type 2 - IKEv2 Pseudorandom Function Transforms)",
    url: "https://www.rfc-editor.org/rfc/rfc8247#section-2.2",
};

/// RFC 8247 section 2.3, IKEv2 integrity transforms (AUTH_HMAC_SHA2_256_128 MUST,
/// AUTH_HMAC_SHA1_96 MUST-, AUTH_HMAC_MD5_96, AUTH_DES_MAC and AUTH_KPDK_MD5 MUST NOT).
pub const RFC8247_INTEG: Citation = Citation {
    standard: "RFC 8247",
    section: "section 2.3 (Type 3 - IKEv2 Integrity Algorithm Transforms)",
    url: "https://www.rfc-editor.org/rfc/rfc8247#section-2.3",
};

/// RFC 8247 section 2.4, Diffie-Hellman groups (14 MUST, 19 SHOULD; 2, 5, 23, 24 SHOULD NOT;
/// 1 and 22 MUST NOT). It also governs the group of a child SA's key exchange (ESP PFS).
pub const RFC8247_DH: Citation = Citation {
    standard: "RFC 8247",
    section: "section 2.4 (Type 4 - IKEv2 Diffie-Hellman Group Transforms)",
    url: "https://www.rfc-editor.org/rfc/rfc8247#section-2.4",
};

/// RFC 8221 section 5, ESP encryption algorithms (ENCR_AES_CBC, ENCR_AES_GCM_16 and ENCR_NULL
/// MUST; ENCR_3DES SHOULD NOT; ENCR_DES, ENCR_DES_IV64, ENCR_DES_IV32, ENCR_BLOWFISH and
/// ENCR_3IDEA MUST NOT).
pub const RFC8221_ENCR: Citation = Citation {
    standard: "RFC 8221",
    section: "section 5 (ESP Encryption Algorithms)",
    url: "https://www.rfc-editor.org/rfc/rfc8221#section-5",
};

/// RFC 8221 section 6, ESP and AH authentication algorithms (AUTH_HMAC_SHA2_256_128 MUST,
/// AUTH_HMAC_SHA1_96 MUST-, AUTH_HMAC_MD5_96, AUTH_DES_MAC and AUTH_KPDK_MD5 MUST NOT).
pub const RFC8221_AUTH: Citation = Citation {
    standard: "RFC 8221",
    section: "section 6 (ESP and AH Authentication Algorithms)",
    url: "https://www.rfc-editor.org/rfc/rfc8221#section-6",
};

/// RFC 9395, abstract and section 1: IKEv1 is deprecated and its RFCs (2407, 2408, 2409)
/// moved to Historic.
pub const RFC9395: Citation = Citation {
    standard: "RFC 9395",
    section: "abstract and section 1 (IKEv1 deprecated, RFCs 2407-2409 Historic)",
    url: "https://www.rfc-editor.org/rfc/rfc9395",
};

/// RFC 8996 (BCP 195), abstract: TLS 1.0 and 1.1 (and DTLS 1.0) are formally deprecated
/// and their RFCs moved to Historic.
pub const RFC8996: Citation = Citation {
    standard: "RFC 8996 (BCP 195)",
    section: "abstract (TLS 1.0 and 1.1, DTLS 1.0 deprecated)",
    url: "https://www.rfc-editor.org/rfc/rfc8996",
};

/// RFC 9325 (BCP 195) section 3.1.1, SSL/TLS protocol versions: implementations MUST NOT
/// negotiate SSL version 2 or 3, TLS 1.0 or TLS 1.1; MUST support TLS 1.2; SHOULD support
/// TLS 1.3. (Read from the RFC's text: sections 3, 3.1.1 to 3.1.3 and 3.2.)
pub const RFC9325_TLS: Citation = Citation {
    standard: "RFC 9325 (BCP 195)",
    section: "section 3.1.1 (SSL/TLS Protocol Versions: MUST NOT negotiate SSL 2, SSL 3, TLS 1.0, TLS 1.1)",
    url: "https://www.rfc-editor.org/rfc/rfc9325#section-3.1.1",
};

/// RFC 9325 (BCP 195) section 3.1.2, DTLS protocol versions: implementations MUST NOT
/// negotiate DTLS 1.0; MUST support DTLS 1.2.
pub const RFC9325_DTLS: Citation = Citation {
    standard: "RFC 9325 (BCP 195)",
    section: "section 3.1.2 (DTLS Protocol Versions: MUST NOT negotiate DTLS 1.0)",
    url: "https://www.rfc-editor.org/rfc/rfc9325#section-3.1.2",
};

/// RFC 9325 (BCP 195) section 3.2, Strict TLS: where a protocol has a TLS-only method (HTTPS
/// on its own port), it MUST be configured by administrators in preference to the
/// plaintext or upgrade one; where it has only a dynamic upgrade (STARTTLS, FTP's `AUTH
/// TLS`), administrators MUST use a policy that forbids plaintext without TLS.
pub const RFC9325_STRICT: Citation = Citation {
    standard: "RFC 9325 (BCP 195)",
    section: "section 3.2 (Strict TLS)",
    url: "https://www.rfc-editor.org/rfc/rfc9325#section-3.2",
};

/// CWE-319, description: sensitive data in cleartext on a channel that can be sniffed.
pub const CWE319: Citation = Citation {
    standard: "CWE-319 (Cleartext Transmission of Sensitive Information)",
    section: "description",
    url: "https://cwe.mitre.org/data/definitions/319.html",
};

/// CISA alert TA17-156A, description: SNMPv3 should be the only version employed; with
/// SNMPv1 or SNMPv2 an adversary can sniff the community string.
pub const CISA_SNMP: Citation = Citation {
    standard: "CISA alert TA17-156A (Reducing the Risk of SNMP Abuse)",
    section: "description",
    url: "https://www.cisa.gov/news-events/alerts/2017/06/05/reducing-risk-snmp-abuse",
};

/// The Linux kernel's conntrack sysctls: `nf_conntrack_tcp_timeout_established`,
/// `nf_conntrack_udp_timeout`, `nf_conntrack_udp_timeout_stream`, after which an idle entry
/// is removed (and a NAT mapping with it).
pub const LINUX_CONNTRACK: Citation = Citation {
    standard: "Linux kernel documentation, networking/nf_conntrack-sysctl",
    section: "nf_conntrack_tcp_timeout_established, nf_conntrack_udp_timeout, nf_conntrack_udp_timeout_stream",
    url: "https://docs.kernel.org/networking/nf_conntrack-sysctl.html",
};

/// RFC 4787 (BCP 127) section 4.3, mapping refresh: REQ-5, a NAT UDP mapping timer must not
/// expire in less than two minutes; five minutes or more is recommended.
pub const RFC4787_REFRESH: Citation = Citation {
    standard: "RFC 4787 (BCP 127)",
    section: "section 4.3 (Mapping Refresh, REQ-5: not less than two minutes)",
    url: "https://www.rfc-editor.org/rfc/rfc4787#section-4.3",
};

/// RFC 5382 (BCP 142) section 5: REQ-5, the established connection idle-timeout of a NAT
/// must not be less than 2 hours 4 minutes.
pub const RFC5382_IDLE: Citation = Citation {
    standard: "RFC 5382 (BCP 142)",
    section:
        "section 5 (REQ-5: established connection idle-timeout not less than 2 hours 4 minutes)",
    url: "https://www.rfc-editor.org/rfc/rfc5382#section-5",
};

/// Portolan's own principle (DESIGN.md, "Least privilege by construction"): a policy permits
/// exactly the flows a device needs, for exactly the peers it needs them with.
/// The profile format's rule for a row its source cuts: the values the cut hides stay
/// `unspecified` until the row is read whole (docs/profile-format.md).
pub const TRUNCATED_ROW: Citation = Citation {
    standard: "Portolan profile format",
    section: "A row the source truncates",
    url: "docs/profile-format.md",
};

pub const LEAST_PRIVILEGE: Citation = Citation {
    standard: "Portolan design principles",
    section: "Least privilege by construction",
    url: "docs/lint.md",
};
