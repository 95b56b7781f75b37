//! Several workers against one in-memory store with Envoy's shared-data semantics, and a fake
//! IdP that records every call. Each test drives the events a host would deliver, in an order
//! the end-to-end tests can only hope to sample.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::json;

use super::shared::Entries;
use super::*;
use crate::core::testkit::{ISSUER, jwks};

const T0: u64 = 1_700_000_000_000;
/// `timeoutMs` of the test source: a fetch may hold the lease, and a request wait, this long
/// plus the grace.
const TIMEOUT_MS: u64 = 1_000;
const WAIT_MS: u64 = TIMEOUT_MS + PENDING_GRACE_MS;
const JWKS_URL: &str = "https://idp.example.com/jwks";
const METADATA_URL: &str = "https://idp.example.com/.well-known/openid-configuration";
const CERTS_URL: &str = "https://idp.example.com/certs";

/// Envoy's shared data: every write takes the next cas; a cas of 0 (none) is never checked,
/// nor is any cas on a missing key.
#[derive(Default)]
struct Store {
    entries: HashMap<String, (Vec<u8>, u32)>,
    last_cas: u32,
}

impl Store {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.entries.get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), String> {
        if let (Some((_, current)), Some(cas)) = (self.entries.get(key), cas)
            && cas != 0
            && cas != *current
        {
            return Err("CasMismatch".into());
        }
        self.last_cas = self.last_cas.wrapping_add(1);
        self.entries
            .insert(key.to_string(), (value.to_vec(), self.last_cas));
        Ok(())
    }

    fn key_ending(&self, suffix: &str) -> Option<String> {
        self.entries.keys().find(|k| k.ends_with(suffix)).cloned()
    }
}

/// One proxy: the shared store, and every call any worker sent to the IdP.
#[derive(Default)]
struct World {
    store: Rc<RefCell<Store>>,
    idp: Rc<RefCell<Vec<String>>>,
}

impl World {
    fn worker(&self, owner: &str, jwks: &RemoteJwks) -> Worker {
        self.worker_for(owner, ISSUER, jwks)
    }

    /// A worker's key source for `issuer` (a VM has one per distinct source).
    fn worker_for(&self, owner: &str, issuer: &str, jwks: &RemoteJwks) -> Worker {
        let mut host = FakeHost {
            store: Rc::clone(&self.store),
            idp: Rc::clone(&self.idp),
            last_token: 0,
            refuse: false,
        };
        let fetch = KeyFetch::new(
            jwks,
            issuer,
            KeyPolicy::default(),
            owner.to_string(),
            &mut host,
        );
        Worker { fetch, host }
    }

    fn calls(&self) -> Vec<String> {
        self.idp.borrow().clone()
    }

    fn shared_state(&self) -> FetchState {
        let store = self.store.borrow();
        let key = store.key_ending(".state").expect("a state was published");
        serde_json::from_slice(&store.get(&key).0.unwrap()).unwrap()
    }
}

struct FakeHost {
    store: Rc<RefCell<Store>>,
    idp: Rc<RefCell<Vec<String>>>,
    last_token: u32,
    /// Dispatch fails, as for an unknown cluster.
    refuse: bool,
}

impl SharedData for FakeHost {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.store.borrow().get(key)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), String> {
        self.store.borrow_mut().set(key, value, cas)
    }
}

impl Host for FakeHost {
    fn dispatch(&mut self, url: &HttpUrl) -> Result<u32, String> {
        if self.refuse {
            return Err("BadArgument".into());
        }
        self.idp.borrow_mut().push(url.to_string());
        // Tokens are per worker VM in Envoy too; a worker never sees another's.
        self.last_token = self.last_token.wrapping_add(1);
        Ok(self.last_token)
    }
}

/// A worker VM; paused requests carry their context id as the payload.
struct Worker {
    fetch: KeyFetch<u32>,
    host: FakeHost,
}

impl Worker {
    fn request(&mut self, context_id: u32, now_ms: u64) -> (Wait<u32>, Effects<u32>) {
        self.fetch
            .request_keys(&mut self.host, context_id, context_id, now_ms)
    }

    /// Asks for keys and expects to be paused.
    fn pause(&mut self, context_id: u32, now_ms: u64) {
        let (wait, _) = self.request(context_id, now_ms);
        assert!(matches!(wait, Wait::Paused), "{context_id} was not paused");
    }

