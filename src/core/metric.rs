//! The filter's counters: [`Metric`] is the only list of stat names. The host defines one
//! counter per variant by iterating [`Metric::ALL`], and every denial maps to a variant by an
//! exhaustive `match` (`verify::Rejection::metric`, `decision::Denial::metric`), so a new
//! denial reason without a counter does not compile.

/// Declares the enum, its names and `ALL` from one list, so none can miss a variant.
macro_rules! metrics {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// One counter, `mcp_authn.<name>` in Envoy's `/stats`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Metric {
            $($(#[$doc])* $variant,)*
        }

        impl Metric {
            /// Every counter, in declaration order (`metric as usize` is its index).
            pub const ALL: &[Metric] = &[$(Metric::$variant,)*];

            /// The stat name after `mcp_authn.`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => $name,)*
                }
            }
        }
    };
}

metrics! {
    /// A valid token.
    Allowed => "allowed",
    /// Let through without a valid token by `mode`.
    PassedUnauthenticated => "passed_unauthenticated",
    DeniedMissing => "denied.missing",
    DeniedInvalidRequest => "denied.invalid_request",
    DeniedMalformed => "denied.malformed",
    DeniedUnsupportedAlg => "denied.unsupported_alg",
    DeniedUnknownKid => "denied.unknown_kid",
    DeniedBadSignature => "denied.bad_signature",
    DeniedExpired => "denied.expired",
    DeniedNotYetValid => "denied.not_yet_valid",
    DeniedIssuer => "denied.issuer",
    DeniedAudience => "denied.audience",
    DeniedMissingClaim => "denied.missing_claim",
    DeniedInvalidClaim => "denied.invalid_claim",
    DeniedKeysUnavailable => "denied.keys_unavailable",
    JwksFetchSuccess => "jwks_fetch.success",
    JwksFetchFailure => "jwks_fetch.failure",
    /// A refetch forced by a token naming an unknown `kid`.
    JwksRefetchUnknownKid => "jwks_refetch.unknown_kid",
    /// Tokens answered from the verified-token cache (a drop in its rate after a JWKS refetch
    /// means the cache was flushed).
    TokenCacheHit => "token_cache.hit",
    /// Requests no server of a multi-server config took (rejected, passed, or no route server).
    Unmatched => "unmatched",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_listed_once_at_its_index_with_a_unique_name() {
        for (index, metric) in Metric::ALL.iter().enumerate() {
            assert_eq!(*metric as usize, index, "{metric:?}");
        }
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
        assert_eq!(Metric::DeniedUnknownKid.name(), "denied.unknown_kid");
        assert_eq!(Metric::TokenCacheHit.name(), "token_cache.hit");
    }
}
