//! State one worker VM shares between its root and HTTP contexts: the plugin config, the
//! verified-token caches, and one key-fetch state machine (`core::keyfetch`) per distinct key
//! source, whose effects are carried out here.

use crate::core::config::{Config, KeySource};
use crate::core::decision::{Decision, Final, KeyState, Paused};
use crate::core::jwks::KeyPolicy;
use crate::core::keyfetch::{Effects, Fetched, KeyFetch, Note, Pending, Wait};
use crate::core::metric::Metric;
use crate::core::refresh::RemoteJwks;
use crate::core::request::Request;
use crate::core::servers::{Answered, Plugin, Target, TokenCaches};

use super::body;
use super::metrics::Metrics;
use super::shared::Hostcalls;

pub struct Worker {
    pub plugin: Plugin,
    pub metrics: Option<Metrics>,
    /// Verified tokens, one cache per server; all are cleared whenever any local key set
    /// changes.
    caches: TokenCaches,
    /// One per distinct key source (issuer, cluster, location, key policy) across servers:
    /// two servers that trust one issuer share its keys, fetches and backoff.
    remotes: Vec<Remote>,
    /// Each target's remote key source (`None`: inline keys), by server, then issuer.
    sources: Vec<Vec<Option<usize>>>,
}

struct Remote {
    keys: KeyFetch<Waiting>,
    host: Hostcalls,
    issuer: String,
    policy: KeyPolicy,
}

/// A request paused for keys: what deciding and resuming it needs.
pub struct Waiting {
    pub request: Request,
    pub target: Target,
    pub paused: Paused,
    pub exchange: body::Shared,
}

/// A paused request whose wait is over.
pub type Ready = Pending<Waiting>;

impl Worker {
    pub fn new(plugin: Plugin, owner: &str) -> Self {
        let mut remotes: Vec<Remote> = Vec::new();
        let mut sources: Vec<Vec<Option<usize>>> = Vec::new();
        for (target, config) in plugin.targets() {
            if sources.len() <= target.server {
                sources.push(Vec::new());
            }
            let source = match &config.keys {
                KeySource::Inline(_) => None,
                KeySource::Remote(jwks) => Some(remote_for(&mut remotes, jwks, config, owner)),
            };
            if let Some(list) = sources.last_mut() {
                list.push(source);
            }
        }
        Self {
            caches: TokenCaches::new(&plugin),
            plugin,
            metrics: Metrics::define(),
            remotes,
            sources,
        }
    }

    /// The config a target is decided with.
    pub fn config(&self, target: Target) -> Option<&Config> {
        self.plugin.config(target)
    }

    fn remote_index(&self, target: Target) -> Option<usize> {
        *self.sources.get(target.server)?.get(target.issuer)?
    }