    fn tick(&mut self, now_ms: u64) -> Effects<u32> {
        self.fetch.tick(&mut self.host, now_ms)
    }

    /// Answers this worker's last call.
    fn answer(&mut self, response: Result<Fetched, String>, now_ms: u64) -> Effects<u32> {
        let token = self.host.last_token;
        self.fetch.answer(&mut self.host, token, response, now_ms)
    }

    /// The parsed keys, if any.
    fn keys(&self) -> Option<Arc<KeySet>> {
        self.fetch.local.as_ref().map(|(_, keys)| Arc::clone(keys))
    }

    fn version(&self) -> Option<u64> {
        self.fetch.local_version()
    }
}

fn source() -> RemoteJwks {
    RemoteJwks {
        location: JwksLocation::Url(HttpUrl::parse(JWKS_URL).unwrap()),
        cluster: "idp".into(),
        timeout_ms: TIMEOUT_MS,
        cache_duration_secs: 600,
        min_refresh_interval_secs: 30,
    }
}

fn discovered_source() -> RemoteJwks {
    RemoteJwks {
        location: JwksLocation::Discovered {
            metadata: HttpUrl::parse(METADATA_URL).unwrap(),
        },
        ..source()
    }
}

fn body(names: &[&str]) -> Vec<u8> {
    jwks(names).to_string().into_bytes()
}

fn ok(body: Vec<u8>) -> Result<Fetched, String> {
    Ok(Fetched {
        body,
        cache_control: None,
    })
}

fn metadata(jwks_uri: &str) -> Result<Fetched, String> {
    ok(json!({"issuer": ISSUER, "jwks_uri": jwks_uri})
        .to_string()
        .into_bytes())
}

fn resumed(fx: &Effects<u32>) -> Vec<u32> {
    fx.resume.iter().map(|p| p.context_id).collect()
}

fn failures(fx: &Effects<u32>) -> Vec<&str> {
    fx.notes
        .iter()
        .filter_map(|n| match n {
            Note::Failed(why) => Some(why.as_str()),
            _ => None,
        })
        .collect()
}

fn key_count(w: &Worker) -> Option<usize> {
    w.fetch.keys().map(|keys| keys.keys().len())
}

#[test]
fn the_store_checks_a_cas_only_on_an_existing_entry() {
    let mut store = Store::default();
    assert_eq!(store.get("k"), (None, None));
    store.set("k", b"a", Some(42)).unwrap();
    let (_, Some(cas)) = store.get("k") else {
        panic!("no cas")
    };
    assert!(store.set("k", b"b", Some(cas + 1)).is_err());
    store.set("k", b"b", Some(cas)).unwrap();
    assert!(store.set("k", b"c", Some(cas)).is_err(), "the cas moved");
    store.set("k", b"c", None).unwrap();
    store.set("k", b"d", Some(0)).unwrap();
    assert_eq!(store.get("k").0.unwrap(), b"d");
}

#[test]
fn configuring_creates_the_lease_entry_and_never_resets_it() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let lease = world.store.borrow().key_ending(".lease").unwrap();
    assert_eq!(world.store.borrow().get(&lease).0.unwrap(), b"");
    a.pause(1, T0);
    // A worker VM configured while A holds the lease leaves it alone, and waits.
    let mut late = world.worker("late", &source());
    let held = world.store.borrow().get(&lease).0.unwrap();
    assert!(held.starts_with(b"a|"), "{held:?}");
    late.pause(2, T0 + 1);
    assert_eq!(world.calls(), [JWKS_URL]);
}

#[test]
fn a_lease_entry_gone_missing_is_created_before_it_is_taken() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    let lease = world.store.borrow().key_ending(".lease").unwrap();
    world.store.borrow_mut().entries.remove(&lease);
    a.pause(1, T0);
    b.pause(2, T0);
    assert_eq!(world.calls().len(), 1);
}

