//! Portolan's data model: the profile format (what a device type needs), its validation with
//! precise diagnostics, and the shipped catalog. No I/O beyond reading files, no async.

mod cast;
pub mod catalog;
pub mod compile;
pub mod diag;
mod document;
mod error;
pub mod icmp;
pub mod inventory;
pub mod ir;
pub mod mac;
pub mod ports;
pub mod profile;
pub mod protocol;
pub mod raw;
pub mod raw_site;
mod site_schema;
pub mod suggest;
pub mod syntax;
pub mod validate;
pub mod work;

pub use diag::{Code, Diagnostic, Pos, Severity, Subject};
pub use error::ProfileError;
pub use ports::{PortItem, PortSpec};
pub use profile::*;
pub use protocol::Protocol;

/// JSON Schema of the profile file format, for editors.
pub fn profile_schema() -> schemars::Schema {
    schemars::schema_for!(Profile)
}

/// JSON Schema of the site file format, for editors.
pub fn site_schema() -> schemars::Schema {
    schemars::schema_for!(site_schema::Site)
}
