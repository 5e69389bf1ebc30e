//! MUD (Manufacturer Usage Description, RFC 8520) files for Portolan: import a MUD file as a
//! profile, export a profile (one mode of it) as a MUD file, and verify a MUD file's detached
//! CMS signature.
//!
//! - [`import()`] is lenient with what real MUD files do (draft-era names, hex ethertypes,
//!   ranges with operators, …: see [`repair`]) and says what it repaired, each warning with
//!   the JSON path concerned; [`ImportOptions::strict`] turns every deviation from RFC 8519 /
//!   RFC 8520 into an error. The profile it builds is validated with
//!   [`portolan_model::validate::profile_text`] before it is returned.
//! - [`export()`] writes RFC 8520 JSON (RFC 7951 encoding) whose ACLs never allow more than
//!   the profile; what MUD cannot say travels in the `portolan` extension ([`ext`]) or is
//!   reported as a warning. Output is deterministic ([`timestamp`]).
//! - [`verify()`] checks a detached CMS `SignedData` (RFC 8520 section 13) with the RustCrypto
//!   crates ([`verify`] says which and why).
//!
//! The MUD and ACL JSON are typed serde structs ([`schema`]), one per YANG container.

pub mod code;
pub mod direction;
pub mod dn;
pub mod error;
pub mod export;
pub mod ext;
pub mod icmp;
pub mod import;
pub mod peers;
pub mod problem;
pub mod repair;
pub mod rules;
pub mod schema;
pub mod timestamp;
pub mod verify;

pub use code::Code;
pub use error::MudError;
pub use export::{export, ExportOptions, Exported};
pub use import::{import, ImportOptions, Imported};
pub use problem::Problem;
pub use verify::{verify, Verified, VerifyOptions};