#[test]
fn a_cold_worker_fetches_once_publishes_and_resumes_its_requests() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    assert_eq!(key_count(&a), None, "no keys before the first fetch");
    assert!(a.fetch.may_fetch(T0));
    a.pause(1, T0);
    a.pause(2, T0 + 5);
    assert_eq!(
        world.calls(),
        [JWKS_URL],
        "the second request joins the fetch"
    );
    let fx = a.tick(T0 + 200);
    assert!(fx.resume.is_empty() && !fx.keys_changed);
    let fx = a.answer(ok(body(&["rsa", "ec"])), T0 + 300);
    assert!(fx.keys_changed);
    assert_eq!(fx.notes, [Note::Fetched]);
    assert_eq!(Note::Fetched.metric(), Some(Metric::JwksFetchSuccess));
    assert_eq!(resumed(&fx), [1, 2]);
    assert_eq!(key_count(&a), Some(2));
    assert_eq!(world.shared_state().version, 1);
    // The lease is free again.
    let lease = world.store.borrow().key_ending(".lease").unwrap();
    assert_eq!(world.store.borrow().get(&lease).0.unwrap(), b"");
}

#[test]
fn cold_workers_at_once_make_exactly_one_fetch() {
    let world = World::default();
    let mut workers: Vec<Worker> = ["w0", "w1", "w2", "w3"]
        .iter()
        .map(|owner| world.worker(owner, &source()))
        .collect();
    for (i, w) in (0u32..).zip(workers.iter_mut()) {
        w.pause(i * 10, T0 + u64::from(i));
        w.pause(i * 10 + 1, T0 + u64::from(i));
    }
    assert_eq!(world.calls(), [JWKS_URL]);
    let fx = workers[0].answer(ok(body(&["rsa"])), T0 + 400);
    assert_eq!(resumed(&fx), [0, 1]);
    for (i, w) in (0u32..).zip(workers.iter_mut()).skip(1) {
        let fx = w.tick(T0 + 500);
        assert!(fx.keys_changed, "worker {i} picked up the keys");
        assert_eq!(resumed(&fx), [i * 10, i * 10 + 1]);
        assert_eq!(w.version(), Some(1));
    }
    assert_eq!(world.calls().len(), 1);
}

#[test]
fn workers_sharing_an_owner_name_would_both_fetch() {
    // Why the host names every worker VM uniquely: the lease lets its own owner back in.
    let world = World::default();
    let mut a = world.worker("same", &source());
    let mut b = world.worker("same", &source());
    a.pause(1, T0);
    b.pause(2, T0);
    assert_eq!(world.calls().len(), 2);
}

#[test]
fn a_look_from_before_another_fetch_takes_its_result_instead_of_fetching() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    b.tick(T0); // B's last look: nothing fetched yet.
    a.pause(1, T0 + 10);
    a.answer(ok(body(&["rsa"])), T0 + 20);
    // B asks on that old look; the lease is free, but A's result is there and stands.
    let (wait, fx) = b.request(2, T0 + 30);
    assert!(matches!(wait, Wait::DecideNow(2)));
    assert!(fx.keys_changed);
    assert_eq!(key_count(&b), Some(1));
    assert_eq!(world.calls(), [JWKS_URL]);
    // And B gave the lease back: A can fetch again later.
    let lease = world.store.borrow().key_ending(".lease").unwrap();
    assert_eq!(world.store.borrow().get(&lease).0.unwrap(), b"");
}

#[test]
fn a_lease_expires_when_its_holder_never_answers() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    a.pause(1, T0); // A's VM dies with the call in flight.
    b.pause(2, T0 + 100);
    assert!(b.tick(T0 + 100 + WAIT_MS - 1).resume.is_empty());
    // B's request is decided at its deadline with what is there: nothing.
    let fx = b.tick(T0 + 100 + WAIT_MS);
    assert_eq!(resumed(&fx), [2]);
    assert!(b.fetch.keys().is_none());
    // Until the lease's deadline nobody else fetches; from then on B may.
    b.pause(3, T0 + WAIT_MS - 1);
    assert_eq!(world.calls().len(), 1);
    b.pause(4, T0 + WAIT_MS);
    assert_eq!(world.calls().len(), 2);
    let fx = b.answer(ok(body(&["rsa"])), T0 + WAIT_MS + 50);
    assert_eq!(resumed(&fx), [3, 4]);
    // A's answer after all (late): it publishes the same body, and cannot free B's lease.
    b.pause(5, T0 + WAIT_MS + 40_000);
    let fx = a.answer(ok(body(&["rsa"])), T0 + WAIT_MS + 40_001);
    assert_eq!(resumed(&fx), [1]);
    assert_eq!(world.shared_state().version, 1);
    let lease = world.store.borrow().key_ending(".lease").unwrap();
    assert!(
        world
            .store
            .borrow()
            .get(&lease)
            .0
            .unwrap()
            .starts_with(b"b|")
    );
}

