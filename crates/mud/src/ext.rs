//! The `portolan` MUD extension: what MUD cannot say about a profile, carried in the MUD file
//! so that nothing is lost (RFC 8520 section 3.7 lets a file declare extensions in `extensions`
//! and carry their data in the `ietf-mud:mud` container).
//!
//! ```json
//! "ietf-mud:mud": {
//!   ...,
//!   "extensions": ["portolan"],
//!   "portolan:profile": {
//!     "format": 1,
//!     "profile": {"id": "thingpark-lrr", "vendor": "Actility", "product": "…", "sources": […], …},
//!     "mode": {"id": "ipsec", "description": "…"},
//!     "endpoints": [{"id": "slrc", "role": true, "description": "…"}, …],
//!     "flows": [
//!       {"aces": ["i6-0", "i6-1"], "flow": {"id": "i6", "from": "device", "to": "slrc", …}},
//!       {"aces": [], "unexpressed": "wildcard domain *.mbedcloud.com", "flow": {…}}
//!     ]
//!   }
//! }
//! ```
//!
//! Every object inside is written in the profile format (`docs/profile-format.md`), field for
//! field, so the extension says exactly what the profile says:
//!
//! - `profile`: the profile's top-level facts: `portolan` (the edition, written when it is not
//!   1), `id`, `vendor`, `product`, `versions`, `description`, `sources` (with a second-edition
//!   source's `date`, `revision` and `perspective`), `features`, `params`, `alternatives` (with
//!   their `policy`), `listens`, `notes`, `requirements`, and `interfaces` (of a multi-homed
//!   profile, only the interface the file was exported for);
//! - `mode`: the mode the file was exported for, when the profile has modes (the ACLs hold that
//!   mode's flows only);
//! - `endpoints`: the endpoints the flows use (a discovered endpoint with its `discovered`);
//! - `flows`: every flow of the mode (and interface), each with `aces`, the names of the ACEs
//!   that enforce it (in whichever ACL: the from-device and to-device halves share a name), and,
//!   when the file gives it no ACE (unspecified ports or protocol, wildcard domains, params
//!   without default, ARP, a tunnelled flow; a flow not chosen in its choice group or replaced
//!   by another), `aces: []` and `unexpressed` saying why. A flow's second-edition fields that
//!   no ACE can hold (`conditions` with `not`/`any`/`all`, `replaces`, `idle_timeout`,
//!   `keepalive`, `tls`, `url_path`, `auth`, `proxy`, `interface`) are written here as the
//!   profile writes them.
//!
//! The ACLs stay authoritative: the importer uses an extension flow only where its ACEs are
//! exactly what the exporter would write for it; otherwise it warns (`extension-mismatch`) and
//! imports those ACEs on their own. A MUD manager that does not know the extension ignores it
//! and enforces the ACLs, which never allow more than the profile.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The name declared in `extensions`.
pub const NAME: &str = "portolan";
/// The member of `ietf-mud:mud` that holds the extension's data.
pub const MEMBER: &str = "portolan:profile";
/// The version of this extension's format.
pub const FORMAT: u32 = 1;

/// The keys `profile` may hold.
pub const PROFILE_KEYS: &[&str] = &[
    "portolan",
    "id",
    "vendor",
    "product",
    "versions",
    "description",
    "sources",
    "features",
    "params",
    "alternatives",
    "listens",
    "notes",
    "requirements",
    "interfaces",
];

/// `portolan:profile`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Extension {
    pub format: u32,
    pub profile: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Value>,
    #[serde(default)]
    pub endpoints: Vec<Map<String, Value>>,
    #[serde(default)]
    pub flows: Vec<ExtFlow>,
}

/// One flow of the profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExtFlow {
    /// The ACEs that enforce the flow; empty when MUD cannot express it.
    #[serde(default)]
    pub aces: Vec<String>,
    /// Why the flow has no ACE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unexpressed: Option<String>,
    /// The flow, in the profile format.
    pub flow: Map<String, Value>,
}

impl Extension {
    /// Checks what serde cannot: the format version and the keys of `profile`.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.format != FORMAT {
            return Err((
                "/format".into(),
                format!(
                    "format {} is not known (this Portolan reads {FORMAT})",
                    self.format
                ),
            ));
        }
        for k in self.profile.keys() {
            if !PROFILE_KEYS.contains(&k.as_str()) {
                return Err((
                    format!("/profile/{k}"),
                    format!("`{k}` is not a top-level profile field the extension carries"),
                ));
            }
        }
        for (i, f) in self.flows.iter().enumerate() {
            if !f.flow.get("id").is_some_and(Value::is_string) {
                return Err((format!("/flows/{i}/flow/id"), "a flow needs an id".into()));
            }
        }
        Ok(())
    }
}
