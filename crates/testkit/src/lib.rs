//! What Portolan's tests share, in one place (a dev-dependency only, never published):
//!
//! - [`cmd`]: running a program from an argument vector (never a shell), `run` returning its
//!   standard output or an error that carries the command line and its standard error, `must`
//!   panicking with the same message;
//! - [`netns`]: network namespaces with unique names (`pl<pid><hex>-<role>`, the lab's own
//!   convention, so the lab's leftover checks see them too), removed when dropped — also when
//!   the test panics — with veth pairs made inside them, never in the machine's namespace;
//!   processes stopped when dropped; waiting for a condition with a limit;
//! - [`openssl`]: a CA and a leaf certificate, and `openssl s_server` (TLS or DTLS 1.2)
//!   inside a namespace, ready when it accepts;
//! - [`kernel`]: the one skip policy of kernel tests, and the turn they take;
//! - [`lab`]: the required rows of a `lab --format json` document;
//! - [`profiles`]: one [`ProfileSource`](portolan_model::compile::ProfileSource) for every
//!   test: the shipped catalog, profiles given inline, profile files beside a site, and a
//!   fallback the test supplies.
//!
//! # The skip policy of kernel tests
//!
//! A kernel test never returns early and passes. A `#[test]` that cannot create a namespace
//! (not root, no `ip`) **fails**, naming what is missing: libtest has no way to report a
//! skip decided at run time, and CI runs as root. Only a data-driven binary
//! (`harness = false`, libtest-mimic) skips, and only where the kernel truly lacks a feature
//! ([`kernel::lacks`]: namespaces or nf_tables): it prints one loud banner and reports every
//! trial as *ignored* with the reason, so the run's summary counts them.

pub mod cmd;
pub mod kernel;
pub mod lab;
pub mod netns;
pub mod openssl;
pub mod profiles;

pub use cmd::{must, run};
pub use netns::{Net, Netns, Procs};
pub use profiles::Profiles;
