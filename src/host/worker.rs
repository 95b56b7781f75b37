//! State one worker VM shares between its root and HTTP contexts: the config, the parsed keys,
//! the fetch in flight, and the requests paused until keys arrive.

use std::sync::Arc;

use crate::core::config::{Config, KeySource};
use crate::core::decision::{Decision, Final, KeyState, Keys, Paused, decide};
use crate::core::discovery;
use crate::core::jwks::{KeyPolicy, KeySet};
use crate::core::metric::Metric;
use crate::core::refresh::{FetchState, JwksLocation, RemoteJwks};
use crate::core::request::Request;
use crate::core::token_cache::TokenCache;
use crate::core::url::HttpUrl;

use super::fetch::{self, Fetched};
use super::metrics::Metrics;
use super::shared::SharedJwks;

/// How long past the fetch timeout a paused request waits before it is decided anyway.
const PENDING_GRACE_MS: u64 = 500;

pub struct Worker {
    pub config: Config,
    pub metrics: Option<Metrics>,
    /// Verified tokens; cleared whenever the local keys change.
    pub token_cache: TokenCache,
    remote: Option<RemoteKeys>,
    pending: Vec<Pending>,
}

/// Keys fetched through the host, cached in shared data and parsed once per version here.
struct RemoteKeys {
    jwks: RemoteJwks,
    issuer: String,
    /// The URL found through discovery; forgotten when a fetch from it fails.
    discovered: Option<HttpUrl>,
    shared: SharedJwks,
    owner: String,
    local: Option<(u64, Arc<KeySet>)>,
    policy: KeyPolicy,
    state: FetchState,
    in_flight: Option<(u32, Stage)>,
}

/// What a call in flight asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The provider metadata, for its `jwks_uri`.
    Discovery,
    Keys,
}

/// What asking for a fetch came to.
enum FetchStart {
    /// A fetch is under way, here or on another worker: wait for it.
    InFlight,
    /// Another worker's fetch ended since this one looked; its result stands.
    Settled { keys_changed: bool },
    /// No fetch could be started: decide with what is there.
    Failed,
}

/// A request paused until a fetch ends.
pub struct Pending {
    pub context_id: u32,
    pub request: Request,
    pub paused: Paused,
    since_ms: u64,
    deadline_ms: u64,
}

impl Worker {
    pub fn new(config: Config, owner: String) -> Self {
        let remote = match &config.keys {
            KeySource::Inline(_) => None,
            KeySource::Remote(jwks) => {
                let identity = format!(
                    "{}|{}|{}",
                    config.claims.issuer,
                    jwks.cluster,
                    jwks.location.describe()
                );
                Some(RemoteKeys {
                    jwks: jwks.clone(),
                    issuer: config.claims.issuer.clone(),
                    discovered: None,
                    shared: SharedJwks::new(&identity),
                    owner,
                    local: None,
                    policy: config.key_policy,
                    state: FetchState::default(),
                    in_flight: None,
                })
            }
        };
        Self {
            token_cache: TokenCache::new(config.token_cache),
            config,
            metrics: Metrics::define(),
            remote,
            pending: Vec::new(),
        }
    }

    /// Before a first decision: a worker without keys looks whether another one has them.
    pub fn prepare_keys(&mut self) {
        if let Some(remote) = self.remote.as_mut()
            && remote.local.is_none()
            && remote.sync()
        {
            self.token_cache.clear();
        }
    }