    /// A request's first decision: its server and issuer are chosen (or the choice answers
    /// it), a worker without that issuer's keys looks whether another one has them, the
    /// server's verified-token cache answers repeats, and fetching (or refetching for an
    /// unknown `kid`) is allowed.
    pub fn decide(
        &mut self,
        request: &Request,
        route_server: Option<&str>,
        now_ms: u64,
    ) -> Result<(Target, Decision), Box<Answered>> {
        let target = self.plugin.select(request, route_server)?;
        let remote = self.remote_index(target);
        if let Some(r) = remote.and_then(|r| self.remotes.get_mut(r)) {
            let fx = r.keys.prepare(&r.host);
            self.carry_out(fx);
        }
        let keys = self.plugin.config(target).map(|config| &config.keys);
        let state = match (keys, remote.and_then(|r| self.remotes.get(r))) {
            (Some(KeySource::Inline(set)), _) => KeyState::Ready {
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
        let hits = self.caches.hits();
        let decision = self
            .plugin
            .decide(target, request, state, &mut self.caches, now_ms / 1000);
        if let Some(m) = &self.metrics
            && self.caches.hits() != hits
        {
            m.bump(Metric::TokenCacheHit);
        }
        Ok((target, decision))
    }

    /// Decides a request after its wait for keys, with whatever keys are there now.
    pub fn resume(&self, target: Target, paused: Paused, request: &Request, now_ms: u64) -> Final {
        let keys = match (
            self.plugin.config(target).map(|config| &config.keys),
            self.remote_index(target),
        ) {
            (Some(KeySource::Inline(set)), _) => Some(set.as_ref()),
            (_, Some(r)) => self.remotes.get(r).and_then(|remote| remote.keys.keys()),
            (_, None) => None,
        };
        self.plugin
            .resume(target, paused, request, keys, now_ms / 1000)
    }

    /// Picks up keys another worker published for the target's issuer. Returns whether the
    /// local keys changed.
    pub fn sync(&mut self, target: Target) -> bool {
        let Some(remote) = self
            .remote_index(target)
            .and_then(|r| self.remotes.get_mut(r))
        else {
            return false;
        };
        let fx = remote.keys.sync(&remote.host);
        let changed = fx.keys_changed;
        self.carry_out(fx);
        changed
    }

    /// Pauses a request until its issuer's keys arrive, starting a fetch unless one is under
    /// way (here or on another worker). Returns `false` when no fetch will come: decide it now.
    pub fn wait_for_keys(&mut self, context_id: u32, waiting: Waiting, now_ms: u64) -> bool {
        let Some(remote) = self
            .remote_index(waiting.target)
            .and_then(|r| self.remotes.get_mut(r))
        else {
            return false;
        };
        let (wait, fx) = remote
            .keys
            .request_keys(&mut remote.host, context_id, waiting, now_ms);
        self.carry_out(fx);
        matches!(wait, Wait::Paused)
    }

    /// The tick: picks up published keys, refreshes what is due. Returns the requests to resume.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Ready> {
        let mut ready = Vec::new();
        for r in 0..self.remotes.len() {
            if let Some(remote) = self.remotes.get_mut(r) {
                let fx = remote.keys.tick(&mut remote.host, now_ms);
                ready.extend(self.carry_out(fx));
            }
        }
        ready
    }

    /// Handles the answer to a call of this VM. Returns the requests to resume.
    pub fn complete_fetch(
        &mut self,
        token: u32,
        response: Result<Fetched, String>,
        now_ms: u64,
    ) -> Vec<Ready> {
        let Some(remote) = self.remotes.iter_mut().find(|r| r.keys.awaits(token)) else {
            return Vec::new();
        };
        let fx = remote
            .keys
            .answer(&mut remote.host, token, response, now_ms);
        self.carry_out(fx)
    }

    /// Drops a request whose stream ended while it waited.
    pub fn forget(&mut self, context_id: u32) {
        for remote in &mut self.remotes {
            remote.keys.forget(context_id);
        }
    }

    /// Clears the token caches when keys changed, logs and counts; returns the requests to
    /// resume.
    fn carry_out(&mut self, fx: Effects<Waiting>) -> Vec<Ready> {
        if fx.keys_changed {
            self.caches.clear();
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

/// The index of the key source `jwks` of `config`'s issuer, created on first use.
fn remote_for(remotes: &mut Vec<Remote>, jwks: &RemoteJwks, config: &Config, owner: &str) -> usize {
    let same = |r: &Remote| {
        r.issuer == config.claims.issuer && r.host.jwks == *jwks && r.policy == config.key_policy
    };
    if let Some(index) = remotes.iter().position(same) {
        return index;
    }
    let mut host = Hostcalls { jwks: jwks.clone() };
    let keys = KeyFetch::new(
        jwks,
        &config.claims.issuer,
        config.key_policy,
        owner.to_string(),
        &mut host,
    );
    remotes.push(Remote {
        keys,
        host,
        issuer: config.claims.issuer.clone(),
        policy: config.key_policy,
    });
    remotes.len().saturating_sub(1)
}
