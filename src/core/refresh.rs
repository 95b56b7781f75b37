//! When to fetch the JWKS: expiry from `Cache-Control`, refresh ahead of expiry, backoff after
//! failures, and the unknown-`kid` debounce. Pure bookkeeping over times in milliseconds; the
//! host stores [`FetchState`] in shared data so every worker follows the same schedule.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ConfigError, bounded};
use super::url::HttpUrl;

/// Default of `jwks.timeoutMs`, also the provider calls' timeout when the keys are inline.
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5_000;
const FETCH_TIMEOUT_MS_RANGE: (u64, u64) = (100, 60_000);
const DEFAULT_CACHE_SECS: u64 = 600;
/// `Cache-Control: max-age` and `cacheDurationSeconds` are clamped into this range.
const CACHE_SECS_RANGE: (u64, u64) = (60, 86_400);
const DEFAULT_MIN_REFRESH_SECS: u64 = 30;
const MIN_REFRESH_SECS_RANGE: (u64, u64) = (1, 86_400);

/// A JWKS fetched through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub location: JwksLocation,
    pub cluster: String,
    pub timeout_ms: u64,
    pub cache_duration_secs: u64,
    pub min_refresh_interval_secs: u64,
}

/// Where a remote JWKS is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    /// A fixed URL: configured, or derived from the issuer and provider.
    Url(HttpUrl),
    /// The `jwks_uri` named by the provider's metadata document at `metadata`, looked up
    /// before the first fetch and again after a fetch from it fails.
    Discovered { metadata: HttpUrl },
}

impl JwksLocation {
    /// For logs and `check-config`.
    pub fn describe(&self) -> String {
        match self {
            Self::Url(url) => url.to_string(),
            Self::Discovered { metadata } => format!("jwks_uri of {metadata}"),
        }
    }
}

impl RemoteJwks {
    /// How long a whole fetch may take: one call, or two when the URL is discovered first.
    pub fn fetch_budget_ms(&self) -> u64 {
        match self.location {
            JwksLocation::Url(_) => self.timeout_ms,
            JwksLocation::Discovered { .. } => self.timeout_ms.saturating_mul(2),
        }
    }
}

impl RemoteJwks {
    /// The settings with `timeoutMs`, `cacheDurationSeconds` and `minRefreshIntervalSeconds`
    /// bounded (`None`: the default).
    pub fn from_config(
        location: JwksLocation,
        cluster: String,
        timeout_ms: Option<u64>,
        cache_duration_secs: Option<u64>,
        min_refresh_interval_secs: Option<u64>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            location,
            cluster,
            timeout_ms: bounded(
                timeout_ms,
                DEFAULT_FETCH_TIMEOUT_MS,
                FETCH_TIMEOUT_MS_RANGE,
                "jwks.timeoutMs",
            )?,
            cache_duration_secs: bounded(
                cache_duration_secs,
                DEFAULT_CACHE_SECS,
                CACHE_SECS_RANGE,
                "jwks.cacheDurationSeconds",
            )?,
            min_refresh_interval_secs: bounded(
                min_refresh_interval_secs,
                DEFAULT_MIN_REFRESH_SECS,
                MIN_REFRESH_SECS_RANGE,
                "jwks.minRefreshIntervalSeconds",
            )?,
        })
    }
}

/// Longest wait between retries after failures: an outage costs the IdP one fetch per this
/// interval (one worker holds the lease), and recovery takes at most this long.
const MAX_BACKOFF_MS: u64 = 10_000;
const FIRST_BACKOFF_MS: u64 = 1_000;

/// The fetch history shared by all workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchState {
    /// Bumped when a fetch brings a different body; workers re-parse the body, clear their
    /// verified-token cache and drop their ES256 tables when it changes. An identical body
    /// keeps it, so a refetch forced by a made-up `kid` costs no worker anything.
    pub version: u64,
    /// SHA-256 of the body `version` names.
    #[serde(default)]
    pub digest: [u8; 32],
    /// When the current keys stop being fresh (0: no keys yet).
    pub expires_at_ms: u64,
    /// End of the last fetch attempt, successful or not.
    pub last_attempt_ms: u64,
    /// Consecutive failures since the last success.
    pub failures: u32,
}

