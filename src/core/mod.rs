//! The host-independent core: plain inputs in, plain decisions out.
//!
//! Nothing here calls a proxy-wasm hostcall or reads a clock; time is a parameter.
//! The host layer (`crate::host`, wasm32 only) and the native checker both drive it.

pub mod alg;
pub mod authz;
pub mod claims;
pub mod config;
pub mod decision;
pub mod discovery;
pub mod error;
pub mod jwks;
pub mod metadata;
pub mod metric;
pub mod provider;
pub mod refresh;
pub mod reply;
pub mod request;
pub mod rfc9207;
#[cfg(test)]
pub(crate) mod testkit;
pub mod token;
pub mod token_cache;
pub mod url;
pub mod verify;
/// The RS* and ES256 verifiers live in their own crate (crates/jws-verify), to be audited and
/// versioned on their own; re-exported under their former paths.
pub use jws_verify::{ecdsa_p256, rsa_pkcs1};
