//! Sending the core's local replies: shared by the header path (`http.rs`) and the body path
//! (`body.rs`), so neither imports the other.

use proxy_wasm::hostcalls;

use crate::core::reply::LocalReply;

/// Sends a local reply on the current stream.
pub fn send(reply: &LocalReply) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let _ = hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes()));
}