impl FetchState {
    /// Records a successful fetch of `body` at `now_ms` whose response carried
    /// `cache_control`. The version moves only when the body differs from the last one.
    pub fn succeeded(
        self,
        jwks: &RemoteJwks,
        body: &[u8],
        cache_control: Option<&str>,
        now_ms: u64,
    ) -> Self {
        let ttl_secs = max_age(cache_control)
            .unwrap_or(jwks.cache_duration_secs)
            .clamp(CACHE_SECS_RANGE.0, CACHE_SECS_RANGE.1);
        let digest: [u8; 32] = Sha256::digest(body).into();
        let unchanged = self.version != 0 && digest == self.digest;
        Self {
            version: if unchanged {
                self.version
            } else {
                // Never back to 0, which means "no keys yet".
                self.version.checked_add(1).unwrap_or(1)
            },
            digest,
            expires_at_ms: now_ms.saturating_add(ttl_secs.saturating_mul(1000)),
            last_attempt_ms: now_ms,
            failures: 0,
        }
    }

    /// Whether a worker holding keys parsed at `local_version` must parse the body this
    /// state names (and then drop its verified-token cache and ES256 tables).
    pub fn is_newer_than(&self, local_version: Option<u64>) -> bool {
        self.version != 0 && local_version != Some(self.version)
    }

    /// Records a failed fetch at `now_ms`; the last good keys stay in use.
    pub fn failed(self, now_ms: u64) -> Self {
        Self {
            last_attempt_ms: now_ms,
            failures: self.failures.saturating_add(1),
            ..self
        }
    }

    /// Whether a background refresh is due: after a failure once the backoff has passed,
    /// else when the keys are within the last tenth of their lifetime (at most a minute
    /// ahead). Before the first fetch nothing is due: the first token asks for keys.
    pub fn refresh_due(&self, now_ms: u64) -> bool {
        if self.failures > 0 {
            return now_ms >= self.last_attempt_ms.saturating_add(self.backoff_ms());
        }
        if self.version == 0 {
            return false;
        }
        let lifetime = self.expires_at_ms.saturating_sub(self.last_attempt_ms);
        let ahead = (lifetime / 10).min(60_000);
        now_ms >= self.expires_at_ms.saturating_sub(ahead)
    }

    /// Whether a token with an unknown `kid` may trigger a refetch now (one per window).
    pub fn may_refetch_for_kid(&self, jwks: &RemoteJwks, now_ms: u64) -> bool {
        let window = jwks.min_refresh_interval_secs.saturating_mul(1000);
        now_ms >= self.last_attempt_ms.saturating_add(window)
    }

    /// Exponential backoff after consecutive failures: 1 s, 2 s, 4 s, 8 s, then 10 s.
    fn backoff_ms(&self) -> u64 {
        let doublings = self.failures.saturating_sub(1).min(16);
        (FIRST_BACKOFF_MS << doublings).min(MAX_BACKOFF_MS)
    }
}