#[test]
fn a_failure_backs_off_every_worker() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    a.pause(1, T0);
    let fx = a.answer(Err("HTTP status 503".into()), T0 + 100);
    assert_eq!(resumed(&fx), [1]);
    assert_eq!(
        failures(&fx),
        [format!(
            "JWKS fetch from {JWKS_URL} failed: HTTP status 503; keeping the last good keys"
        )]
    );
    assert!(!fx.keys_changed);
    let counted: Vec<_> = fx.notes.iter().filter_map(Note::metric).collect();
    assert_eq!(counted, [Metric::JwksFetchFailure]);
    // Both workers see the failure and wait the backoff (1 s) before asking again.
    b.tick(T0 + 200);
    for w in [&a, &b] {
        assert!(!w.fetch.may_fetch(T0 + 1_099));
        assert!(w.fetch.may_fetch(T0 + 1_100));
    }
    assert!(b.tick(T0 + 1_099).notes.is_empty());
    assert_eq!(world.calls().len(), 1);
    // Once it has passed, one tick retries; the other worker finds the lease taken.
    b.tick(T0 + 1_100);
    a.tick(T0 + 1_100);
    assert_eq!(world.calls().len(), 2);
    let fx = b.answer(Err("HTTP status 503".into()), T0 + 1_200);
    assert_eq!(failures(&fx).len(), 1);
    // Two failures: 2 s.
    a.tick(T0 + 1_300);
    a.tick(T0 + 3_199);
    b.tick(T0 + 3_199);
    assert_eq!(world.calls().len(), 2);
    a.tick(T0 + 3_200);
    assert_eq!(world.calls().len(), 3);
    let fx = a.answer(ok(body(&["rsa"])), T0 + 3_300);
    assert!(fx.keys_changed);
    assert_eq!(world.shared_state().failures, 0);
}

#[test]
fn one_issuers_outage_leaves_another_issuers_keys_fetches_and_debounce_alone() {
    const OTHER_URL: &str = "https://login.example.org/jwks";
    let world = World::default();
    let other = RemoteJwks {
        location: JwksLocation::Url(HttpUrl::parse(OTHER_URL).unwrap()),
        cluster: "login".into(),
        ..source()
    };
    // Two workers, each with both sources, sharing one store.
    let mut down_a = world.worker_for("a", ISSUER, &source());
    let mut up_a = world.worker_for("a", "https://login.example.org", &other);
    let mut down_b = world.worker_for("b", ISSUER, &source());
    let mut up_b = world.worker_for("b", "https://login.example.org", &other);
    down_a.pause(1, T0);
    up_a.pause(2, T0);
    assert_eq!(world.calls(), [JWKS_URL, OTHER_URL], "one fetch per source");
    // The first IdP fails: only its own paused request resumes, without keys.
    let fx = down_a.answer(Err("HTTP status 503".into()), T0 + 100);
    assert_eq!(resumed(&fx), [1]);
    assert!(
        up_a.fetch.pending.iter().any(|p| p.context_id == 2),
        "still waits"
    );
    let fx = up_a.answer(ok(body(&["ec"])), T0 + 150);
    assert_eq!(resumed(&fx), [2]);
    assert!(fx.keys_changed);
    // The other worker picks up the good keys; the failed source backs off on both workers
    // while the good one may still be asked (its own debounce, untouched by the failure).
    up_b.tick(T0 + 200);
    down_b.tick(T0 + 200);
    assert_eq!(key_count(&up_b), Some(1));
    assert!(down_b.keys().is_none());
    for w in [&down_a, &down_b] {
        assert!(!w.fetch.may_fetch(T0 + 1_099));
    }
    for w in [&up_a, &up_b] {
        assert!(w.fetch.may_refetch(T0 + 30_150));
    }
    // The failed source retrying does not touch the good one's stored state or keys.
    down_b.tick(T0 + 1_100);
    assert_eq!(world.calls(), [JWKS_URL, OTHER_URL, JWKS_URL]);
    let fx = down_b.answer(Err("HTTP status 503".into()), T0 + 1_200);
    assert!(!fx.keys_changed);
    up_a.tick(T0 + 1_300);
    assert_eq!(key_count(&up_a), Some(1));
    assert_eq!(up_a.version(), up_b.version());
    let states: Vec<String> = world
        .store
        .borrow()
        .entries
        .keys()
        .filter(|k| k.ends_with(".state"))
        .cloned()
        .collect();
    assert_eq!(
        states.len(),
        2,
        "each source has its own entries: {states:?}"
    );
}

