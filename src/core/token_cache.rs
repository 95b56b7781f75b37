//! A per-VM cache of verified tokens, so a client repeating its token pays for the signature
//! check once. A hit needs the whole token to match (full equality, never a hash alone); the
//! cache is filled only after every check passed, bounded in size and lifetime, and cleared
//! when the keys change.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;

use super::claims::VerifiedClaims;
use super::error::{ConfigError, bounded, bounded_size};

/// Defaults and bounds of `verifiedTokenCache`.
const DEFAULT_CAPACITY: u64 = 1024;
const CAPACITY_RANGE: (u64, u64) = (0, 65_536);
const DEFAULT_MAX_AGE_SECS: u64 = 300;
const MAX_AGE_RANGE: (u64, u64) = (1, 3600);

/// Cache sizing, from `verifiedTokenCache` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Entries kept at most; 0 disables the cache.
    pub capacity: usize,
    /// An entry lives at most this long, and never past the token's `exp`.
    pub max_age_secs: u64,
}

impl CachePolicy {
    /// `verifiedTokenCache.capacity` and `.maxAgeSeconds`, bounded (`None`: the default).
    pub fn from_config(
        capacity: Option<u64>,
        max_age_secs: Option<u64>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            capacity: bounded_size(
                capacity,
                DEFAULT_CAPACITY,
                CAPACITY_RANGE,
                "verifiedTokenCache.capacity",
            )?,
            max_age_secs: bounded(
                max_age_secs,
                DEFAULT_MAX_AGE_SECS,
                MAX_AGE_RANGE,
                "verifiedTokenCache.maxAgeSeconds",
            )?,
        })
    }
}

#[derive(Debug)]
struct Entry {
    token: Box<str>,
    claims: Arc<VerifiedClaims>,
    expires_at: u64,
}

/// Bytes of the token's end that go into its fingerprint: the end of the signature, which
/// differs between any two tokens an issuer signed.
const FINGERPRINT_TAIL: usize = 32;

/// Entries are found by a fingerprint (the token's length and last bytes, through a hash keyed
/// per VM), and a hit compares the whole token eight bytes at a time. Hashing the whole token
/// and comparing it byte by byte (wasm has no vector `memcmp`) cost about 0.6 µs a request in
/// V8. Two tokens with one fingerprint share a slot: the later one replaces the earlier, which
/// is then a miss, never another token's answer.
#[derive(Debug)]
pub struct TokenCache {
    policy: CachePolicy,
    entries: HashMap<u64, Entry, BuildHasherDefault<Prehashed>>,
    fingerprints: RandomState,
    /// Answers given from the cache, for the host's `token_cache.hit` counter.
    hits: u64,
}

impl TokenCache {
    pub fn new(policy: CachePolicy) -> Self {
        Self {
            policy,
            entries: HashMap::default(),
            fingerprints: RandomState::new(),
            hits: 0,
        }
    }

    fn fingerprint(&self, token: &str) -> u64 {
        let bytes = token.as_bytes();
        let tail = bytes
            .get(bytes.len().saturating_sub(FINGERPRINT_TAIL)..)
            .unwrap_or(bytes);
        let mut hasher = self.fingerprints.build_hasher();
        hasher.write_usize(bytes.len());
        hasher.write(tail);
        hasher.finish()
    }

    /// The claims of `token` if it was verified before and the entry is still live.
    pub fn get(&mut self, token: &str, now: u64) -> Option<Arc<VerifiedClaims>> {
        let fingerprint = self.fingerprint(token);
        let entry = self.entries.get(&fingerprint)?;
        if !same_token(&entry.token, token) {
            return None;
        }
        if now < entry.expires_at {
            self.hits = self.hits.wrapping_add(1);
            return Some(Arc::clone(&entry.claims));
        }
        self.entries.remove(&fingerprint);
        None
    }

    /// Remembers a verified token until `min(exp, now + max_age)`.
    pub fn insert(&mut self, token: &str, claims: Arc<VerifiedClaims>, now: u64) {
        if self.policy.capacity == 0 {
            return;
        }
        let cap = now.saturating_add(self.policy.max_age_secs);
        let expires_at = claims
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .map_or(cap, |exp| exp.min(cap));
        if expires_at <= now {
            return;
        }
        if self.entries.len() >= self.policy.capacity {
            self.make_room(now);
        }
        let entry = Entry {
            token: token.into(),
            claims,
            expires_at,
        };
        self.entries.insert(self.fingerprint(token), entry);
    }

