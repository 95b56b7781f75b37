//! The key source's entries in shared data: `state` (small: [`FetchState`]), `body` (the JWKS
//! JSON) and `lease` (`owner|deadline_ms`, taken with compare-and-swap so one worker fetches at
//! a time).

use crate::core::refresh::FetchState;

/// Proxy-wasm shared data, as Envoy implements it.
pub trait SharedData {
    /// An entry's value and compare-and-swap version; `(None, None)` when it is missing.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Sets an entry. With `cas`, fails when the entry changed since that version was read.
    /// As in Envoy, `None` always succeeds, and so does any `cas` on a missing entry.
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), String>;
}

pub(super) struct Entries {
    state: String,
    body: String,
    lease: String,
}

impl Entries {
    /// Entries are named by a hash of what identifies the key source.
    pub(super) fn new(identity: &str) -> Self {
        let base = format!("mcp_authn.jwks.{:016x}", fnv1a(identity.as_bytes()));
        Self {
            state: format!("{base}.state"),
            body: format!("{base}.body"),
            lease: format!("{base}.lease"),
        }
    }

    /// The shared fetch state; default when nothing was fetched yet.
    pub(super) fn state(&self, host: &impl SharedData) -> FetchState {
        match host.get(&self.state) {
            (Some(bytes), _) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => FetchState::default(),
        }
    }

    pub(super) fn body(&self, host: &impl SharedData) -> Option<Vec<u8>> {
        host.get(&self.body).0
    }

    /// Publishes an attempt: the body first (if it changed), then the state that announces it.
    /// `Err` when the body could not be stored.
    pub(super) fn publish(
        &self,
        host: &mut impl SharedData,
        body: Option<&[u8]>,
        state: &FetchState,
    ) -> Result<(), String> {
        let stored = match body {
            Some(body) => host.set(&self.body, body, None),
            None => Ok(()),
        };
        if let Ok(encoded) = serde_json::to_vec(state) {
            let _ = host.set(&self.state, &encoded, None);
        }
        stored
    }

    pub(super) fn create_lease(&self, host: &mut impl SharedData) {
        if let (None, None) = host.get(&self.lease) {
            let _ = host.set(&self.lease, b"", None);
        }
    }

    /// Takes the fetch lease until `deadline_ms` unless another live owner holds it.
    pub(super) fn try_lease(
        &self,
        host: &mut impl SharedData,
        owner: &str,
        now_ms: u64,
        deadline_ms: u64,
    ) -> bool {
        // Without a version to compare against, setting would not be atomic.
        let entry = match host.get(&self.lease) {
            (_, None) => {
                self.create_lease(host);
                host.get(&self.lease)
            }
            entry => entry,
        };
        let (current, Some(cas)) = entry else {
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
        host.set(&self.lease, value.as_bytes(), Some(cas)).is_ok()
    }

    /// Gives the lease back (only if still ours).
    pub(super) fn release(&self, host: &mut impl SharedData, owner: &str) {
        if let (Some(current), cas) = host.get(&self.lease)
            && current.starts_with(format!("{owner}|").as_bytes())
        {
            let _ = host.set(&self.lease, b"", cas);
        }
    }
}

/// FNV-1a: a stable, dependency-free name hash (not a security boundary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