#[test]
fn a_dispatch_that_cannot_start_decides_now_and_backs_off() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    a.host.refuse = true;
    let (wait, fx) = a.request(1, T0);
    assert!(matches!(wait, Wait::DecideNow(1)));
    let [why] = failures(&fx)[..] else {
        panic!("{:?}", fx.notes)
    };
    assert!(
        why.contains("through cluster \"idp\" could not start: BadArgument"),
        "{why}"
    );
    // The backoff holds for every worker; the lease was given back, so once the backoff
    // has passed another worker fetches.
    b.tick(T0 + 1);
    assert!(!b.fetch.may_fetch(T0 + 999));
    assert!(b.fetch.may_fetch(T0 + 1_000));
    b.pause(2, T0 + 1_000);
    assert_eq!(world.calls(), [JWKS_URL]);
}

#[test]
fn an_unknown_kid_refetch_is_debounced_across_workers() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    a.pause(1, T0);
    a.answer(ok(body(&["rsa"])), T0);
    b.tick(T0 + 200);
    for w in [&a, &b] {
        assert!(!w.fetch.may_refetch(T0 + 29_999));
        assert!(w.fetch.may_refetch(T0 + 30_000));
    }
    // B refetches for a made-up kid; A's debounce window restarts from B's attempt.
    b.pause(2, T0 + 30_000);
    b.answer(ok(body(&["rsa"])), T0 + 30_100);
    a.tick(T0 + 30_200);
    assert!(!a.fetch.may_refetch(T0 + 40_000));
    assert_eq!(world.calls().len(), 2);
}

#[test]
fn an_identical_body_keeps_the_version_the_keys_and_the_stored_body() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    a.pause(1, T0);
    a.answer(ok(body(&["rsa"])), T0);
    b.tick(T0 + 1);
    let (a_keys, b_keys) = (a.keys().unwrap(), b.keys().unwrap());
    let body_key = world.store.borrow().key_ending(".body").unwrap();
    let body_cas = world.store.borrow().get(&body_key).1;
    a.pause(2, T0 + 30_000);
    let fx = a.answer(ok(body(&["rsa"])), T0 + 30_100);
    assert!(!fx.keys_changed, "the token cache stays");
    assert_eq!(fx.notes, [Note::Fetched]);
    assert!(!b.tick(T0 + 30_200).keys_changed);
    assert!(Arc::ptr_eq(&a_keys, &a.keys().unwrap()));
    assert!(Arc::ptr_eq(&b_keys, &b.keys().unwrap()));
    assert_eq!(world.store.borrow().get(&body_key).1, body_cas);
    let state = world.shared_state();
    assert_eq!(
        (state.version, state.last_attempt_ms),
        (1, T0 + 30_100),
        "the schedule moved"
    );
    // A rotated set moves the version; every worker re-parses once.
    a.pause(3, T0 + 60_100);
    let fx = a.answer(ok(body(&["rsa", "rsa2"])), T0 + 60_200);
    assert!(fx.keys_changed);
    assert!(b.tick(T0 + 60_300).keys_changed);
    assert!(!b.tick(T0 + 60_500).keys_changed);
    assert_eq!((a.version(), b.version()), (Some(2), Some(2)));
    assert_eq!(key_count(&b), Some(2));
}

#[test]
fn an_unusable_jwks_fails_and_keeps_the_last_good_keys() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    a.pause(1, T0);
    a.answer(ok(body(&["rsa"])), T0);
    a.pause(2, T0 + 30_000);
    let fx = a.answer(ok(b"{\"keys\": 3}".to_vec()), T0 + 30_100);
    assert_eq!(
        failures(&fx),
        [format!(
            "JWKS fetch from {JWKS_URL} failed: unusable JWKS: no \"keys\" array; \
             keeping the last good keys"
        )]
    );
    assert_eq!(resumed(&fx), [2]);
    assert_eq!(a.version(), Some(1));
    let state = world.shared_state();
    assert_eq!((state.version, state.failures), (1, 1));
}

