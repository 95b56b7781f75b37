//! mcp-authn: OAuth 2.1 resource-server protection for MCP servers, as a Proxy-Wasm filter.
//!
//! `core` decides every request from plain inputs and is tested natively; `host` (wasm32 only)
//! turns those decisions into proxy-wasm hostcalls.

pub mod core;

// Signing is for tests and the checker, never in the filter; debug wasm32 builds keep it so
// that the verifier tests (and the checker binary they build) also run on wasm32, and the
// `sign` feature for the V8 timing of `examples/verify_cost`.
#[cfg(any(not(target_arch = "wasm32"), debug_assertions, feature = "sign"))]
pub mod sign;

#[cfg(target_arch = "wasm32")]
mod host;
