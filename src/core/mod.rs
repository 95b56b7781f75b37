//! The host-independent core: plain inputs in, plain decisions out.
//!
//! Nothing here calls a proxy-wasm hostcall or reads a clock; time is a parameter.
//! The host layer (`crate::host`, wasm32 only) and the native checker both drive it.
//!
//! Public: what the checker (`src/bin`), the fuzz targets, the examples and the integration
//! tests use, and the modules only the host uses (`discovery`, `provider`, `refresh`,
//! `rfc9207`): the host is compiled for wasm32 only, so a native build would see those as
//! dead code. `claims` and `metric` are reached only through the types that carry them.

pub mod alg;
pub mod authz;
pub(crate) mod claims;
pub mod config;
pub mod decision;
pub mod discovery;
pub mod error;
pub mod jwks;
pub mod keyfetch;
pub mod metadata;
pub(crate) mod metric;
pub mod provider;
pub mod refresh;
pub mod reply;
pub mod request;
pub mod rfc9207;
pub mod servers;
#[cfg(test)]
pub(crate) mod testkit;
pub mod token;
pub mod token_cache;
pub mod url;
pub mod verify;
/// The RS* and ES256 verifiers live in their own crate (crates/jws-verify), to be audited and
/// versioned on their own; re-exported under their former paths.
pub use jws_verify::{ecdsa_p256, rsa_pkcs1};
