//! The per-request decision: `decide(config, request, keys, now)` returns what the host must
//! do, as plain data. Reading this file top to bottom is reading the request path.

use super::claims::VerifiedClaims;
use super::config::{Config, Mode};
use super::jwks::KeySet;
use super::metadata::{ErrorCode, PRM_PREFIX, challenge, error_body};
use super::request::Request;
use super::token::{self, Credential, InvalidRequest, Removal};
use super::verify::{self, Rejection};

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
}

/// Header changes for a forwarded request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    pub remove: Vec<String>,
    pub set: Vec<(String, String)>,
}

/// A locally generated response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Why the request went the way it did, for stats and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A valid token; the subject when the token names one.
    Allowed {
        subject: Option<String>,
    },
    /// Let through without a valid token (optional / permissive modes).
    Unauthenticated {
        denial: Option<Denial>,
    },
    Denied(Denial),
    /// A public well-known path.
    Public,
}

/// Why a request has no valid credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    Missing,
    InvalidRequest(InvalidRequest),
    Token(Rejection),
}

impl Denial {
    /// The stat suffix: `mcp_authn.denied.<metric>`.
    pub fn metric(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::InvalidRequest(_) => "invalid_request",
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
    /// Authorization-server discovery, passed through without a token.
    PublicDiscovery,
    Protected,
}

/// Classifies a path (without query). Only exact prefixes followed by nothing or `/` count, and
/// a path that could be normalised elsewhere (dot segments, escapes) is never public.
pub fn route(path: &str) -> Route<'_> {
    if let Some(suffix) = well_known_suffix(path, PRM_PREFIX) {
        return Route::ResourceMetadata { suffix };
    }
    let public = AS_METADATA_PREFIXES
        .iter()
        .any(|prefix| well_known_suffix(path, prefix).is_some());
    if public && is_plain_path(path) {
        Route::PublicDiscovery
    } else {
        Route::Protected
    }
}

fn well_known_suffix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn is_plain_path(path: &str) -> bool {
    !path.contains(['%', '\\'])
        && !path.contains("//")
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

/// Decides one request. Token extraction comes first, so a request without a token never
/// asks for keys.
pub fn decide(config: &Config, request: &Request, keys: KeyState<'_>, now: u64) -> Decision {
    match route(request.path_only()) {
        Route::ResourceMetadata { suffix } => return metadata_reply(config, request, suffix),
        Route::PublicDiscovery => {
            return Decision::Forward {
                edits: spoof_guard(config),
                outcome: Outcome::Public,
            };
        }
        Route::Protected => {}
    }
    let credential = match token::extract(&config.location, request) {
        Ok(Some(credential)) => credential,
        Ok(None) => return without_credential(config, request, Denial::Missing),
        Err(invalid) => {
            return without_credential(config, request, Denial::InvalidRequest(invalid));
        }
    };
    match check_token(config, credential.token, keys, now) {
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
) -> Result<VerifiedClaims, TokenCheck> {
    if token.len() > config.max_token_bytes {
        return Err(TokenCheck::Rejected(Rejection::TooLarge {
            size: token.len(),
            max: config.max_token_bytes,
        }));
    }
    match keys {
        KeyState::Missing { may_fetch: true } => Err(TokenCheck::Fetch { unknown_kid: false }),
        KeyState::Missing { may_fetch: false } => {
            Err(TokenCheck::Rejected(Rejection::KeysUnavailable))
        }
        KeyState::Ready { keys, may_refetch } => {
            match verify::verify(token, keys, &config.claims, now) {
                Ok(claims) => Ok(claims),
                Err(Rejection::UnknownKid(_)) if may_refetch => {
                    Err(TokenCheck::Fetch { unknown_kid: true })
                }
                Err(rejection) => Err(TokenCheck::Rejected(rejection)),
            }
        }
    }
}

fn allowed(config: &Config, credential: Credential<'_>, claims: &VerifiedClaims) -> Decision {
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
            subject: claims.subject().map(str::to_string),
        },
    }
}

/// Claim headers arriving from the client are dropped, so the upstream can trust them.
fn spoof_guard(config: &Config) -> HeaderEdits {
    HeaderEdits {
        remove: config
            .claim_headers
            .iter()
            .map(|m| m.header.clone())
            .collect(),
        set: Vec::new(),
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
    let metadata_url = config.metadata.metadata_url(request);
    let scope = config.metadata.scope_hint();
    let (status, error, body) = match denial {
        Denial::Missing => (
            401,
            None,
            error_body("unauthorized", "a bearer token is required"),
        ),
        Denial::InvalidRequest(why) => (
            400,
            Some((ErrorCode::InvalidRequest, why.description())),
            error_body("invalid_request", why.description()),
        ),
        Denial::Token(rejection) => (
            401,
            Some((ErrorCode::InvalidToken, rejection.description())),
            error_body("invalid_token", rejection.description()),
        ),
    };
    LocalReply {
        status,
        headers: vec![
            (
                "www-authenticate".into(),
                challenge(&metadata_url, scope, error),
            ),
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body,
    }
}

fn metadata_reply(config: &Config, request: &Request, suffix: &str) -> Decision {
    let reply = if request.method == "GET" || request.method == "HEAD" {
        LocalReply {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("access-control-allow-origin".into(), "*".into()),
                ("cache-control".into(), "max-age=300".into()),
            ],
            body: config.metadata.document(request, suffix),
        }
    } else {
        LocalReply {
            status: 405,
            headers: vec![
                ("allow".into(), "GET, HEAD".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: error_body("method_not_allowed", "use GET"),
        }
    };
    Decision::Respond {
        reply,
        outcome: Outcome::Public,
    }
}
