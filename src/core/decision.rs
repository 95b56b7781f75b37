//! The per-request decision, read top to bottom: [`route`] says where a request goes,
//! [`decide`] what the host must do with it, as plain data. A request paused for keys comes back
//! through [`Paused::resume`], whose [`Final`] decision cannot ask for keys again.

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
use super::rfc9207::PassageReturn;
use super::token::{self, Credential, InvalidRequest, Removal};
use super::token_cache::TokenCache;
use super::url::is_plain_path;
use super::verify::{self, Rejection};
use std::convert::Infallible;
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

/// What [`decide`] is given of the keys: their state, and the verified-token cache that goes
/// with them (none: every token is verified).
#[derive(Debug)]
pub struct Keys<'a> {
    pub state: KeyState<'a>,
    pub cache: Option<&'a mut TokenCache>,
}

impl<'a> From<KeyState<'a>> for Keys<'a> {
    fn from(state: KeyState<'a>) -> Self {
        Self { state, cache: None }
    }
}

/// What the host must do with the request. `W` is what it may be asked to wait for: a
/// [`Wait`] on a request's first pass, nothing ([`Final`]) once it has waited.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<W = Wait> {
    /// Let it through with these header edits.
    Forward {
        edits: HeaderEdits,
        outcome: Outcome,
        /// A request in the provider's passage: its redirect's RFC 9207 `iss` is rewritten.
        passage: Option<Arc<PassageReturn>>,
    },
    /// Answer locally.
    Respond { reply: LocalReply, outcome: Outcome },
    /// Wait for something, then answer or decide again.
    Wait(W),
}

/// A decision that cannot wait: a resumed request's, and what the host carries out.
pub type Final = Decision<Infallible>;

/// What a request's first pass may wait for.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// Pause, fetch the JWKS, then [`Paused::resume`]. `unknown_kid` tells a rotation refetch
    /// from a first fetch.
    FetchKeys { unknown_kid: bool, paused: Paused },
    /// Ask the fronted identity provider, then answer with `provider::finish`.
    AskIdp(Box<IdpCall>),
    /// Read the body of a registration the gateway answers itself with `clientId`, then answer
    /// with `provider::local_registration`.
    RegisterLocally { client_id: String },
}

/// A request paused for keys, and what it waits for. Only [`decide`] makes one, so a resumed
/// request is always one that can be decided from the keys alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paused(Waiting);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// A token to verify.
    Token,
    /// The key set the gateway serves.
    KeySet,
}

impl Decision {
    /// The decision when it waits for nothing; `Err` hands back what it waits for.
    pub fn into_final(self) -> Result<Final, Wait> {
        match self {
            Self::Forward {
                edits,
                outcome,
                passage,
            } => Ok(Decision::Forward {
                edits,
                outcome,
                passage,
            }),
            Self::Respond { reply, outcome } => Ok(Decision::Respond { reply, outcome }),
            Self::Wait(wait) => Err(wait),
        }
    }
}

impl From<Final> for Decision {
    fn from(decision: Final) -> Self {
        match decision {
            Decision::Forward {
                edits,
                outcome,
                passage,
            } => Self::Forward {
                edits,
                outcome,
                passage,
            },
            Decision::Respond { reply, outcome } => Self::Respond { reply, outcome },
            Decision::Wait(never) => match never {},
        }
    }
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
    /// No server of a multi-server config took the request (`core::servers`).
    Unselected(Unselected),
}

/// Why no server took a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unselected {
    /// No server matches: `unmatched` decides (404, or passed untouched).
    NoMatch,
    /// The path is not plain, so the upstream could read it as another server's (400).
    NotPlain,
    /// `serverSelection: routeMetadata`, and the route names no configured server (500).
    NoRouteServer,
}

impl Unselected {
    pub fn description(self) -> &'static str {
        match self {
            Self::NoMatch => "no MCP server is configured for this host and path",
            Self::NotPlain => "the path is not plain (dot segments, escapes, // or ;)",
            Self::NoRouteServer => {
                "the route's metadata filter_metadata.mcp_authn.server names no configured server"
            }
        }
    }
}

