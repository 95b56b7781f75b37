//! A per-VM cache of verified tokens, so a client repeating its token pays for the signature
//! check once. Keyed by the whole token (full string equality, never a hash alone), filled only
//! after every check passed, bounded in size and lifetime, and cleared when the keys change.

use std::collections::HashMap;
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
    claims: Arc<VerifiedClaims>,
    expires_at: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    policy: CachePolicy,
    entries: HashMap<Box<str>, Entry>,
    /// Answers given from the cache, for the host's `token_cache.hit` counter.
    hits: u64,
}

impl TokenCache {
    pub fn new(policy: CachePolicy) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
            hits: 0,
        }
    }

    /// The claims of `token` if it was verified before and the entry is still live.
    pub fn get(&mut self, token: &str, now: u64) -> Option<Arc<VerifiedClaims>> {
        let entry = self.entries.get(token)?;
        if now < entry.expires_at {
            self.hits = self.hits.wrapping_add(1);
            return Some(Arc::clone(&entry.claims));
        }
        self.entries.remove(token);
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
        self.entries
            .insert(token.into(), Entry { claims, expires_at });
    }

    /// Drops expired entries; if the cache is still full, drops an eighth of it (arbitrary
    /// entries), so a stream of new tokens costs amortised O(1) per insert, not a scan each.
    fn make_room(&mut self, now: u64) {
        self.entries.retain(|_, entry| now < entry.expires_at);
        if self.entries.len() < self.policy.capacity {
            return;
        }
        let evict = (self.policy.capacity / 8).max(1);
        let victims: Vec<Box<str>> = self.entries.keys().take(evict).cloned().collect();
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
