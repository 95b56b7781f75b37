//! The remote JWKS across worker VMs, as a state machine the host drives.
//!
//! Events come in: a request needs keys ([`KeyFetch::request_keys`]), the tick
//! ([`KeyFetch::tick`]), a fetch answer ([`KeyFetch::answer`]), a finished stream
//! ([`KeyFetch::forget`]). Each returns [`Effects`]: whether the local keys changed, which paused
//! requests to decide and resume, and notes to log and count. Shared data and outgoing calls go
//! through [`Host`], so the races between workers run in unit tests against an in-memory store
//! with Envoy's compare-and-swap semantics.
//!
//! One worker fetches at a time, under a lease in shared data. It publishes the body and the
//! [`FetchState`] before it gives the lease back; the other workers pick them up on their tick
//! (or when a request needs keys), and parse the body only when the version moved.

mod shared;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use super::discovery;
use super::jwks::{KeyPolicy, KeySet};
use super::metric::Metric;
use super::refresh::{FetchState, JwksLocation, RemoteJwks};
use super::url::HttpUrl;

use shared::Entries;
pub use shared::SharedData;

/// How long past the fetch budget a paused request waits before it is decided anyway.
const PENDING_GRACE_MS: u64 = 500;

/// What the state machine needs from the host besides shared data.
pub trait Host: SharedData {
    /// Starts a GET of `url` through the key source's cluster; the answer comes back to
    /// [`KeyFetch::answer`] with the returned token. `Err` says why it could not start.
    fn dispatch(&mut self, url: &HttpUrl) -> Result<u32, String>;
}

/// A successful answer: the body and its `Cache-Control`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
}

/// One worker VM's view of a remote key source, and the requests it paused for keys.
/// `P` is what the host needs to resume a request.
pub struct KeyFetch<P> {
    jwks: RemoteJwks,
    issuer: String,
    policy: KeyPolicy,
    entries: Entries,
    /// This worker's name in the lease; no other worker may share it.
    owner: String,
    /// The URL found through discovery; forgotten when a fetch from it fails.
    discovered: Option<HttpUrl>,
    /// The parsed keys and the shared version they came from.
    local: Option<(u64, Arc<KeySet>)>,
    /// The shared fetch state as this worker last read (or wrote) it.
    state: FetchState,
    in_flight: Option<(u32, Stage)>,
    pending: Vec<Pending<P>>,
}

/// What a call in flight asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The provider metadata, for its `jwks_uri`.
    Discovery,
    Keys,
}

/// A request paused until a fetch ends or its deadline passes.
#[derive(Debug)]
pub struct Pending<P> {
    pub context_id: u32,
    pub waiting: P,
    since_ms: u64,
    deadline_ms: u64,
}

/// What the host must carry out after an event.
#[derive(Debug)]
pub struct Effects<P> {
    /// The local keys changed: tokens verified with the old ones must be forgotten.
    pub keys_changed: bool,
    /// Paused requests whose wait is over: decide them with the keys there are, and resume.
    pub resume: Vec<Pending<P>>,
    pub notes: Vec<Note>,
}