impl Outcome {
    /// The counter this outcome is counted under (`None`: public paths are not counted).
    pub fn metric(&self) -> Option<Metric> {
        match self {
            Self::Allowed { .. } => Some(Metric::Allowed),
            Self::Unauthenticated { .. } => Some(Metric::PassedUnauthenticated),
            Self::Denied(denial) => Some(denial.metric()),
            Self::Public => None,
            Self::Unselected(Unselected::NotPlain) => Some(Metric::DeniedInvalidRequest),
            Self::Unselected(_) => Some(Metric::Unmatched),
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

/// Where a request goes. Every path the gateway treats specially is here.
#[derive(Debug, Clone)]
pub enum Route<'a> {
    /// `/.well-known/oauth-protected-resource{suffix}`, answered by the filter.
    ResourceMetadata { suffix: &'a str },
    /// Authorization-server discovery without a fronted provider: passed through, no token.
    PublicDiscovery,
    /// Authorization-server metadata (`{suffix}` after the well-known prefix), adapted from
    /// the fronted provider's.
    ProviderMetadata {
        provider: &'a ProviderConfig,
        suffix: &'a str,
    },
    /// Client registration under the authorization-server metadata path.
    Registration { provider: &'a ProviderConfig },
    /// The key set the gateway serves for a fronted provider.
    KeySet,
    /// The provider's passage: on to the provider with its own path (and query).
    Passage {
        provider: &'a ProviderConfig,
        path: String,
    },
    /// Everything else: the MCP resource, behind a token.
    Protected,
}

/// Decides one request on its first pass. Token extraction comes first, so a request without a
/// token never asks for keys.
pub fn decide<'k>(
    config: &Config,
    request: &Request,
    keys: impl Into<Keys<'k>>,
    now: u64,
) -> Decision {
    let Keys { state, cache } = keys.into();
    match route(config, request) {
        Route::ResourceMetadata { suffix } => metadata_reply(config, request, suffix).into(),
        Route::PublicDiscovery => pass_without_token(config).into(),
        Route::ProviderMetadata { provider, suffix } => {
            provider_metadata(config, provider, request, suffix)
        }
        Route::Registration { provider } => registration(provider, request),
        Route::KeySet => match state {
            KeyState::Missing { may_fetch: true } if is_read(request) => {
                fetch_keys(false, Waiting::KeySet)
            }
            KeyState::Ready { keys, .. } => jwks_reply(request, Some(keys)).into(),
            KeyState::Missing { .. } => jwks_reply(request, None).into(),
        },
        Route::Passage { provider, path } => to_provider(config, provider, path).into(),
        Route::Protected => protected(config, request, state, now, cache),
    }
}

impl Paused {
    /// Decides a request again after its wait for keys, with whatever keys there are now
    /// (`None`: still none).
    pub fn resume(
        self,
        config: &Config,
        request: &Request,
        keys: Option<&KeySet>,
        now: u64,
    ) -> Final {
        match self.0 {
            Waiting::KeySet => jwks_reply(request, keys),
            Waiting::Token => match token::extract(&config.location, request) {
                Ok(Some(credential)) => {
                    let checked = verify_token(config, credential.token, keys, now, None);
                    credential_decision(config, request, credential, checked)
                }
                Ok(None) => without_credential(config, request, Denial::Missing),
                Err(invalid) => {
                    without_credential(config, request, Denial::InvalidRequest(invalid))
                }
            },
        }
    }
}

/// A token whose (unverified) `iss` names none of the server's issuers: refused before any key
/// or signature work, with the mode's answer, as any invalid token.
pub fn unknown_issuer(config: &Config, request: &Request) -> Final {
    without_credential(config, request, Denial::Token(Rejection::UnknownIssuer))
}

/// Classifies a request by its path (without query). Only exact prefixes followed by nothing
/// or `/` count, and a path that could be normalised elsewhere (dot segments, escapes) is never
/// public.
pub fn route<'a>(config: &'a Config, request: &'a Request) -> Route<'a> {
    let path = request.path_only();
    if let Some(suffix) = well_known_suffix(path, PRM_PREFIX) {
        return Route::ResourceMetadata { suffix };
    }
    let discovery = AS_METADATA_PREFIXES
        .iter()
        .find_map(|prefix| well_known_suffix(path, prefix))
        .filter(|_| is_plain_path(path));
    let Some(provider) = &config.provider else {
        return match discovery {
            Some(_) => Route::PublicDiscovery,
            None => Route::Protected,
        };
    };
    match discovery {
        Some(suffix) if suffix.ends_with(provider::REGISTRATION_SUFFIX) => {
            Route::Registration { provider }
        }
        Some(suffix) => Route::ProviderMetadata { provider, suffix },
        None if serves_jwks(provider, path) => Route::KeySet,
        None => match provider::passage_path(provider, request) {
            Some(path) => Route::Passage { provider, path },
            None => Route::Protected,
        },
    }
}

fn well_known_suffix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
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

fn metadata_reply(config: &Config, request: &Request, suffix: &str) -> Final {
    if !is_read(request) {
        return answer(method_not_allowed("GET, HEAD"));
    }
    answer(
        LocalReply::json(200, config.metadata.document(request, suffix))
            .public()
            .with("cache-control", FIVE_MINUTES),
    )
}

/// Passes a request on without a token.
fn pass_without_token(config: &Config) -> Final {
    Decision::Forward {
        edits: spoof_guard(config),
        outcome: Outcome::Public,
        passage: None,
    }
}

/// The fronted provider's metadata, adapted for the client that asked.
fn provider_metadata(
    config: &Config,
    provider: &ProviderConfig,
    request: &Request,
    suffix: &str,
) -> Decision {
    if !is_read(request) {
        return answer(method_not_allowed("GET, HEAD")).into();
    }
    let call = provider::metadata_call(provider, config.metadata.origin_for(request), suffix);
    Decision::Wait(Wait::AskIdp(Box::new(call)))
}

/// Client registration: answered here with `clientId`, forwarded to a provider that takes
/// registrations, or refused.
fn registration(provider: &ProviderConfig, request: &Request) -> Decision {
    let wait = match (&provider.client_id, provider::registration_call(provider)) {
        (Some(client_id), _) => Wait::RegisterLocally {
            client_id: client_id.clone(),
        },
        (None, Some(call)) => Wait::AskIdp(Box::new(call)),
        (None, None) => {
            let reply = LocalReply::json(
                404,
                error_body("not_found", "registration is not offered by this gateway"),
            );
            return answer(reply).into();
        }
    };
    if request.method != "POST" {
        return answer(method_not_allowed("POST")).into();
    }
    Decision::Wait(wait)
}

/// The key set the gateway serves (`None`: no keys yet).
fn jwks_reply(request: &Request, keys: Option<&KeySet>) -> Final {
    if !is_read(request) {
        return answer(method_not_allowed("GET, HEAD"));
    }
    answer(match keys {
        Some(keys) => LocalReply {
            status: 200,
            headers: vec![("content-type".into(), "application/jwk-set+json".into())],
            body: keys.public_document(),
        }
        .public()
        .with("cache-control", FIVE_MINUTES),
        None => LocalReply::json(
            503,
            error_body(
                "temporarily_unavailable",
                "signing keys are not available yet",
            ),
        )
        .with("retry-after", "5"),
    })
}

/// A passage request: on to the provider with its own path, no token needed (these are the
/// provider's login and token endpoints; their credentials are the provider's business).
fn to_provider(config: &Config, provider: &ProviderConfig, path: String) -> Final {
    let mut edits = spoof_guard(config);
    edits.set.push((":path".into(), path));
    edits.set.push((
        provider::ROUTE_HEADER.into(),
        provider::ROUTE_TO_PROVIDER.into(),
    ));
    Decision::Forward {
        edits,
        outcome: Outcome::Public,
        passage: provider.passage.clone(),
    }
}

/// The MCP resource: a token is checked, and the mode decides what a missing or bad one means.
fn protected(
    config: &Config,
    request: &Request,
    keys: KeyState<'_>,
    now: u64,
    cache: Option<&mut TokenCache>,
) -> Decision {
    let credential = match token::extract(&config.location, request) {
        Ok(Some(credential)) => credential,
        Ok(None) => return without_credential(config, request, Denial::Missing).into(),
        Err(invalid) => {
            return without_credential(config, request, Denial::InvalidRequest(invalid)).into();
        }
    };
    match check_token(config, credential.token, keys, now, cache) {
        Ok(checked) => credential_decision(config, request, credential, checked).into(),
        Err(unknown_kid) => fetch_keys(unknown_kid, Waiting::Token),
    }
}

fn fetch_keys(unknown_kid: bool, waiting: Waiting) -> Decision {
    Decision::Wait(Wait::FetchKeys {
        unknown_kid,
        paused: Paused(waiting),
    })
}

/// Verifies `token` with the keys there are; `Err(unknown_kid)` when the keys allow a fetch
/// that could change the answer.
fn check_token(
    config: &Config,
    token: &str,
    keys: KeyState<'_>,
    now: u64,
    cache: Option<&mut TokenCache>,
) -> Result<Result<Arc<VerifiedClaims>, Rejection>, bool> {
    let loaded = match keys {
        KeyState::Ready { keys, .. } => Some(keys),
        KeyState::Missing { .. } => None,
    };
    match (verify_token(config, token, loaded, now, cache), keys) {
        (Err(Rejection::KeysUnavailable), KeyState::Missing { may_fetch: true }) => {
            match verify::check_without_keys(token, &config.claims) {
                Ok(()) => Err(false),
                Err(rejection) => Ok(Err(rejection)),
            }
        }
        (
            Err(Rejection::UnknownKid(_)),
            KeyState::Ready {
                may_refetch: true, ..
            },
        ) => Err(true),
        (checked, _) => Ok(checked),
    }
}

/// Verifies `token`: the size bound, then the cache, then the signature and claims.
fn verify_token(
    config: &Config,
    token: &str,
    keys: Option<&KeySet>,
    now: u64,
    mut cache: Option<&mut TokenCache>,
) -> Result<Arc<VerifiedClaims>, Rejection> {
    if token.len() > config.max_token_bytes {
        return Err(Rejection::TooLarge {
            size: token.len(),
            max: config.max_token_bytes,
        });
    }
    if let Some(claims) = cache.as_deref_mut().and_then(|c| c.get(token, now)) {
        return Ok(claims);
    }
    let keys = keys.ok_or(Rejection::KeysUnavailable)?;
    let claims = Arc::new(verify::verify(token, keys, &config.claims, now)?);
    if let Some(cache) = cache {
        cache.insert(token, Arc::clone(&claims), now);
    }
    Ok(claims)
}

fn credential_decision(
    config: &Config,
    request: &Request,
    credential: Credential<'_>,
    checked: Result<Arc<VerifiedClaims>, Rejection>,
) -> Final {
    match checked {
        Ok(claims) => allowed(config, credential, &claims),
        Err(rejection) => without_credential(config, request, Denial::Token(rejection)),
    }
}

fn allowed(config: &Config, credential: Credential<'_>, claims: &Arc<VerifiedClaims>) -> Final {
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
        passage: None,
    }
}

/// Claim headers arriving from the client are dropped, so the upstream can trust them; so is
/// the provider route header when a passage exists, so only the filter routes there. The names
/// are listed once, at load.
fn spoof_guard(config: &Config) -> HeaderEdits {
    HeaderEdits {
        remove: config.spoofable_headers.clone(),
        set: Vec::new(),
    }
}

/// The mode table (spec section 4) for a request without a valid credential.
fn without_credential(config: &Config, request: &Request, denial: Denial) -> Final {
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
            passage: None,
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

/// `GET` or `HEAD`: what the gateway's own documents answer.
fn is_read(request: &Request) -> bool {
    request.method == "GET" || request.method == "HEAD"
}

/// A reply of the gateway's own, about no caller.
fn answer(reply: LocalReply) -> Final {
    Decision::Respond {
        reply,
        outcome: Outcome::Public,
    }
}

#[cfg(test)]
mod tests;