#[test]
fn an_unusable_shared_body_is_reported_and_skipped() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    a.pause(1, T0);
    a.answer(ok(body(&["rsa"])), T0);
    let body_key = world.store.borrow().key_ending(".body").unwrap();
    world
        .store
        .borrow_mut()
        .set(&body_key, b"not json", None)
        .unwrap();
    let fx = b.tick(T0 + 1);
    assert!(!fx.keys_changed);
    assert_eq!(
        fx.notes,
        [Note::Warn(
            "shared JWKS version 1 unusable: not a JSON object".into()
        )]
    );
    assert_eq!(b.version(), None);
}

#[test]
fn discovery_then_keys_run_under_one_lease() {
    let world = World::default();
    let mut a = world.worker("a", &discovered_source());
    let mut b = world.worker("b", &discovered_source());
    a.pause(1, T0);
    b.pause(2, T0);
    assert_eq!(world.calls(), [METADATA_URL]);
    let fx = a.answer(metadata(CERTS_URL), T0 + 100);
    assert_eq!(
        fx.notes,
        [Note::Info(format!("JWKS discovered at {CERTS_URL}"))]
    );
    assert!(fx.resume.is_empty(), "the fetch is not over");
    // Between the two calls the lease stays with A.
    b.pause(3, T0 + 150);
    assert!(b.tick(T0 + 200).resume.is_empty());
    assert_eq!(world.calls(), [METADATA_URL, CERTS_URL]);
    let fx = a.answer(ok(body(&["ec"])), T0 + 300);
    assert_eq!(resumed(&fx), [1]);
    assert_eq!(resumed(&b.tick(T0 + 400)), [2, 3]);
    assert_eq!(b.version(), Some(1));
    // The next refresh goes to the discovered URL directly.
    a.pause(4, T0 + 30_300);
    assert_eq!(world.calls().last().unwrap(), CERTS_URL);
}

#[test]
fn a_failed_fetch_from_the_discovered_url_discovers_again() {
    let world = World::default();
    let mut a = world.worker("a", &discovered_source());
    a.pause(1, T0);
    a.answer(metadata(CERTS_URL), T0);
    a.answer(ok(body(&["rsa"])), T0);
    a.pause(2, T0 + 30_000);
    let fx = a.answer(Err("HTTP status 404".into()), T0 + 30_100);
    assert_eq!(
        failures(&fx),
        [format!(
            "JWKS fetch from {CERTS_URL} failed: HTTP status 404; keeping the last good keys"
        )]
    );
    a.tick(T0 + 31_100);
    assert_eq!(world.calls().last().unwrap(), METADATA_URL);
    a.answer(metadata(JWKS_URL), T0 + 31_200);
    assert_eq!(world.calls().last().unwrap(), JWKS_URL);
}

#[test]
fn a_discovery_failure_is_a_failed_attempt() {
    let world = World::default();
    let mut a = world.worker("a", &discovered_source());
    a.pause(1, T0);
    let wrong = json!({"issuer": "https://elsewhere", "jwks_uri": CERTS_URL});
    let fx = a.answer(ok(wrong.to_string().into_bytes()), T0 + 100);
    assert_eq!(resumed(&fx), [1]);
    let [why] = failures(&fx)[..] else {
        panic!("{:?}", fx.notes)
    };
    assert!(
        why.starts_with(&format!(
            "JWKS discovery from jwks_uri of {METADATA_URL} failed: "
        )),
        "{why}"
    );
    assert_eq!(world.calls(), [METADATA_URL]);
    assert_eq!(world.shared_state().failures, 1);
}

#[test]
fn an_answer_to_a_token_not_in_flight_is_ignored() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    a.pause(1, T0);
    let token = a.host.last_token;
    let fx = a
        .fetch
        .answer(&mut a.host, token + 1, ok(body(&["rsa"])), T0 + 10);
    assert!(!fx.keys_changed && fx.notes.is_empty() && fx.resume.is_empty());
    assert_eq!(a.version(), None);
    // The real answer still counts; a second copy of it does not.
    assert_eq!(resumed(&a.answer(ok(body(&["rsa"])), T0 + 20)), [1]);
    let fx = a.answer(ok(body(&["rsa2"])), T0 + 30);
    assert!(!fx.keys_changed && fx.notes.is_empty());
    assert_eq!(world.shared_state().version, 1);
}

