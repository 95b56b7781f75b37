//! mcp-authn: OAuth 2.1 resource-server protection for MCP servers, as a Proxy-Wasm filter.
//!
//! `core` decides every request from plain inputs and is tested natively; `host` (wasm32 only)
//! turns those decisions into proxy-wasm hostcalls.

pub mod core;

#[cfg(not(target_arch = "wasm32"))]
pub mod sign;

#[cfg(target_arch = "wasm32")]
mod host;
