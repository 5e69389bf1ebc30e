//! The crate's one error type.

use portolan_model::Diagnostic;

use crate::problem::Problem;

/// Why a MUD file could not be imported or exported, or a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum MudError {
    /// The bytes are not JSON, or a member has the wrong JSON type.
    #[error("{path}: {reason}")]
    Json { path: String, reason: String },
    /// The file is refused: every error found (and the warnings seen on the way).
    #[error("the MUD file is refused: {} error(s)", .problems.iter().filter(|p| p.is_error()).count())]
    Refused { problems: Vec<Problem> },
    /// The profile built from the file does not validate (see `docs/profile-format.md`).
    #[error("the profile built from the MUD file does not validate: {} problem(s)", .diagnostics.len())]
    Profile {
        diagnostics: Vec<Diagnostic>,
        /// The profile text that failed, for a person to inspect.
        yaml: String,
    },
    /// The export options or the profile cannot make a MUD file.
    #[error("{0}")]
    Export(String),
    /// The signature, certificate or trust anchor could not be read.
    #[error("cannot read {what}: {reason}")]
    SignatureInput { what: &'static str, reason: String },
    /// The signature was read and does not verify: bad signature, untrusted or wrong signer,
    /// expired certificate.
    #[error("signature refused: {0}")]
    SignatureRefused(String),
}

impl MudError {
    pub(crate) fn json(path: impl Into<String>, reason: impl Into<String>) -> Self {
        MudError::Json {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        MudError::SignatureRefused(reason.into())
    }
}