#[test]
fn a_paused_request_waits_for_the_fetch_or_its_deadline_and_can_be_forgotten() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    a.pause(1, T0);
    b.pause(2, T0 + 10);
    b.pause(3, T0 + 20);
    b.fetch.forget(3);
    // A's fetch ends: B's request resumes at B's next tick, well before its deadline.
    assert!(b.tick(T0 + 50).resume.is_empty());
    a.answer(ok(body(&["rsa"])), T0 + 60);
    assert_eq!(resumed(&b.tick(T0 + 70)), [2]);
    // A request paused behind a fetch that never answers resumes at its own deadline.
    a.pause(4, T0 + 30_000);
    assert!(a.tick(T0 + 30_000 + WAIT_MS - 1).resume.is_empty());
    assert_eq!(resumed(&a.tick(T0 + 30_000 + WAIT_MS)), [4]);
}

#[test]
fn the_tick_refreshes_ahead_of_expiry() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    a.pause(1, T0);
    a.answer(
        Ok(Fetched {
            body: body(&["rsa"]),
            cache_control: Some("max-age=300".into()),
        }),
        T0,
    );
    // 300 s of life, refreshed in its last tenth.
    a.tick(T0 + 269_999);
    assert_eq!(world.calls().len(), 1);
    a.tick(T0 + 270_000);
    assert_eq!(world.calls().len(), 2);
    a.tick(T0 + 270_200);
    assert_eq!(world.calls().len(), 2, "one refresh in flight at a time");
}

#[test]
fn prepare_reads_shared_data_only_without_keys_and_sync_always() {
    let world = World::default();
    let mut a = world.worker("a", &source());
    let mut b = world.worker("b", &source());
    a.pause(1, T0);
    a.answer(ok(body(&["rsa"])), T0);
    assert!(b.fetch.prepare(&b.host).keys_changed);
    a.pause(2, T0 + 30_000);
    a.answer(ok(body(&["rsa", "rsa2"])), T0 + 30_000);
    // With keys, a request does not read shared data; an unknown kid syncs before fetching.
    assert!(!b.fetch.prepare(&b.host).keys_changed);
    assert_eq!(b.version(), Some(1));
    assert!(b.fetch.sync(&b.host).keys_changed);
    assert_eq!(b.version(), Some(2));
    assert!(!b.fetch.sync(&b.host).keys_changed);
}

/// Shared data where another worker runs between this worker's read of the lease and its
/// first write to it: the interleaving two threads can produce.
struct Interleaved<'a> {
    store: &'a RefCell<Store>,
    other: Option<Box<dyn FnOnce() + 'a>>,
}

impl SharedData for Interleaved<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.store.borrow().get(key)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), String> {
        if key.ends_with(".lease")
            && let Some(other) = self.other.take()
        {
            other();
        }
        self.store.borrow_mut().set(key, value, cas)
    }
}

/// Two interleaved lease attempts; returns who got it.
fn race_for_the_lease(store: &RefCell<Store>, entries: &Entries) -> (bool, bool) {
    let b_won = RefCell::new(false);
    let mut a = Interleaved {
        store,
        other: Some(Box::new(|| {
            let mut b = Interleaved { store, other: None };
            *b_won.borrow_mut() = entries.try_lease(&mut b, "b", T0, T0 + WAIT_MS);
        })),
    };
    let a_won = entries.try_lease(&mut a, "a", T0, T0 + WAIT_MS);
    drop(a);
    (a_won, b_won.into_inner())
}

#[test]
fn only_a_lease_entry_that_exists_makes_the_lease_exclusive() {
    let entries = Entries::new("identity");
    // Created at configure time: whoever writes second fails its compare-and-swap.
    let store = RefCell::new(Store::default());
    entries.create_lease(&mut Interleaved {
        store: &store,
        other: None,
    });
    assert_eq!(race_for_the_lease(&store, &entries), (false, true));
    // Missing: Envoy checks no cas on a missing key, and both workers hold "the" lease.
    let store = RefCell::new(Store::default());
    assert_eq!(race_for_the_lease(&store, &entries), (true, true));
}
