//! Proxy-wasm counters, one per outcome; Envoy shows them in `/stats`.

use proxy_wasm::hostcalls::{define_metric, increment_metric};
use proxy_wasm::types::MetricType;

use crate::core::decision::Outcome;

const DENIAL_REASONS: [&str; 13] = [
    "missing",
    "invalid_request",
    "malformed",
    "unsupported_alg",
    "unknown_kid",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "issuer",
    "audience",
    "missing_claim",
    "invalid_claim",
    "keys_unavailable",
];

/// Counter ids of this VM.
pub struct Metrics {
    allowed: u32,
    passed_unauthenticated: u32,
    denied: Vec<(&'static str, u32)>,
    pub jwks_fetch_success: u32,
    pub jwks_fetch_failure: u32,
    pub jwks_refetch_unknown_kid: u32,
    /// Tokens answered from the verified-token cache (a drop in its rate after a JWKS
    /// refetch means the cache was flushed).
    pub token_cache_hit: u32,
}

impl Metrics {
    /// Defines every counter; `None` if the host refuses (then stats are simply absent).
    pub fn define() -> Option<Self> {
        let counter =
            |name: &str| define_metric(MetricType::Counter, &format!("mcp_authn.{name}")).ok();
        let mut denied = Vec::with_capacity(DENIAL_REASONS.len());
        for reason in DENIAL_REASONS {
            denied.push((reason, counter(&format!("denied.{reason}"))?));
        }
        Some(Self {
            allowed: counter("allowed")?,
            passed_unauthenticated: counter("passed_unauthenticated")?,
            denied,
            jwks_fetch_success: counter("jwks_fetch.success")?,
            jwks_fetch_failure: counter("jwks_fetch.failure")?,
            jwks_refetch_unknown_kid: counter("jwks_refetch.unknown_kid")?,
            token_cache_hit: counter("token_cache.hit")?,
        })
    }

    pub fn count(&self, outcome: &Outcome) {
        let id = match outcome {
            Outcome::Allowed { .. } => self.allowed,
            Outcome::Unauthenticated { .. } => self.passed_unauthenticated,
            Outcome::Denied(denial) => {
                let reason = denial.metric();
                match self.denied.iter().find(|(name, _)| *name == reason) {
                    Some((_, id)) => *id,
                    None => return,
                }
            }
            Outcome::Public => return,
        };
        bump(id);
    }
}

pub fn bump(id: u32) {
    let _ = increment_metric(id, 1);
}
