//! Errors of the verify crate.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The JSON is not a libnftables-json document this crate can read.
    #[error("ruleset JSON: {0}")]
    Json(String),
    /// The ruleset refers to something it does not declare (a set, a chain).
    #[error("ruleset: {0}")]
    Ruleset(String),
    #[error("site: {0}")]
    Site(String),
}

pub type Result<T> = std::result::Result<T, Error>;