    /// A request's first decision: the verified-token cache answers repeats, and fetching
    /// (or refetching for an unknown `kid`) is allowed.
    pub fn decide(&mut self, request: &Request, now_ms: u64) -> Decision {
        let keys = match (&self.config.keys, self.remote.as_ref()) {
            (KeySource::Inline(set), _) => KeyState::Ready {
                keys: set,
                may_refetch: false,
            },
            (_, Some(remote)) => match &remote.local {
                Some((_, keys)) => KeyState::Ready {
                    keys,
                    may_refetch: remote.state.may_refetch_for_kid(&remote.jwks, now_ms),
                },
                // After a failed fetch, requests wait for the backoff like the tick does, so
                // an IdP outage is not turned into a fetch per request.
                None => KeyState::Missing {
                    may_fetch: remote.state.failures == 0 || remote.state.refresh_due(now_ms),
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
            (_, Some(remote)) => remote.local.as_ref().map(|(_, keys)| keys.as_ref()),
            (_, None) => None,
        };
        paused.resume(&self.config, request, keys, now_ms / 1000)
    }

    /// Picks up keys another worker published. Returns whether the local keys changed.
    pub fn sync(&mut self) -> bool {
        let changed = self.remote.as_mut().is_some_and(RemoteKeys::sync);
        if changed {
            self.token_cache.clear();
        }
        changed
    }

    /// Pauses a request until the keys arrive, starting a fetch unless one is under way
    /// (here or on another worker). Returns `false` when no fetch can happen: decide now.
    pub fn wait_for_keys(
        &mut self,
        context_id: u32,
        request: &Request,
        paused: Paused,
        now_ms: u64,
    ) -> bool {
        let Some(remote) = self.remote.as_mut() else {
            return false;
        };
        match remote.start_fetch(now_ms, self.metrics.as_ref()) {
            FetchStart::InFlight => {
                self.pending.push(Pending {
                    context_id,
                    request: request.clone(),
                    paused,
                    since_ms: now_ms,
                    deadline_ms: wait_deadline(now_ms, &remote.jwks),
                });
                true
            }
            FetchStart::Settled { keys_changed } => {
                if keys_changed {
                    self.token_cache.clear();
                }
                false
            }
            FetchStart::Failed => false,
        }
    }

    /// Background work from the tick: refresh when due.
    pub fn refresh_if_due(&mut self, now_ms: u64) {
        if let Some(remote) = self.remote.as_mut()
            && remote.in_flight.is_none()
            && remote.state.refresh_due(now_ms)
            && let FetchStart::Settled { keys_changed: true } =
                remote.start_fetch(now_ms, self.metrics.as_ref())
        {
            self.token_cache.clear();
        }
    }

    /// Handles the answer to this VM's fetch.
    pub fn complete_fetch(&mut self, token: u32, response: Result<Fetched, String>, now_ms: u64) {
        if let Some(remote) = self.remote.as_mut()
            && remote.in_flight.is_some_and(|(t, _)| t == token)
            && remote.complete(response, now_ms, self.metrics.as_ref())
        {
            self.token_cache.clear();
        }
    }

    /// Drops a request whose stream ended while it waited.
    pub fn forget(&mut self, context_id: u32) {
        self.pending.retain(|p| p.context_id != context_id);
    }

    /// Paused requests whose wait is over: a fetch ended since they paused, or time ran out.
    pub fn take_ready(&mut self, now_ms: u64) -> Vec<Pending> {
        let last_attempt = self.remote.as_ref().map_or(u64::MAX, |r| {
            if r.in_flight.is_some() {
                0
            } else {
                r.state.last_attempt_ms
            }
        });
        let (ready, waiting) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| last_attempt >= p.since_ms || now_ms >= p.deadline_ms);
        self.pending = waiting;
        ready
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

impl RemoteKeys {
    fn local_version(&self) -> Option<u64> {
        self.local.as_ref().map(|(version, _)| *version)
    }

    fn sync(&mut self) -> bool {
        self.state = self.shared.state();
        if !self.state.is_newer_than(self.local_version()) {
            return false;
        }
        let Some(body) = self.shared.body() else {
            return false;
        };
        match KeySet::parse_with(&body, self.policy) {
            Ok(set) => {
                self.local = Some((self.state.version, Arc::new(set)));
                true
            }
            Err(err) => {
                log::warn!(
                    "mcp_authn: shared JWKS version {} unusable: {err}",
                    self.state.version
                );
                false
            }
        }
    }

    /// Starts a fetch unless one is under way anywhere or one ended since this worker last
    /// looked at the shared state.
    fn start_fetch(&mut self, now_ms: u64, metrics: Option<&Metrics>) -> FetchStart {
        if self.in_flight.is_some() {
            return FetchStart::InFlight;
        }
        let lease_until = wait_deadline(now_ms, &self.jwks);
        if !self.shared.try_lease(&self.owner, now_ms, lease_until) {
            return FetchStart::InFlight;
        }
        // The look that asked for this fetch may predate another worker's: it publishes before
        // it gives the lease back, so under the lease its result is visible here and stands.
        let seen = self.state.last_attempt_ms;
        if self.shared.state().last_attempt_ms > seen {
            self.shared.release(&self.owner);
            return FetchStart::Settled {
                keys_changed: self.sync(),
            };
        }
        if self.dispatch(now_ms, metrics) {
            FetchStart::InFlight
        } else {
            FetchStart::Failed
        }
    }

    /// Sends the next call of a fetch: the JWKS, or first the metadata that names it.
    fn dispatch(&mut self, now_ms: u64, metrics: Option<&Metrics>) -> bool {
        let (url, stage) = match (&self.discovered, &self.jwks.location) {
            (Some(url), _) | (None, JwksLocation::Url(url)) => (url, Stage::Keys),
            (None, JwksLocation::Discovered { metadata }) => (metadata, Stage::Discovery),
        };
        match fetch::dispatch(&self.jwks, url) {
            Ok(token) => {
                self.in_flight = Some((token, stage));
                true
            }
            Err(status) => {
                log::warn!(
                    "mcp_authn: fetching {url} through cluster {:?} could not start: {status:?} \
                     (unknown cluster, or a bad :authority in the URL)",
                    self.jwks.cluster
                );
                self.record_failure(now_ms, metrics);
                false
            }
        }
    }

    /// The provider metadata arrived: fetch the JWKS it names at once, under the same lease.
    fn follow_metadata(
        &mut self,
        response: Result<Fetched, String>,
        now_ms: u64,
        metrics: Option<&Metrics>,
    ) {
        let found = response.and_then(|fetched| {
            discovery::jwks_uri(&fetched.body, &self.issuer).map_err(|e| e.to_string())
        });
        match found {
            Ok(url) => {
                log::info!("mcp_authn: JWKS discovered at {url}");
                self.discovered = Some(url);
                self.dispatch(now_ms, metrics);
            }
            Err(why) => {
                log::warn!(
                    "mcp_authn: JWKS discovery from {} failed: {why}",
                    self.jwks.location.describe()
                );
                self.record_failure(now_ms, metrics);
            }
        }
    }

    /// Parses and publishes a fetch answer. Returns whether the local keys changed.
    fn complete(
        &mut self,
        response: Result<Fetched, String>,
        now_ms: u64,
        metrics: Option<&Metrics>,
    ) -> bool {
        let Some((_, stage)) = self.in_flight.take() else {
            return false;
        };
        if stage == Stage::Discovery {
            self.follow_metadata(response, now_ms, metrics);
            return false;
        }
        let fetched = match response {
            Ok(fetched) => fetched,
            Err(why) => return self.fetch_failed(&why, now_ms, metrics),
        };
        let previous = self.shared.state();
        let state = previous.succeeded(
            &self.jwks,
            &fetched.body,
            fetched.cache_control.as_deref(),
            now_ms,
        );
        let changed = state.is_newer_than(self.local_version());
        if changed {
            // A new body (or one this worker has not parsed yet): it must parse before it
            // replaces the last good keys anywhere.
            let set = match KeySet::parse_with(&fetched.body, self.policy) {
                Ok(set) => set,
                Err(err) => {
                    return self.fetch_failed(&format!("unusable JWKS: {err}"), now_ms, metrics);
                }
            };
            for skipped in set.skipped() {
                log::warn!("mcp_authn: JWKS {skipped} (skipped)");
            }
            self.local = Some((state.version, Arc::new(set)));
        }
        // An identical body only moves the schedule: parsed keys, their ES256 tables and the
        // verified-token cache stay.
        let body = (state.version != previous.version).then_some(fetched.body.as_slice());
        self.shared.publish(body, &state);
        self.shared.release(&self.owner);
        self.state = state;
        if let Some(m) = metrics {
            m.bump(Metric::JwksFetchSuccess);
        }
        changed
    }

    fn fetch_failed(&mut self, why: &str, now_ms: u64, metrics: Option<&Metrics>) -> bool {
        log::warn!(
            "mcp_authn: JWKS fetch from {} failed: {why}; keeping the last good keys",
            self.discovered
                .as_ref()
                .map_or_else(|| self.jwks.location.describe(), HttpUrl::to_string)
        );
        // A discovered URL may be stale: the next attempt asks the metadata again.
        self.discovered = None;
        self.record_failure(now_ms, metrics);
        false
    }

    fn record_failure(&mut self, now_ms: u64, metrics: Option<&Metrics>) {
        self.state = self.shared.state().failed(now_ms);
        self.shared.publish(None, &self.state);
        self.shared.release(&self.owner);
        if let Some(m) = metrics {
            m.bump(Metric::JwksFetchFailure);
        }
    }
}

/// How long a fetch may hold the lease, and a request may wait for it.
fn wait_deadline(now_ms: u64, jwks: &RemoteJwks) -> u64 {
    now_ms
        .saturating_add(jwks.fetch_budget_ms())
        .saturating_add(PENDING_GRACE_MS)
}
