//! JWKS fetching through the host: `dispatch_http_call` to the configured cluster (for the
//! JWKS, or the provider metadata that names it), and reading the answer back with bounds.

use std::time::Duration;

use proxy_wasm::hostcalls::{dispatch_http_call, get_buffer};
use proxy_wasm::types::{BufferType, MapType, Status};

use super::headers;
use crate::core::keyfetch::Fetched;
use crate::core::refresh::RemoteJwks;
use crate::core::url::HttpUrl;

/// A JWKS (or metadata document) larger than this is refused without reading it.
pub const MAX_JWKS_BYTES: usize = 512 * 1024;

/// Starts a GET of `url` through the key source's cluster; the answer arrives in
/// `on_http_call_response` of the calling context.
pub fn dispatch(jwks: &RemoteJwks, url: &HttpUrl) -> Result<u32, Status> {
    let headers = vec![
        (":method", "GET"),
        (":path", url.path_and_query.as_str()),
        (":authority", url.authority.as_str()),
        (":scheme", url.scheme.as_str()),
        ("accept", "application/json, application/jwk-set+json"),
        ("user-agent", "mcp-authn-wasm"),
    ];
    dispatch_http_call(
        &jwks.cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(jwks.timeout_ms),
    )
}

/// Reads the current call's response (valid only inside `on_http_call_response`): the body
/// and its `Cache-Control`, or why it is unusable.
pub fn read_response(body_size: usize) -> Result<Fetched, String> {
    let status = headers::value(MapType::HttpCallResponseHeaders, ":status").unwrap_or_default();
    if status != "200" {
        // Envoy answers 503 for an unreachable upstream and 504 after the timeout.
        return Err(if status.is_empty() {
            "no response (connection failed or reset)".to_string()
        } else {
            format!("HTTP status {status}")
        });
    }
    if body_size > MAX_JWKS_BYTES {
        return Err(format!(
            "body of {body_size} bytes exceeds {MAX_JWKS_BYTES}"
        ));
    }
    let body = get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    let cache_control = headers::value(MapType::HttpCallResponseHeaders, "cache-control");
    Ok(Fetched {
        body,
        cache_control,
    })
}
