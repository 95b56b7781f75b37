//! The per-request decision: `decide(config, request, keys, now)` returns what the host must
//! do, as plain data. Reading this file top to bottom is reading the request path.

use super::claims::VerifiedClaims;
use super::config::{Config, Mode};
use super::jwks::KeySet;
use super::metadata::PRM_PREFIX;
use super::metric::Metric;
use super::provider::{self, IdpCall, KEYCLOAK_CERTS_PATH, Provider, ProviderConfig};
use super::reply::{
    ErrorCode, FIVE_MINUTES, HeaderEdits, LocalReply, challenge_reply, error_body,
    method_not_allowed,
};
use super::request::Request;
use super::token::{self, Credential, InvalidRequest, Removal};
use super::token_cache::TokenCache;
use super::url::is_plain_path;
use super::verify::{self, Rejection};
use std::sync::Arc;

/// Authorization-server discovery paths: public, and never answered with a challenge.
const AS_METADATA_PREFIXES: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

/// The signing keys as the host currently holds them.
#[derive(Debug, Clone, Copy)]
pub enum KeyState<'a> {
    /// Keys are loaded; `may_refetch` says whether an unknown `kid` may trigger a refetch now.
    Ready { keys: &'a KeySet, may_refetch: bool },
    /// No keys yet; `may_fetch` is false once a fetch for this request already failed.
    Missing { may_fetch: bool },
}

/// What the host must do with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let it through with these header edits.
    Forward {
        edits: HeaderEdits,
        outcome: Outcome,
    },
    /// Answer locally.
    Respond { reply: LocalReply, outcome: Outcome },
    /// Pause, fetch the JWKS, then decide again. `unknown_kid` tells a rotation refetch from a
    /// first fetch.
    FetchKeys { unknown_kid: bool },
    /// Ask the fronted identity provider, then answer with `provider::finish`.
    AskIdp(IdpCall),
}

/// Why the request went the way it did, for stats and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A valid token, with its verified claims (for `mcpAuthorization` rules on the body).
    Allowed {
        claims: Arc<VerifiedClaims>,
    },
    /// Let through without a valid token (optional / permissive modes).
    Unauthenticated {
        denial: Option<Denial>,
    },
    Denied(Denial),
    /// A public well-known path.
    Public,
}

impl Outcome {
    /// The counter this outcome is counted under (`None`: public paths are not counted).
    pub fn metric(&self) -> Option<Metric> {
        match self {
            Self::Allowed { .. } => Some(Metric::Allowed),
            Self::Unauthenticated { .. } => Some(Metric::PassedUnauthenticated),
            Self::Denied(denial) => Some(denial.metric()),
            Self::Public => None,
        }
    }
}

/// Why a request has no valid credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    Missing,
    InvalidRequest(InvalidRequest),
    Token(Rejection),
}

impl Denial {
    /// The counter this denial is counted under.
    pub fn metric(&self) -> Metric {
        match self {
            Self::Missing => Metric::DeniedMissing,
            Self::InvalidRequest(_) => Metric::DeniedInvalidRequest,
            Self::Token(rejection) => rejection.metric(),
        }
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("no credential"),
            Self::InvalidRequest(why) => f.write_str(why.description()),
            Self::Token(rejection) => rejection.fmt(f),
        }
    }
}

/// Which part of the API a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/.well-known/oauth-protected-resource{suffix}`, answered by the filter.
    ResourceMetadata {
        suffix: &'a str,
    },
    /// Authorization-server discovery (`{suffix}` after the well-known prefix): answered from
    /// the fronted provider when one is configured, else passed through without a token.
    PublicDiscovery {
        suffix: &'a str,
    },
    Protected,
}

/// Classifies a path (without query). Only exact prefixes followed by nothing or `/` count, and
/// a path that could be normalised elsewhere (dot segments, escapes) is never public.
pub fn route(path: &str) -> Route<'_> {
    if let Some(suffix) = well_known_suffix(path, PRM_PREFIX) {
        return Route::ResourceMetadata { suffix };
    }
    let discovery = AS_METADATA_PREFIXES
        .iter()
        .find_map(|prefix| well_known_suffix(path, prefix));
    match discovery {
        Some(suffix) if is_plain_path(path) => Route::PublicDiscovery { suffix },
        _ => Route::Protected,
    }
}

fn well_known_suffix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Decides one request. Token extraction comes first, so a request without a token never
/// asks for keys.
pub fn decide(config: &Config, request: &Request, keys: KeyState<'_>, now: u64) -> Decision {
    decide_inner(config, request, keys, now, None)
}

