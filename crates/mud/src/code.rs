//! The stable codes of MUD problems: one closed enum, written in kebab-case wherever a problem
//! is shown (`/…/mud-url: warning[mud-url-scheme]: …`, `"code": "mud-url-scheme"` in JSON), so
//! that scripts match on the text and Rust callers on variants. A problem of the profile built
//! from the file carries the model's code ([`Code::Profile`]).

/// Declares the codes and their kebab-case spelling side by side (a unit test checks each
/// spelling against the variant's name).
macro_rules! codes {
    ($($variant:ident = $text:literal,)*) => {
        /// A MUD problem's stable code. The kebab-case text is part of Portolan's interface:
        /// never change one, add a new code instead.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)*
            /// A problem of the profile built from the file, with the model's code.
            Profile(portolan_model::Code),
        }

        impl Code {
            /// Every MUD code, in the order declared (alphabetical); not the model's.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The kebab-case text shown to users and scripts.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                    Code::Profile(c) => c.as_str(),
                }
            }
        }
    };
}

codes! {
    AclTypeName = "acl-type-name",
    AddressWithoutPrefix = "address-without-prefix",
    AmbiguousDirection = "ambiguous-direction",
    AnyPeer = "any-peer",
    AnyPort = "any-port",
    AnyProtocol = "any-protocol",
    ArpWithIp = "arp-with-ip",
    CacheValidityRange = "cache-validity-range",
    CombinedPeer = "combined-peer",
    ConditionNotInAcls = "condition-not-in-acls",
    ControllerNotUri = "controller-not-uri",
    DeviceAddressMatch = "device-address-match",
    DhcpAsLocalNetworks = "dhcp-as-local-networks",
    DirectionConflict = "direction-conflict",
    DraftAces = "draft-aces",
    DraftAclContainer = "draft-acl-container",
    DraftAclName = "draft-acl-name",
    DraftAclType = "draft-acl-type",
    DraftDirection = "draft-direction",
    DraftL3Name = "draft-l3-name",
    DraftMudAcl = "draft-mud-acl",
    DraftPortInL3 = "draft-port-in-l3",
    DraftRuleName = "draft-rule-name",
    DuplicateAceName = "duplicate-ace-name",
    DuplicateAclName = "duplicate-acl-name",
    EmptyLeafEncoding = "empty-leaf-encoding",
    EthInIpAcl = "eth-in-ip-acl",
    ExtensionInvalid = "extension-invalid",
    ExtensionMismatch = "extension-mismatch",
    ExtensionName = "extension-name",
    HexEthertype = "hex-ethertype",
    HostBitsSet = "host-bits-set",
    IcmpCode = "icmp-code",
    IgnoredMember = "ignored-member",
    InvalidDnsname = "invalid-dnsname",
    InvalidExtension = "invalid-extension",
    InvalidManufacturer = "invalid-manufacturer",
    InvalidNetwork = "invalid-network",
    InvalidPortMatch = "invalid-port-match",
    InvalidValue = "invalid-value",
    Ipv6ExtensionHeader = "ipv6-extension-header",
    LastUpdateFormat = "last-update-format",
    MatchTypeMismatch = "match-type-mismatch",
    MissingAcl = "missing-acl",
    MissingAclType = "missing-acl-type",
    MissingIsSupported = "missing-is-supported",
    MissingLastUpdate = "missing-last-update",
    MissingMudUrl = "missing-mud-url",
    MissingMudVersion = "missing-mud-version",
    MudUrlScheme = "mud-url-scheme",
    NameAndNetwork = "name-and-network",
    NoAcls = "no-acls",
    NonIpMatch = "non-ip-match",
    NotAMudFile = "not-a-mud-file",
    NotAccept = "not-accept",
    NotAnObject = "not-an-object",
    NotInAcls = "not-in-acls",
    NotStated = "not-stated",
    ParamDefault = "param-default",
    PartlyInAcls = "partly-in-acls",
    PortZero = "port-zero",
    ProtocolInferred = "protocol-inferred",
    ProtocolMismatch = "protocol-mismatch",
    ProxyNotInAcls = "proxy-not-in-acls",
    RangeWithOperator = "range-with-operator",
    ReplacedNotInAcls = "replaced-not-in-acls",
    ReversedRange = "reversed-range",
    TwoL3Matches = "two-l3-matches",
    TwoL4Matches = "two-l4-matches",
    UndeclaredExtension = "undeclared-extension",
    UnknownAclType = "unknown-acl-type",
    UnknownAction = "unknown-action",
    UnknownDirection = "unknown-direction",
    UnknownExtension = "unknown-extension",
    UnknownMember = "unknown-member",
    UnknownOperator = "unknown-operator",
    UnpairedReturnPath = "unpaired-return-path",
    UnreferencedAcl = "unreferenced-acl",
    UnregisteredController = "unregistered-controller",
    UnsupportedMatch = "unsupported-match",
    UnsupportedVersion = "unsupported-version",
    WildcardDnsname = "wildcard-dnsname",
    WrongType = "wrong-type",
}

portolan_model::code_text_impls!(Code);

#[cfg(test)]
mod tests {
    use super::*;

    use portolan_model::diag::kebab;

    #[test]
    fn each_text_is_the_variant_name_in_kebab_case() {
        for c in Code::ALL {
            assert_eq!(c.as_str(), kebab(&format!("{c:?}")));
        }
    }

    #[test]
    fn texts_are_unique_and_sorted() {
        let texts: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let mut sorted = texts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn a_profile_problem_keeps_the_model_code() {
        let c = Code::Profile(portolan_model::Code::UnusedEndpoint);
        assert_eq!(c.as_str(), "unused-endpoint");
        let j = serde_json::to_string(&c).expect("a string serialises");
        assert_eq!(j, "\"unused-endpoint\"");
        assert_eq!(Code::MudUrlScheme.to_string(), "mud-url-scheme");
    }
}