/// `max-age` from a `Cache-Control` value; `no-cache`/`no-store` count as zero (then clamped
/// up to the minimum, so an IdP cannot make every worker refetch on every request).
pub fn max_age(cache_control: Option<&str>) -> Option<u64> {
    let mut age = None;
    for directive in cache_control?.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(0);
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            age = value.trim_matches('"').parse().ok();
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::url::HttpUrl;

    const BODY: &[u8] = br#"{"keys":[]}"#;

    fn jwks() -> RemoteJwks {
        RemoteJwks {
            location: JwksLocation::Url(HttpUrl::parse("https://idp/jwks").unwrap()),
            cluster: "idp".into(),
            timeout_ms: 1000,
            cache_duration_secs: 600,
            min_refresh_interval_secs: 30,
        }
    }

    #[test]
    fn max_age_is_read_and_clamped() {
        assert_eq!(max_age(Some("public, max-age=3600")), Some(3600));
        assert_eq!(max_age(Some("no-store")), Some(0));
        assert_eq!(max_age(Some("public")), None);
        assert_eq!(max_age(None), None);
        let now = 1_000_000;
        let one_hour = FetchState::default().succeeded(&jwks(), BODY, Some("max-age=3600"), now);
        assert_eq!(one_hour.expires_at_ms, now + 3_600_000);
        let too_short = FetchState::default().succeeded(&jwks(), BODY, Some("max-age=5"), now);
        assert_eq!(too_short.expires_at_ms, now + 60_000);
        let too_long = FetchState::default().succeeded(&jwks(), BODY, Some("max-age=9999999"), now);
        assert_eq!(too_long.expires_at_ms, now + 86_400_000);
        let default = FetchState::default().succeeded(&jwks(), BODY, None, now);
        assert_eq!(default.expires_at_ms, now + 600_000);
        assert_eq!(default.version, 1);
    }

    #[test]
    fn refresh_runs_ahead_of_expiry() {
        let fetched = FetchState::default().succeeded(&jwks(), BODY, None, 0);
        assert!(!FetchState::default().refresh_due(0));
        assert!(!fetched.refresh_due(500_000));
        assert!(fetched.refresh_due(540_000));
    }

    #[test]
    fn failures_back_off_exponentially_and_keep_the_version() {
        let fetched = FetchState::default().succeeded(&jwks(), BODY, None, 0);
        let failed = fetched.failed(1_000_000);
        assert_eq!(failed.version, 1);
        assert!(!failed.refresh_due(1_000_500));
        assert!(failed.refresh_due(1_001_000));
        let twice = failed.failed(1_001_000);
        assert!(!twice.refresh_due(1_002_500));
        assert!(twice.refresh_due(1_003_000));
        let many = (0..40).fold(twice, |s, _| s.failed(0));
        assert!(!many.refresh_due(9_999));
        assert!(many.refresh_due(10_000));
    }

    #[test]
    fn unknown_kid_refetch_is_debounced() {
        let fetched = FetchState::default().succeeded(&jwks(), BODY, None, 100_000);
        assert!(!fetched.may_refetch_for_kid(&jwks(), 110_000));
        assert!(fetched.may_refetch_for_kid(&jwks(), 130_000));
    }

    #[test]
    fn an_identical_body_keeps_the_version_and_a_different_one_moves_it() {
        let first = FetchState::default().succeeded(&jwks(), BODY, None, 0);
        assert_eq!(first.version, 1);
        let same = first.failed(1_000).succeeded(&jwks(), BODY, None, 2_000);
        assert_eq!(same.version, 1);
        assert_eq!(same.failures, 0);
        assert_eq!(same.last_attempt_ms, 2_000);
        assert_eq!(same.expires_at_ms, 602_000, "the schedule still moves");
        let rotated = same.succeeded(&jwks(), br#"{"keys":[{}]}"#, None, 3_000);
        assert_eq!(rotated.version, 2);
        let back = rotated.succeeded(&jwks(), BODY, None, 4_000);
        assert_eq!(
            back.version, 3,
            "only the last body counts, not any earlier one"
        );
        let wrapped = FetchState {
            version: u64::MAX,
            ..back
        };
        assert_eq!(wrapped.succeeded(&jwks(), b"{}", None, 0).version, 1);
    }

    #[test]
    fn a_flood_of_unknown_kids_never_moves_the_version() {
        // Every debounce window a made-up kid forces a refetch; the IdP serves the same set.
        let mut state = FetchState::default().succeeded(&jwks(), BODY, None, 0);
        let mut refetches = 0;
        for now_ms in (0..600_000).step_by(250) {
            if state.may_refetch_for_kid(&jwks(), now_ms) {
                state = state.succeeded(&jwks(), BODY, None, now_ms);
                refetches += 1;
            }
        }
        assert_eq!(refetches, 19);
        assert_eq!(state.version, 1);
        // So a worker that parsed version 1 keeps its keys, tables and token cache.
        assert!(!state.is_newer_than(Some(1)));
        assert!(state.is_newer_than(None));
        assert!(!FetchState::default().is_newer_than(None));
    }

    #[test]
    fn a_state_stored_before_the_digest_existed_still_reads() {
        let old: FetchState = serde_json::from_str(
            r#"{"version":3,"expires_at_ms":10,"last_attempt_ms":5,"failures":0}"#,
        )
        .unwrap();
        assert_eq!(old.version, 3);
        // Its digest is unknown, so the next fetch moves the version once.
        assert_eq!(old.succeeded(&jwks(), BODY, None, 20).version, 4);
    }
}
