//! Errors of the back ends.

/// Why a policy could not be emitted for a target.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// A string that would reach the output is not safe there (a validation gap upstream).
    #[error("unsafe {what} `{value}` refused by the {target} back end")]
    Unsafe {
        target: &'static str,
        what: &'static str,
        value: String,
    },
    /// The policy needs something the target cannot express.
    #[error("{target} cannot express {what}")]
    Unsupported { target: &'static str, what: String },
}
