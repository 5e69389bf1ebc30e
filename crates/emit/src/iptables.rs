//! iptables back end (being written): `iptables-restore` and `ipset restore` input.

use portolan_model::ir::Policy;

use crate::{EmitError, Options};

pub fn emit(_policy: &Policy, _opts: &Options) -> Result<String, EmitError> {
    Err(EmitError::Unsupported {
        target: "iptables",
        what: "anything yet".into(),
    })
}
