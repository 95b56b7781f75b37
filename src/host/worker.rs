//! State one worker VM shares between its root and HTTP contexts: the config, the verified-token
//! cache, and the key-fetch state machine (`core::keyfetch`), whose effects are carried out here.

use crate::core::config::{Config, KeySource};
use crate::core::decision::{Decision, Final, KeyState, Keys, Paused, decide};
use crate::core::keyfetch::{Effects, Fetched, KeyFetch, Note, Pending, Wait};
use crate::core::metric::Metric;
use crate::core::request::Request;
use crate::core::token_cache::TokenCache;

use super::body;
use super::metrics::Metrics;
use super::shared::Hostcalls;

pub struct Worker {
    pub config: Config,
    pub metrics: Option<Metrics>,
    /// Verified tokens; cleared whenever the local keys change.
    pub token_cache: TokenCache,
    remote: Option<Remote>,
}

struct Remote {
    keys: KeyFetch<Waiting>,
    host: Hostcalls,
}

/// A request paused for keys: what deciding and resuming it needs.
pub struct Waiting {
    pub request: Request,
    pub paused: Paused,
    pub exchange: body::Shared,
}

/// A paused request whose wait is over.
pub type Ready = Pending<Waiting>;

impl Worker {
    pub fn new(config: Config, owner: String) -> Self {
        let remote = match &config.keys {
            KeySource::Inline(_) => None,
            KeySource::Remote(jwks) => {
                let mut host = Hostcalls { jwks: jwks.clone() };
                let keys = KeyFetch::new(
                    jwks,
                    &config.claims.issuer,
                    config.key_policy,
                    owner,
                    &mut host,
                );
                Some(Remote { keys, host })
            }
        };
        Self {
            token_cache: TokenCache::new(config.token_cache),
            config,
            metrics: Metrics::define(),
            remote,
        }
    }

    /// Before a first decision: a worker without keys looks whether another one has them.
    pub fn prepare_keys(&mut self) {
        if let Some(remote) = self.remote.as_mut() {
            let fx = remote.keys.prepare(&remote.host);
            self.carry_out(fx);
        }
    }

    /// A request's first decision: the verified-token cache answers repeats, and fetching
    /// (or refetching for an unknown `kid`) is allowed.
    pub fn decide(&mut self, request: &Request, now_ms: u64) -> Decision {
        let keys = match (&self.config.keys, &self.remote) {
            (KeySource::Inline(set), _) => KeyState::Ready {
                keys: set,
                may_refetch: false,
            },
            (_, Some(remote)) => match remote.keys.keys() {
                Some(keys) => KeyState::Ready {
                    keys,
                    may_refetch: remote.keys.may_refetch(now_ms),
                },
                None => KeyState::Missing {
                    may_fetch: remote.keys.may_fetch(now_ms),
                },
            },
            (_, None) => KeyState::Missing { may_fetch: false },
        };
        let hits = self.token_cache.hits();
        let keys = Keys {
            state: keys,
            cache: Some(&mut self.token_cache),
        };
        let decision = decide(&self.config, request, keys, now_ms / 1000);
        if let Some(m) = &self.metrics
            && self.token_cache.hits() != hits
        {
            m.bump(Metric::TokenCacheHit);
        }
        decision
    }

    /// Decides a request after its wait for keys, with whatever keys are there now.
    pub fn resume(&self, paused: Paused, request: &Request, now_ms: u64) -> Final {
        let keys = match (&self.config.keys, &self.remote) {
            (KeySource::Inline(set), _) => Some(set.as_ref()),
            (_, Some(remote)) => remote.keys.keys(),
            (_, None) => None,
        };
        paused.resume(&self.config, request, keys, now_ms / 1000)
    }

    /// Picks up keys another worker published. Returns whether the local keys changed.
    pub fn sync(&mut self) -> bool {
        let Some(remote) = self.remote.as_mut() else {
            return false;
        };
        let fx = remote.keys.sync(&remote.host);
        let changed = fx.keys_changed;
        self.carry_out(fx);
        changed
    }

    /// Pauses a request until the keys arrive, starting a fetch unless one is under way (here
    /// or on another worker). Returns `false` when no fetch will come: decide it now.
    pub fn wait_for_keys(&mut self, context_id: u32, waiting: Waiting, now_ms: u64) -> bool {
        let Some(remote) = self.remote.as_mut() else {
            return false;
        };
        let (wait, fx) = remote
            .keys
            .request_keys(&mut remote.host, context_id, waiting, now_ms);
        self.carry_out(fx);
        matches!(wait, Wait::Paused)
    }

    /// The tick: picks up published keys, refreshes when due. Returns the requests to resume.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Ready> {
        let Some(remote) = self.remote.as_mut() else {
            return Vec::new();
        };
        let fx = remote.keys.tick(&mut remote.host, now_ms);
        self.carry_out(fx)
    }

    /// Handles the answer to a call of this VM. Returns the requests to resume.
    pub fn complete_fetch(
        &mut self,
        token: u32,
        response: Result<Fetched, String>,
        now_ms: u64,
    ) -> Vec<Ready> {
        let Some(remote) = self.remote.as_mut() else {
            return Vec::new();
        };
        let fx = remote
            .keys
            .answer(&mut remote.host, token, response, now_ms);
        self.carry_out(fx)
    }

    /// Drops a request whose stream ended while it waited.
    pub fn forget(&mut self, context_id: u32) {
        if let Some(remote) = self.remote.as_mut() {
            remote.keys.forget(context_id);
        }
    }

    /// Clears the token cache when the keys changed, logs and counts; returns the requests
    /// to resume.
    fn carry_out(&mut self, fx: Effects<Waiting>) -> Vec<Ready> {
        if fx.keys_changed {
            self.token_cache.clear();
        }
        for note in &fx.notes {
            if let (Some(m), Some(metric)) = (&self.metrics, note.metric()) {
                m.bump(metric);
            }
            match note {
                Note::Fetched => {}
                Note::Failed(message) | Note::Warn(message) => log::warn!("mcp_authn: {message}"),
                Note::Info(message) => log::info!("mcp_authn: {message}"),
            }
        }
        fx.resume
    }
}