impl<P> Default for Effects<P> {
    fn default() -> Self {
        Self {
            keys_changed: false,
            resume: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Something to log, and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A fetch was published.
    Fetched,
    /// An attempt failed, with the warning to log; the last good keys stay.
    Failed(String),
    Warn(String),
    Info(String),
}

impl Note {
    /// The counter this note bumps.
    pub fn metric(&self) -> Option<Metric> {
        match self {
            Self::Fetched => Some(Metric::JwksFetchSuccess),
            Self::Failed(_) => Some(Metric::JwksFetchFailure),
            Self::Warn(_) | Self::Info(_) => None,
        }
    }
}

/// What asking for keys came to.
#[derive(Debug)]
pub enum Wait<P> {
    /// Paused until a fetch (here or on another worker) ends, or the deadline.
    Paused,
    /// No fetch will come of it: decide the request now with what is there.
    DecideNow(P),
}

/// What trying to start a fetch came to.
enum Start {
    /// A fetch is under way, here or on another worker.
    InFlight,
    /// Another worker's fetch ended since this one looked; its result stands.
    Settled,
    /// No fetch could be started.
    Failed,
}

impl<P> KeyFetch<P> {
    /// Creates the lease entry in shared data if it is missing: the host's compare-and-swap
    /// checks nothing on a missing key, so two workers could both take a lease that does not
    /// exist yet. Workers are configured before the listener takes traffic, so the entry
    /// exists before any fetch.
    pub fn new(
        jwks: &RemoteJwks,
        issuer: &str,
        policy: KeyPolicy,
        owner: String,
        host: &mut impl SharedData,
    ) -> Self {
        let identity = format!("{issuer}|{}|{}", jwks.cluster, jwks.location.describe());
        let entries = Entries::new(&identity);
        entries.create_lease(host);
        Self {
            jwks: jwks.clone(),
            issuer: issuer.to_string(),
            policy,
            entries,
            owner,
            discovered: None,
            local: None,
            state: FetchState::default(),
            in_flight: None,
            pending: Vec::new(),
        }
    }

    /// Whether `token` is this source's call in flight (a worker with several key sources
    /// hands each answer to the one that made the call).
    pub fn awaits(&self, token: u32) -> bool {
        self.in_flight.is_some_and(|(t, _)| t == token)
    }

    /// The parsed keys, if any arrived yet.
    pub fn keys(&self) -> Option<&KeySet> {
        self.local.as_ref().map(|(_, keys)| keys.as_ref())
    }

    /// Whether a request may start a fetch while there are no keys. After a failure it waits
    /// for the backoff like the tick does, so an outage is not a fetch per request.
    pub fn may_fetch(&self, now_ms: u64) -> bool {
        self.state.failures == 0 || self.state.refresh_due(now_ms)
    }

    /// Whether a token with an unknown `kid` may trigger a refetch now (shared debounce).
    pub fn may_refetch(&self, now_ms: u64) -> bool {
        self.state.may_refetch_for_kid(&self.jwks, now_ms)
    }

    /// Before a request's first decision: a worker without keys looks whether another has them.
    pub fn prepare(&mut self, host: &impl SharedData) -> Effects<P> {
        let mut fx = Effects::default();
        if self.local.is_none() {
            self.read_shared(host, &mut fx);
        }
        fx
    }

    /// Picks up what another worker published (for an unknown `kid`, before asking to fetch).
    pub fn sync(&mut self, host: &impl SharedData) -> Effects<P> {
        let mut fx = Effects::default();
        self.read_shared(host, &mut fx);
        fx
    }

    /// A request needs keys: it pauses while a fetch (started here unless one is under way
    /// anywhere) runs, or is handed back to be decided now.
    pub fn request_keys(
        &mut self,
        host: &mut impl Host,
        context_id: u32,
        waiting: P,
        now_ms: u64,
    ) -> (Wait<P>, Effects<P>) {
        let mut fx = Effects::default();
        let wait = match self.start_fetch(host, now_ms, &mut fx) {
            Start::InFlight => {
                self.pending.push(Pending {
                    context_id,
                    waiting,
                    since_ms: now_ms,
                    deadline_ms: self.wait_deadline(now_ms),
                });
                Wait::Paused
            }
            Start::Settled | Start::Failed => Wait::DecideNow(waiting),
        };
        (wait, fx)
    }

    /// The tick: pick up published keys, refresh when due, resume requests whose wait is over.
    pub fn tick(&mut self, host: &mut impl Host, now_ms: u64) -> Effects<P> {
        let mut fx = Effects::default();
        self.read_shared(host, &mut fx);
        if self.in_flight.is_none() && self.state.refresh_due(now_ms) {
            self.start_fetch(host, now_ms, &mut fx);
        }
        fx.resume = self.take_ready(now_ms);
        fx
    }

    /// The answer to a call this worker made (an answer to any other token is ignored), then
    /// the requests whose wait is over.
    pub fn answer(
        &mut self,
        host: &mut impl Host,
        token: u32,
        response: Result<Fetched, String>,
        now_ms: u64,
    ) -> Effects<P> {
        let mut fx = Effects::default();
        match self.in_flight {
            Some((t, stage)) if t == token => {
                self.in_flight = None;
                match stage {
                    Stage::Discovery => self.follow_metadata(host, response, now_ms, &mut fx),
                    Stage::Keys => self.complete(host, response, now_ms, &mut fx),
                }
            }
            _ => {}
        }
        fx.resume = self.take_ready(now_ms);
        fx
    }

    /// Drops a request whose stream ended while it waited.
    pub fn forget(&mut self, context_id: u32) {
        self.pending.retain(|p| p.context_id != context_id);
    }

    fn local_version(&self) -> Option<u64> {
        self.local.as_ref().map(|(version, _)| *version)
    }

    /// Reads the shared state; parses the shared body when its version is not the local one.
    fn read_shared(&mut self, host: &impl SharedData, fx: &mut Effects<P>) {
        self.state = self.entries.state(host);
        if !self.state.is_newer_than(self.local_version()) {
            return;
        }
        let Some(body) = self.entries.body(host) else {
            return;
        };
        match KeySet::parse_with(&body, self.policy) {
            Ok(set) => {
                self.local = Some((self.state.version, Arc::new(set)));
                fx.keys_changed = true;
            }
            Err(err) => fx.notes.push(Note::Warn(format!(
                "shared JWKS version {} unusable: {err}",
                self.state.version
            ))),
        }
    }

    /// Starts a fetch unless one is under way anywhere or one ended since this worker last
    /// looked at the shared state.
    fn start_fetch(&mut self, host: &mut impl Host, now_ms: u64, fx: &mut Effects<P>) -> Start {
        if self.in_flight.is_some() {
            return Start::InFlight;
        }
        let lease_until = self.wait_deadline(now_ms);
        if !self
            .entries
            .try_lease(host, &self.owner, now_ms, lease_until)
        {
            return Start::InFlight;
        }
        // The look that asked for this fetch may predate another worker's: it publishes before
        // it gives the lease back, so under the lease its result is visible here and stands.
        if self.entries.state(host).last_attempt_ms > self.state.last_attempt_ms {
            self.entries.release(host, &self.owner);
            self.read_shared(host, fx);
            return Start::Settled;
        }
        if self.dispatch(host, now_ms, fx) {
            Start::InFlight
        } else {
            Start::Failed
        }
    }

    /// Sends the next call of a fetch: the JWKS, or first the metadata that names it.
    fn dispatch(&mut self, host: &mut impl Host, now_ms: u64, fx: &mut Effects<P>) -> bool {
        let (url, stage) = match (&self.discovered, &self.jwks.location) {
            (Some(url), _) | (None, JwksLocation::Url(url)) => (url, Stage::Keys),
            (None, JwksLocation::Discovered { metadata }) => (metadata, Stage::Discovery),
        };
        match host.dispatch(url) {
            Ok(token) => {
                self.in_flight = Some((token, stage));
                true
            }
            Err(status) => {
                let why = format!(
                    "fetching {url} through cluster {:?} could not start: {status} \
                     (unknown cluster, or a bad :authority in the URL)",
                    self.jwks.cluster
                );
                self.record_failure(host, why, now_ms, fx);
                false
            }
        }
    }

    /// The provider metadata arrived: fetch the JWKS it names at once, under the same lease.
    fn follow_metadata(
        &mut self,
        host: &mut impl Host,
        response: Result<Fetched, String>,
        now_ms: u64,
        fx: &mut Effects<P>,
    ) {
        let found = response.and_then(|fetched| {
            discovery::jwks_uri(&fetched.body, &self.issuer).map_err(|e| e.to_string())
        });
        match found {
            Ok(url) => {
                fx.notes
                    .push(Note::Info(format!("JWKS discovered at {url}")));
                self.discovered = Some(url);
                self.dispatch(host, now_ms, fx);
            }
            Err(why) => {
                let why = format!(
                    "JWKS discovery from {} failed: {why}",
                    self.jwks.location.describe()
                );
                self.record_failure(host, why, now_ms, fx);
            }
        }
    }

    /// Parses and publishes a JWKS answer, then gives the lease back.
    fn complete(
        &mut self,
        host: &mut impl Host,
        response: Result<Fetched, String>,
        now_ms: u64,
        fx: &mut Effects<P>,
    ) {
        let fetched = match response {
            Ok(fetched) => fetched,
            Err(why) => return self.fetch_failed(host, &why, now_ms, fx),
        };
        let previous = self.entries.state(host);
        let state = previous.succeeded(
            &self.jwks,
            &fetched.body,
            fetched.cache_control.as_deref(),
            now_ms,
        );
        if state.is_newer_than(self.local_version()) {
            // A new body (or one this worker has not parsed yet): it must parse before it
            // replaces the last good keys anywhere.
            let set = match KeySet::parse_with(&fetched.body, self.policy) {
                Ok(set) => set,
                Err(err) => {
                    return self.fetch_failed(host, &format!("unusable JWKS: {err}"), now_ms, fx);
                }
            };
            for skipped in set.skipped() {
                fx.notes
                    .push(Note::Warn(format!("JWKS {skipped} (skipped)")));
            }
            self.local = Some((state.version, Arc::new(set)));
            fx.keys_changed = true;
        }
        // An identical body only moves the schedule: parsed keys, their ES256 tables and the
        // verified-token cache stay.
        let body = (state.version != previous.version).then_some(fetched.body.as_slice());
        if let Err(status) = self.entries.publish(host, body, &state) {
            fx.notes.push(Note::Warn(format!(
                "storing the JWKS in shared data failed: {status}"
            )));
        }
        self.entries.release(host, &self.owner);
        self.state = state;
        fx.notes.push(Note::Fetched);
    }

    fn fetch_failed(&mut self, host: &mut impl Host, why: &str, now_ms: u64, fx: &mut Effects<P>) {
        let from = self
            .discovered
            .as_ref()
            .map_or_else(|| self.jwks.location.describe(), HttpUrl::to_string);
        // A discovered URL may be stale: the next attempt asks the metadata again.
        self.discovered = None;
        let why = format!("JWKS fetch from {from} failed: {why}; keeping the last good keys");
        self.record_failure(host, why, now_ms, fx);
    }

    /// Publishes a failed attempt (the backoff every worker follows) and gives the lease back.
    fn record_failure(
        &mut self,
        host: &mut impl Host,
        why: String,
        now_ms: u64,
        fx: &mut Effects<P>,
    ) {
        self.state = self.entries.state(host).failed(now_ms);
        // Without a body there is nothing whose storing can fail.
        let _ = self.entries.publish(host, None, &self.state);
        self.entries.release(host, &self.owner);
        fx.notes.push(Note::Failed(why));
    }

    /// Paused requests whose wait is over: a fetch ended since they paused, or time ran out.
    fn take_ready(&mut self, now_ms: u64) -> Vec<Pending<P>> {
        let last_attempt = if self.in_flight.is_some() {
            0
        } else {
            self.state.last_attempt_ms
        };
        let (ready, waiting) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| last_attempt >= p.since_ms || now_ms >= p.deadline_ms);
        self.pending = waiting;
        ready
    }

    /// How long a fetch may hold the lease, and a request may wait for it.
    fn wait_deadline(&self, now_ms: u64) -> u64 {
        now_ms
            .saturating_add(self.jwks.fetch_budget_ms())
            .saturating_add(PENDING_GRACE_MS)
    }
}
