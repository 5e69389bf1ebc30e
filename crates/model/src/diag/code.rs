//! The stable codes of diagnostics: one closed enum, written in kebab-case wherever a
//! diagnostic is shown (`error[unknown-endpoint]`, `"code": "unknown-endpoint"` in JSON), so
//! that scripts can match on them and callers in Rust match on variants, never on strings.

/// Declares the codes and their kebab-case spelling side by side, so that the two cannot
/// drift apart (a unit test checks each spelling against the variant's name).
macro_rules! codes {
    ($($(#[$meta:meta])* $variant:ident = $text:literal,)*) => {
        /// A diagnostic's stable code. The kebab-case text is part of Portolan's interface:
        /// never change one, add a new code instead.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$meta])* $variant,)*
        }

        impl Code {
            /// Every code, in the order declared (alphabetical).
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The kebab-case text shown to users and scripts.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    AddressConflict = "address-conflict",
    AddressOutsideZone = "address-outside-zone",
    AnyPeer = "any-peer",
    /// A site deploys a profile with a `policy: one` choice group and picks none.
    ChoiceRequired = "choice-required",
    /// A device serves DHCP to its own segment where the site's DHCP server (this firewall, or
    /// an address in the zone) serves it too: two servers, conflicting leases.
    DhcpServerConflict = "dhcp-server-conflict",
    DuplicateFlowId = "duplicate-flow-id",
    DuplicateId = "duplicate-id",
    /// A second-edition construct in a `portolan: 1` file.
    EditionRequired = "edition-required",
    EmptyAlternative = "empty-alternative",
    EmptyBinding = "empty-binding",
    EmptyZone = "empty-zone",
    FamilyProtocolMismatch = "family-protocol-mismatch",
    IcmpTypeNotAllowed = "icmp-type-not-allowed",
    InitiationMismatch = "initiation-mismatch",
    InsidePortMismatch = "inside-port-mismatch",
    /// A flow names no `interface:` in a profile that declares several (edition 2).
    InterfaceRequired = "interface-required",
    InvalidAddress = "invalid-address",
    InvalidBinding = "invalid-binding",
    InvalidCast = "invalid-cast",
    /// A site's `choose:` names a flow outside the group or the device's mode.
    InvalidChoice = "invalid-choice",
    InvalidCondition = "invalid-condition",
    InvalidDomain = "invalid-domain",
    InvalidEndpoint = "invalid-endpoint",
    InvalidHostname = "invalid-hostname",
    InvalidIcmpType = "invalid-icmp-type",
    InvalidId = "invalid-id",
    InvalidInterface = "invalid-interface",
    InvalidMac = "invalid-mac",
    InvalidParam = "invalid-param",
    InvalidPort = "invalid-port",
    /// `replaces:` names itself, a flow of no shared mode, or makes a chain.
    InvalidReplace = "invalid-replace",
    InvalidService = "invalid-service",
    InvalidSource = "invalid-source",
    InvalidValue = "invalid-value",
    InvalidVersion = "invalid-version",
    /// An inventory's devices export leaves out devices whose status is not active.
    InventoryInactive = "inventory-inactive",
    /// An inventory export is missing pages (`next` set, fewer results than `count`).
    InventoryIncomplete = "inventory-incomplete",
    /// An inventory file that is not well-formed CSV or a NetBox export.
    InventorySyntax = "inventory-syntax",
    Io = "io",
    MissingAddress = "missing-address",
    MissingField = "missing-field",
    MissingMode = "missing-mode",
    MissingParam = "missing-param",
    MissingSource = "missing-source",
    MissingVersion = "missing-version",
    /// `validate` of a MUD file (RFC 8520): a problem the MUD importer found, its own code and
    /// JSON Pointer in the message.
    MudFile = "mud-file",
    NamesNeedDns = "names-need-dns",
    NoDeviceSide = "no-device-side",
    NoDevices = "no-devices",
    NoFlows = "no-flows",
    NotASite = "not-a-site",
    NotUtf8 = "not-utf8",
    NothingAllowed = "nothing-allowed",
    OverrideSpecified = "override-specified",
    ParamTypeMismatch = "param-type-mismatch",
    PortOutOfRange = "port-out-of-range",
    PortsNotAllowed = "ports-not-allowed",
    PortsRequired = "ports-required",
    RequiredFlowDisabled = "required-flow-disabled",
    ReservedId = "reserved-id",
    ReversedRange = "reversed-range",
    /// A choice group that holds a single flow in some mode: nothing to choose from.
    SingleFlowChoice = "single-flow-choice",
    TabIndent = "tab-indent",
    /// A citation says the source cuts the cited row (edition 2 `truncated:`): a warning,
    /// so that the row is read again when the source is fixed.
    TruncatedRow = "truncated-row",
    /// A flow gives a value its truncated row hides, and no other citation of the flow gives
    /// it: the value would be invented.
    TruncatedValue = "truncated-value",
    /// A site device leaves one of its profile's `interfaces` without an address and zone.
    UnboundInterface = "unbound-interface",
    UnboundRole = "unbound-role",
    UnboundService = "unbound-service",
    /// A site's `choose:` names a choice group the profile lacks.
    UnknownChoice = "unknown-choice",
    UnknownDevice = "unknown-device",
    UnknownEndpoint = "unknown-endpoint",
    UnknownFeature = "unknown-feature",
    UnknownField = "unknown-field",
    UnknownFlow = "unknown-flow",
    /// A flow's `interface:` or a site device's `interfaces:` key names an interface the
    /// profile does not declare.
    UnknownInterface = "unknown-interface",
    UnknownMode = "unknown-mode",
    UnknownParam = "unknown-param",
    UnknownProfile = "unknown-profile",
    UnknownProtocol = "unknown-protocol",
    UnknownRegion = "unknown-region",
    UnknownService = "unknown-service",
    UnknownSource = "unknown-source",
    UnknownValue = "unknown-value",
    UnknownZone = "unknown-zone",
    /// `compile --resolve`: a name that did not resolve (the CLI reports it).
    UnresolvedName = "unresolved-name",
    UnspecifiedPort = "unspecified-port",
    UnspecifiedProtocol = "unspecified-protocol",
    UnsupportedVersion = "unsupported-version",
    UnusedEndpoint = "unused-endpoint",
    UnusedFeature = "unused-feature",
    UnusedParam = "unused-param",
    UnusedVersion = "unused-version",
    VersionUnknown = "version-unknown",
    WildcardNotLeftmost = "wildcard-not-leftmost",
    YamlSyntax = "yaml-syntax",
    /// A site device gives both its own `zone:`/`addresses:` and per-interface bindings.
    ZoneAndInterfaces = "zone-and-interfaces",
    ZoneWithoutInterface = "zone-without-interface",
}

impl Code {
    /// The code whose text is `s`, if any.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

/// The impls every closed code enum shares (model's [`Code`], mud's): written as its text
/// (`Display`, `Serialize`) and compared with text, from the enum's own `as_str`.
#[macro_export]
macro_rules! code_text_impls {
    ($code:ty) => {
        impl ::std::fmt::Display for $code {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $code {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl PartialEq<str> for $code {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $code {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

code_text_impls!(Code);

/// `NamesNeedDns` → `names-need-dns`: the spelling rule every code's text follows (model's
/// and mud's tests check each variant against it).
#[doc(hidden)]
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_text_is_the_variant_name_in_kebab_case() {
        for c in Code::ALL {
            assert_eq!(c.as_str(), kebab(&format!("{c:?}")));
        }
        assert_eq!(Code::NotUtf8.as_str(), "not-utf8");
        assert_eq!(Code::NamesNeedDns.as_str(), "names-need-dns");
    }

    #[test]
    fn texts_are_unique_sorted_and_parse_back() {
        let texts: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let mut sorted = texts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(texts, sorted);
        for c in Code::ALL {
            assert_eq!(Code::parse(c.as_str()), Some(*c));
        }
        assert_eq!(Code::parse("no-such-code"), None);
    }

    #[test]
    fn json_is_the_kebab_text() {
        let j = serde_json::to_string(&Code::UnknownEndpoint).expect("a string serialises");
        assert_eq!(j, "\"unknown-endpoint\"");
    }
}