/// [`decide`], answering repeated tokens from `cache` and filling it with new verifications.
pub fn decide_cached(
    config: &Config,
    request: &Request,
    keys: KeyState<'_>,
    now: u64,
    cache: &mut TokenCache,
) -> Decision {
    decide_inner(config, request, keys, now, Some(cache))
}

fn decide_inner(
    config: &Config,
    request: &Request,
    keys: KeyState<'_>,
    now: u64,
    cache: Option<&mut TokenCache>,
) -> Decision {
    match route(request.path_only()) {
        Route::ResourceMetadata { suffix } => return metadata_reply(config, request, suffix),
        Route::PublicDiscovery { suffix } => return discovery(config, request, suffix),
        Route::Protected => {}
    }
    if let Some(provider) = &config.provider {
        if serves_jwks(provider, request.path_only()) {
            return jwks_reply(request, keys);
        }
        if let Some(path) = provider::passage_path(provider, request) {
            return to_provider(config, path);
        }
    }
    let credential = match token::extract(&config.location, request) {
        Ok(Some(credential)) => credential,
        Ok(None) => return without_credential(config, request, Denial::Missing),
        Err(invalid) => {
            return without_credential(config, request, Denial::InvalidRequest(invalid));
        }
    };
    match check_token(config, credential.token, keys, now, cache) {
        Ok(claims) => allowed(config, credential, &claims),
        Err(TokenCheck::Fetch { unknown_kid }) => Decision::FetchKeys { unknown_kid },
        Err(TokenCheck::Rejected(rejection)) => {
            without_credential(config, request, Denial::Token(rejection))
        }
    }
}

enum TokenCheck {
    Fetch { unknown_kid: bool },
    Rejected(Rejection),
}

fn check_token(
    config: &Config,
    token: &str,
    keys: KeyState<'_>,
    now: u64,
    mut cache: Option<&mut TokenCache>,
) -> Result<Arc<VerifiedClaims>, TokenCheck> {
    if token.len() > config.max_token_bytes {
        return Err(TokenCheck::Rejected(Rejection::TooLarge {
            size: token.len(),
            max: config.max_token_bytes,
        }));
    }
    if let Some(claims) = cache.as_deref_mut().and_then(|c| c.get(token, now)) {
        return Ok(claims);
    }
    match keys {
        KeyState::Missing { may_fetch: true } => match verify::check_structure(token) {
            Ok(()) => Err(TokenCheck::Fetch { unknown_kid: false }),
            Err(rejection) => Err(TokenCheck::Rejected(rejection)),
        },
        KeyState::Missing { may_fetch: false } => {
            Err(TokenCheck::Rejected(Rejection::KeysUnavailable))
        }
        KeyState::Ready { keys, may_refetch } => {
            match verify::verify(token, keys, &config.claims, now) {
                Ok(claims) => {
                    let claims = Arc::new(claims);
                    if let Some(cache) = cache {
                        cache.insert(token, Arc::clone(&claims), now);
                    }
                    Ok(claims)
                }
                Err(Rejection::UnknownKid(_)) if may_refetch => {
                    Err(TokenCheck::Fetch { unknown_kid: true })
                }
                Err(rejection) => Err(TokenCheck::Rejected(rejection)),
            }
        }
    }
}

fn allowed(config: &Config, credential: Credential<'_>, claims: &Arc<VerifiedClaims>) -> Decision {
    let mut edits = spoof_guard(config);
    match credential.removal {
        Removal::Header(name) => edits.remove.push(name),
        Removal::Path(path) => edits.set.push((":path".into(), path)),
        Removal::Cookie(Some(rest)) => edits.set.push(("cookie".into(), rest)),
        Removal::Cookie(None) => edits.remove.push("cookie".into()),
    }
    for mapping in &config.claim_headers {
        if let Some(value) = claims.header_value(&mapping.claim) {
            edits.set.push((mapping.header.clone(), value));
        }
    }
    Decision::Forward {
        edits,
        outcome: Outcome::Allowed {
            claims: Arc::clone(claims),
        },
    }
}

/// Claim headers arriving from the client are dropped, so the upstream can trust them; so is
/// the provider route header when a passage exists, so only the filter routes there.
fn spoof_guard(config: &Config) -> HeaderEdits {
    let mut remove: Vec<String> = config
        .claim_headers
        .iter()
        .map(|m| m.header.clone())
        .collect();
    if config
        .provider
        .as_ref()
        .is_some_and(|p| p.gateway_prefix.is_some())
    {
        remove.push(provider::ROUTE_HEADER.into());
    }
    HeaderEdits {
        remove,
        set: Vec::new(),
    }
}

