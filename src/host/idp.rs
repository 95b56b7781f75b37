//! Calls to the fronted identity provider: metadata (cached in shared data) and registration,
//! through `dispatch_http_call`; the answer is shaped by `core::provider::finish`.

use std::time::Duration;

use proxy_wasm::hostcalls::{dispatch_http_call, get_buffer, get_shared_data, set_shared_data};
use proxy_wasm::types::{BufferType, MapType};

use super::headers;
use crate::core::config::Config;
use crate::core::provider::{self, IdpAnswer, IdpCall, IdpCallKind, MAX_METADATA_BYTES};
use crate::core::refresh::max_age;
use crate::core::reply::LocalReply;

/// Adapted metadata is recomputed per request, but the provider is asked at most this often.
const METADATA_TTL_RANGE_SECS: (u64, u64) = (60, 3_600);

/// How a provider call started.
pub enum Started {
    /// Answered at once (cached metadata, or the call could not start).
    Reply(LocalReply),
    /// Waiting for `on_http_call_response` with this token.
    Waiting(u32),
}

/// Starts `call`, with the client's `body` and (for registration) its own headers.
pub fn start(
    config: &Config,
    call: &IdpCall,
    body: &[u8],
    client_headers: &[(String, String)],
    now_ms: u64,
) -> Started {
    if let IdpCallKind::Metadata { .. } = call.kind
        && let Some(cached) = cached_metadata(call, now_ms)
    {
        let answer = IdpAnswer::Response {
            status: 200,
            content_type: None,
            body: &cached,
        };
        return Started::Reply(provider::finish(
            config.provider.as_ref(),
            &call.kind,
            answer,
        ));
    }
    let mut headers = vec![
        (":method", call.method),
        (":path", call.path.as_str()),
        (":authority", call.authority.as_str()),
        ("accept", "application/json"),
    ];
    // Registration may carry an initial access token meant for the provider itself.
    for (name, value) in client_headers {
        if call.needs_body && (name == "content-type" || name == "authorization") {
            headers.push((name.as_str(), value.as_str()));
        }
    }
    let body = call.needs_body.then_some(body);
    match dispatch_http_call(
        &call.cluster,
        headers,
        body,
        vec![],
        Duration::from_millis(call.timeout_ms),
    ) {
        Ok(token) => Started::Waiting(token),
        Err(status) => {
            log::warn!(
                "mcp_authn: call to provider cluster {:?} could not start: {status:?}",
                call.cluster
            );
            Started::Reply(provider::finish(
                config.provider.as_ref(),
                &call.kind,
                IdpAnswer::Unavailable("dispatch failed"),
            ))
        }
    }
}

/// Reads the provider's answer (inside `on_http_call_response`) and shapes the reply.
pub fn complete(config: &Config, call: &IdpCall, body_size: usize, now_ms: u64) -> LocalReply {
    let status = headers::value(MapType::HttpCallResponseHeaders, ":status")
        .and_then(|s| s.parse::<u32>().ok());
    let content_type = headers::value(MapType::HttpCallResponseHeaders, "content-type");
    let Some(status) = status else {
        log::warn!(
            "mcp_authn: provider call to {}{} got no response",
            call.authority,
            call.path
        );
        return provider::finish(
            config.provider.as_ref(),
            &call.kind,
            IdpAnswer::Unavailable("no response"),
        );
    };
    if body_size > MAX_METADATA_BYTES {
        log::warn!("mcp_authn: provider answer of {body_size} bytes is too large");
        let answer = IdpAnswer::Response {
            status: 502,
            content_type: None,
            body: b"",
        };
        return provider::finish(config.provider.as_ref(), &call.kind, answer);
    }
    let body = get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    if status != 200 {
        log::warn!(
            "mcp_authn: provider answered {status} for {}{}",
            call.authority,
            call.path
        );
    }
    let answer = IdpAnswer::Response {
        status,
        content_type: content_type.as_deref(),
        body: &body,
    };
    let reply = provider::finish(config.provider.as_ref(), &call.kind, answer);
    // Only metadata the filter could adapt is cached, so a bad answer is retried next time.
    if reply.status == 200 && matches!(call.kind, IdpCallKind::Metadata { .. }) {
        let cache_control = headers::value(MapType::HttpCallResponseHeaders, "cache-control");
        store_metadata(call, &body, cache_control.as_deref(), now_ms);
    }
    reply
}

fn cache_key(call: &IdpCall) -> String {
    format!(
        "mcp_authn.idp.{}|{}{}",
        call.cluster, call.authority, call.path
    )
}

/// The provider's raw metadata, while fresh: `expires_ms` then a newline then the body.
fn cached_metadata(call: &IdpCall, now_ms: u64) -> Option<Vec<u8>> {
    let (value, _) = get_shared_data(&cache_key(call)).ok()?;
    let value = value?;
    let split = value.iter().position(|b| *b == b'\n')?;
    let (head, rest) = value.split_at(split);
    let expires_ms: u64 = std::str::from_utf8(head).ok()?.parse().ok()?;
    (now_ms < expires_ms).then(|| rest.iter().skip(1).copied().collect())
}

fn store_metadata(call: &IdpCall, body: &[u8], cache_control: Option<&str>, now_ms: u64) {
    let (min, max) = METADATA_TTL_RANGE_SECS;
    let ttl_secs = max_age(cache_control).unwrap_or(300).clamp(min, max);
    let expires_ms = now_ms.saturating_add(ttl_secs.saturating_mul(1000));
    let mut value = format!("{expires_ms}\n").into_bytes();
    value.extend_from_slice(body);
    let _ = set_shared_data(&cache_key(call), Some(&value), None);
}