    /// Drops expired entries; if the cache is still full, drops an eighth of it (arbitrary
    /// entries), so a stream of new tokens costs amortised O(1) per insert, not a scan each.
    fn make_room(&mut self, now: u64) {
        self.entries.retain(|_, entry| now < entry.expires_at);
        if self.entries.len() < self.policy.capacity {
            return;
        }
        let evict = (self.policy.capacity / 8).max(1);
        let victims: Vec<u64> = self.entries.keys().take(evict).copied().collect();
        for victim in victims {
            self.entries.remove(&victim);
        }
    }

    /// Forgets everything: the key set changed, so earlier verifications may no longer hold.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn hits(&self) -> u64 {
        self.hits
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whole-token equality, eight bytes per comparison, from the end (where two tokens of one
/// issuer differ first).
fn same_token(a: &str, b: &str) -> bool {
    let (a_words, a_rest) = a.as_bytes().as_chunks::<8>();
    let (b_words, b_rest) = b.as_bytes().as_chunks::<8>();
    a.len() == b.len() && a_rest == b_rest && a_words.iter().rev().eq(b_words.iter().rev())
}

/// The map's keys are already keyed hashes: used as they are.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(sub: &str) -> Arc<VerifiedClaims> {
        let Ok(object) = serde_json::from_value(json!({"sub": sub, "exp": 2_000})) else {
            panic!("claims");
        };
        Arc::new(VerifiedClaims::new(object))
    }

    fn cache() -> TokenCache {
        TokenCache::new(CachePolicy {
            capacity: 8,
            max_age_secs: 300,
        })
    }

    #[test]
    fn a_hit_needs_the_whole_token() {
        let mut cache = cache();
        let token = format!("{}.{}.{}", "h".repeat(20), "p".repeat(300), "s".repeat(40));
        cache.insert(&token, claims("alice"), 1_000);
        assert_eq!(
            cache
                .get(&token, 1_001)
                .and_then(|c| c.subject().map(str::to_string)),
            Some("alice".into())
        );
        // Same length and same last 32 bytes (so the same fingerprint), one byte apart
        // anywhere else: a miss, never alice's claims.
        for at in [0, 7, 8, 150, token.len() - 33] {
            let mut other = token.clone().into_bytes();
            other[at] ^= 1;
            let other = String::from_utf8(other).unwrap();
            assert!(cache.get(&other, 1_001).is_none(), "byte {at}");
        }
        assert!(cache.get(&token[1..], 1_001).is_none());
        assert!(cache.get(&format!("{token}s"), 1_001).is_none());
        assert!(cache.get("", 1_001).is_none());
    }

    #[test]
    fn tokens_sharing_a_fingerprint_share_a_slot() {
        let mut cache = cache();
        let tail = "t".repeat(FINGERPRINT_TAIL);
        let (a, b) = (format!("aaaa{tail}"), format!("bbbb{tail}"));
        cache.insert(&a, claims("a"), 1_000);
        cache.insert(&b, claims("b"), 1_000);
        assert_eq!(
            cache
                .get(&b, 1_001)
                .and_then(|c| c.subject().map(str::to_string)),
            Some("b".into())
        );
        assert!(cache.get(&a, 1_001).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn short_tokens_and_odd_lengths_compare_whole() {
        for (a, b, same) in [
            ("", "", true),
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("abcdefgh", "abcdefgh", true),
            ("abcdefghi", "abcdefghj", false),
            ("abcdefghi", "bbcdefghi", false),
            ("abcdefgh", "abcdefghi", false),
        ] {
            assert_eq!(same_token(a, b), same, "{a:?} {b:?}");
        }
    }

    #[test]
    fn entries_expire_and_the_bound_holds() {
        let mut cache = cache();
        let token = |i: usize| format!("{}-token-{i:04}", "x".repeat(40));
        for i in 0..20 {
            cache.insert(&token(i), claims("u"), 1_000);
            assert!(cache.len() <= 8);
        }
        assert_eq!(cache.len(), 8);
        assert!(cache.get(&token(19), 1_299).is_some());
        assert!(cache.get(&token(19), 1_300).is_none(), "max age");
        assert_eq!(cache.len(), 7);
    }
}
