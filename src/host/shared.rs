//! The JWKS in proxy-wasm shared data, so every worker VM uses one copy and one fetch.
//!
//! Three entries per key source: `state` (small: [`FetchState`]), `body` (the JWKS JSON) and
//! `lease` (`owner|deadline_ms`, taken with compare-and-swap so one worker fetches at a time).

use proxy_wasm::hostcalls::{get_shared_data, set_shared_data};

use crate::core::refresh::FetchState;

pub struct SharedJwks {
    state_key: String,
    body_key: String,
    lease_key: String,
}

impl SharedJwks {
    /// Entries are named by a hash of what identifies the key source. Creates the lease
    /// entry when it is missing: the host's compare-and-swap checks nothing on a missing
    /// key, so two workers could both take a lease that does not exist yet. Workers are
    /// configured before the listener takes traffic, so the entry exists before any fetch.
    pub fn new(identity: &str) -> Self {
        let base = format!("mcp_authn.jwks.{:016x}", fnv1a(identity.as_bytes()));
        let shared = Self {
            state_key: format!("{base}.state"),
            body_key: format!("{base}.body"),
            lease_key: format!("{base}.lease"),
        };
        shared.create_lease_entry();
        shared
    }

    /// The shared fetch state; default when nothing was fetched yet.
    pub fn state(&self) -> FetchState {
        match get_shared_data(&self.state_key) {
            Ok((Some(bytes), _)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => FetchState::default(),
        }
    }

    pub fn body(&self) -> Option<Vec<u8>> {
        get_shared_data(&self.body_key)
            .ok()
            .and_then(|(body, _)| body)
    }

    /// Publishes a successful fetch: body first, then the state that announces it.
    pub fn publish(&self, body: Option<&[u8]>, state: &FetchState) {
        if let Some(body) = body
            && let Err(status) = set_shared_data(&self.body_key, Some(body), None)
        {
            log::warn!("mcp_authn: storing the JWKS in shared data failed: {status:?}");
        }
        if let Ok(encoded) = serde_json::to_vec(state) {
            let _ = set_shared_data(&self.state_key, Some(&encoded), None);
        }
    }

    /// Takes the fetch lease until `deadline_ms` unless another live owner holds it.
    pub fn try_lease(&self, owner: &str, now_ms: u64, deadline_ms: u64) -> bool {
        // Without a version to compare against, setting would not be atomic.
        let entry = match get_shared_data(&self.lease_key) {
            Ok((_, None)) => {
                self.create_lease_entry();
                get_shared_data(&self.lease_key)
            }
            entry => entry,
        };
        let Ok((current, Some(cas))) = entry else {
            return false;
        };
        if let Some(current) = current.as_deref().and_then(|v| std::str::from_utf8(v).ok())
            && let Some((holder, until)) = current.split_once('|')
            && holder != owner
            && until.parse::<u64>().is_ok_and(|until| until > now_ms)
        {
            return false;
        }
        let value = format!("{owner}|{deadline_ms}");
        set_shared_data(&self.lease_key, Some(value.as_bytes()), Some(cas)).is_ok()
    }

    fn create_lease_entry(&self) {
        if let Ok((None, None)) = get_shared_data(&self.lease_key) {
            let _ = set_shared_data(&self.lease_key, Some(b""), None);
        }
    }

    /// Gives the lease back (only if still ours).
    pub fn release(&self, owner: &str) {
        if let Ok((Some(current), cas)) = get_shared_data(&self.lease_key)
            && current.starts_with(format!("{owner}|").as_bytes())
        {
            let _ = set_shared_data(&self.lease_key, Some(b""), cas);
        }
    }
}

/// FNV-1a: a stable, dependency-free name hash (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