/// A passage request: on to the provider with its own path, no token needed (these are the
/// provider's login and token endpoints; their credentials are the provider's business).
fn to_provider(config: &Config, path: String) -> Decision {
    let mut edits = spoof_guard(config);
    edits.set.push((":path".into(), path));
    edits.set.push((
        provider::ROUTE_HEADER.into(),
        provider::ROUTE_TO_PROVIDER.into(),
    ));
    Decision::Forward {
        edits,
        outcome: Outcome::Public,
    }
}

/// The mode table (spec section 4) for a request without a valid credential.
fn without_credential(config: &Config, request: &Request, denial: Denial) -> Decision {
    let passes = match (config.mode, &denial) {
        (Mode::Strict, _) => false,
        (Mode::Optional, Denial::Missing) => true,
        (Mode::Optional, _) => false,
        (Mode::Permissive, _) => true,
    };
    if passes {
        let denial = (denial != Denial::Missing).then_some(denial);
        return Decision::Forward {
            edits: spoof_guard(config),
            outcome: Outcome::Unauthenticated { denial },
        };
    }
    Decision::Respond {
        reply: denial_reply(config, request, &denial),
        outcome: Outcome::Denied(denial),
    }
}

fn denial_reply(config: &Config, request: &Request, denial: &Denial) -> LocalReply {
    let error = match denial {
        Denial::Missing => None,
        Denial::InvalidRequest(why) => Some((ErrorCode::InvalidRequest, why.description())),
        Denial::Token(rejection) => Some((ErrorCode::InvalidToken, rejection.description())),
    };
    challenge_reply(
        &config.metadata.metadata_url(request),
        config.metadata.scope_hint(),
        error,
    )
}

/// Discovery paths: the fronted provider's adapted metadata and registration, or a plain
/// pass-through when no provider is configured.
fn discovery(config: &Config, request: &Request, suffix: &str) -> Decision {
    let Some(provider_config) = &config.provider else {
        return Decision::Forward {
            edits: spoof_guard(config),
            outcome: Outcome::Public,
        };
    };
    if suffix.ends_with(provider::REGISTRATION_SUFFIX) {
        return match provider::registration_call(provider_config) {
            Some(call) if request.method == "POST" => Decision::AskIdp(call),
            Some(_) => public(method_not_allowed("POST")),
            None => public(LocalReply::json(
                404,
                error_body("not_found", "registration is not offered by this gateway"),
            )),
        };
    }
    if request.method != "GET" && request.method != "HEAD" {
        return public(method_not_allowed("GET, HEAD"));
    }
    Decision::AskIdp(provider::metadata_call(
        provider_config,
        config.metadata.origin_for(request),
        suffix,
    ))
}

/// The gateway serves the key set at `/.well-known/jwks.json` and, for Keycloak, at the
/// realm's cert path, so clients and the gateway agree on the keys.
fn serves_jwks(provider: &ProviderConfig, path: &str) -> bool {
    if path == "/.well-known/jwks.json" {
        return true;
    }
    provider.kind == Provider::Keycloak
        && path
            .strip_suffix(KEYCLOAK_CERTS_PATH)
            .is_some_and(|realm| realm == provider.issuer_path())
}

fn jwks_reply(request: &Request, keys: KeyState<'_>) -> Decision {
    let reply = match keys {
        _ if request.method != "GET" && request.method != "HEAD" => method_not_allowed("GET, HEAD"),
        KeyState::Ready { keys, .. } => LocalReply {
            status: 200,
            headers: vec![("content-type".into(), "application/jwk-set+json".into())],
            body: keys.public_document(),
        }
        .public()
        .with("cache-control", FIVE_MINUTES),
        KeyState::Missing { may_fetch: true } => return Decision::FetchKeys { unknown_kid: false },
        KeyState::Missing { may_fetch: false } => LocalReply::json(
            503,
            error_body(
                "temporarily_unavailable",
                "signing keys are not available yet",
            ),
        )
        .with("retry-after", "5"),
    };
    public(reply)
}

fn public(reply: LocalReply) -> Decision {
    Decision::Respond {
        reply,
        outcome: Outcome::Public,
    }
}

fn metadata_reply(config: &Config, request: &Request, suffix: &str) -> Decision {
    if request.method != "GET" && request.method != "HEAD" {
        return public(method_not_allowed("GET, HEAD"));
    }
    public(
        LocalReply::json(200, config.metadata.document(request, suffix))
            .public()
            .with("cache-control", FIVE_MINUTES),
    )
}

#[cfg(test)]
mod tests;
