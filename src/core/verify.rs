//! JWS compact-serialisation verification: structure, header, key choice, signature, then
//! claims. The only way to obtain [`VerifiedClaims`].

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::alg::Alg;
use super::claims::{UniqueObject, VerifiedClaims};
use super::jwks::KeySet;
use super::metric::Metric;
use super::url::same_resource;

/// Keys tried per token, with or without `kid`: enough for a rotation overlap, bounded so
/// that a large anonymous set, or many keys sharing one `kid`, cannot turn one request into
/// many signature checks.
pub const MAX_CANDIDATES: usize = 4;

/// How claims are checked once the signature holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    pub issuer: String,
    /// Empty means the audience check was disabled explicitly.
    pub audiences: Vec<String>,
    pub required: Vec<String>,
    pub clock_skew_secs: u64,
}

/// Why a presented token was refused. Each variant names the broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    TooLarge {
        size: usize,
        max: usize,
    },
    Malformed(&'static str),
    UnsupportedAlg(String),
    UnsupportedCrit(Vec<String>),
    UnknownKid(String),
    NoMatchingKey(Alg),
    KeyAlgMismatch {
        kid: String,
        alg: Alg,
    },
    BadSignature,
    Expired {
        exp: i64,
        now: u64,
    },
    NotYetValid {
        nbf: i64,
        now: u64,
    },
    IssuerMismatch {
        got: Option<String>,
        expected: String,
    },
    AudienceMismatch {
        got: Vec<String>,
        expected: Vec<String>,
    },
    MissingClaim(String),
    InvalidClaim {
        claim: &'static str,
        reason: &'static str,
    },
    KeysUnavailable,
    /// The token's `iss` names none of the server's issuers (checked before any key work).
    UnknownIssuer,
}

impl Rejection {
    /// The counter this rejection is counted under.
    pub fn metric(&self) -> Metric {
        match self {
            Self::TooLarge { .. } | Self::Malformed(_) => Metric::DeniedMalformed,
            Self::UnsupportedAlg(_) | Self::UnsupportedCrit(_) => Metric::DeniedUnsupportedAlg,
            Self::UnknownKid(_) | Self::NoMatchingKey(_) => Metric::DeniedUnknownKid,
            Self::KeyAlgMismatch { .. } | Self::BadSignature => Metric::DeniedBadSignature,
            Self::Expired { .. } => Metric::DeniedExpired,
            Self::NotYetValid { .. } => Metric::DeniedNotYetValid,
            Self::IssuerMismatch { .. } | Self::UnknownIssuer => Metric::DeniedIssuer,
            Self::AudienceMismatch { .. } => Metric::DeniedAudience,
            Self::MissingClaim(_) => Metric::DeniedMissingClaim,
            Self::InvalidClaim { .. } => Metric::DeniedInvalidClaim,
            Self::KeysUnavailable => Metric::DeniedKeysUnavailable,
        }
    }

    /// A short `error_description` for the client: the rule, never key material or claims.
    pub fn description(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "token too large",
            Self::Malformed(_) => "malformed token",
            Self::UnsupportedAlg(_) => "unsupported signing algorithm",
            Self::UnsupportedCrit(_) => "unsupported critical header",
            Self::UnknownKid(_) | Self::NoMatchingKey(_) => "no matching signing key",
            Self::KeyAlgMismatch { .. } | Self::BadSignature => "invalid signature",
            Self::Expired { .. } => "token expired",
            Self::NotYetValid { .. } => "token not yet valid",
            Self::IssuerMismatch { .. } => "issuer mismatch",
            Self::AudienceMismatch { .. } => "audience mismatch",
            Self::MissingClaim(_) => "missing required claim",
            Self::InvalidClaim { .. } => "invalid claim",
            Self::KeysUnavailable => "signing keys unavailable",
            Self::UnknownIssuer => "unknown issuer",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { size, max } => write!(f, "token of {size} bytes exceeds {max}"),
            Self::Malformed(why) => write!(f, "malformed token: {why}"),
            Self::UnsupportedAlg(alg) => write!(f, "alg {alg:?} is not allowed"),
            Self::UnsupportedCrit(names) => write!(f, "unsupported crit {names:?}"),
            Self::UnknownKid(kid) => write!(f, "unknown kid {kid:?}"),
            Self::NoMatchingKey(alg) => write!(f, "no key in the set verifies {}", alg.name()),
            Self::KeyAlgMismatch { kid, alg } => {
                write!(f, "key {kid:?} does not allow {}", alg.name())
            }
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::Expired { exp, now } => write!(f, "expired (exp={exp}, now={now})"),
            Self::NotYetValid { nbf, now } => write!(f, "not yet valid (nbf={nbf}, now={now})"),
            Self::IssuerMismatch { got, expected } => {
                write!(f, "iss mismatch (token iss={got:?}, expected {expected:?})")
            }
            Self::AudienceMismatch { got, expected } => {
                write!(
                    f,
                    "aud mismatch (token aud={got:?}, expected one of {expected:?})"
                )
            }
            Self::MissingClaim(name) => write!(f, "missing required claim {name:?}"),
            Self::InvalidClaim { claim, reason } => write!(f, "invalid {claim}: {reason}"),
            Self::KeysUnavailable => f.write_str("no signing keys are available yet"),
            Self::UnknownIssuer => f.write_str("the token's iss names no trusted issuer"),
        }
    }
}

/// The JOSE header fields that matter for verification.
struct JoseHeader {
    alg: Alg,
    kid: Option<String>,
}

/// Verifies `token` against `keys` and `rules` at time `now` (seconds since the epoch).
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &ClaimRules,
    now: u64,
) -> Result<VerifiedClaims, Rejection> {
    let parsed = parse(token)?;
    // The claims are read before the signature so that a stranger's token (another `iss`) is
    // refused before any key choice: it never costs a signature check or an unknown-`kid`
    // refetch. Nothing read here is trusted until the signature holds.
    let claims = claims_of(&parsed.payload)?;
    check_issuer(&claims, rules)?;
    check_signature(&parsed, keys)?;
    check_claims(&claims, rules, now)?;
    Ok(VerifiedClaims::new(claims))
}

/// The signature layer alone: structure, header, key choice and signature, with no claim
/// read. Returns the decoded payload, authentic but not yet known to be a claims set. The
/// Wycheproof JWS vectors and the token fuzz target drive it (their payloads are no claims).
pub fn verify_signature(token: &str, keys: &KeySet) -> Result<Vec<u8>, Rejection> {
    let parsed = parse(token)?;
    check_signature(&parsed, keys)?;
    Ok(parsed.payload)
}

/// Everything that can be checked without keys: segments, base64url, header, algorithm, a
/// claims object, and its `iss`. Run before a request waits for a JWKS fetch, so garbage and
/// other issuers' tokens never trigger one.
pub fn check_without_keys(token: &str, rules: &ClaimRules) -> Result<(), Rejection> {
    let parsed = parse(token)?;
    check_issuer(&claims_of(&parsed.payload)?, rules)
}

fn claims_of(payload: &[u8]) -> Result<UniqueObject, Rejection> {
    serde_json::from_slice(payload)
        .map_err(|_| Rejection::Malformed("payload is not a JSON object with unique names"))
}

/// The `iss` a token claims, unverified: only to pick which issuer's keys and rules check it
/// (a server that trusts several). Only the payload is decoded: the chosen issuer's
/// verification checks the rest. `Err` for a token that is not three segments with a base64url
/// payload; `None` when the payload names no string `iss`.
pub fn unverified_issuer(token: &str) -> Result<Option<String>, Rejection> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed("not three dot-separated segments"));
    };
    let payload = decode(payload, "payload is not base64url")?;
    // Read as a `Value`, whose parser the filter has anyway: a struct of its own costs code.
    Ok(serde_json::from_slice::<Value>(&payload)
        .ok()
        .and_then(|claims| match claims.get("iss") {
            Some(Value::String(iss)) => Some(iss.clone()),
            _ => None,
        }))
}

/// A compact JWS split and decoded, not yet verified.
struct ParsedJws<'a> {
    header: JoseHeader,
    signed: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn parse(token: &str) -> Result<ParsedJws<'_>, Rejection> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed("not three dot-separated segments"));
    };
    // The signing input is everything before the last dot.
    let signed = token.rsplit_once('.').map_or(token, |(signed, _)| signed);
    Ok(ParsedJws {
        header: parse_header(&decode(header_b64, "header is not base64url")?)?,
        payload: decode(payload_b64, "payload is not base64url")?,
        signature: decode(signature_b64, "signature is not base64url")?,
        signed,
    })
}

/// Strict base64url: no padding, no stray bits, no whitespace.
fn decode(segment: &str, why: &'static str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Rejection::Malformed(why))
}

fn parse_header(bytes: &[u8]) -> Result<JoseHeader, Rejection> {
    let UniqueObject(header) = serde_json::from_slice(bytes)
        .map_err(|_| Rejection::Malformed("header is not a JSON object with unique names"))?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            Alg::from_name(name).ok_or_else(|| Rejection::UnsupportedAlg(name.clone()))?
        }
        _ => return Err(Rejection::Malformed("header has no string \"alg\"")),
    };
    // No extension is understood, so any `crit` must be refused (RFC 7515 4.1.11).
    if let Some(crit) = header.get("crit") {
        let names = match crit {
            Value::Array(items) => items.iter().map(crit_name).collect(),
            other => vec![crit_name(other)],
        };
        return Err(Rejection::UnsupportedCrit(names));
    }
    // RFC 7797 unencoded payloads are not supported; `b64: true` is the default and harmless.
    if header
        .get("b64")
        .is_some_and(|b64| b64 != &Value::Bool(true))
    {
        return Err(Rejection::UnsupportedCrit(vec!["b64".into()]));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(Rejection::Malformed("header \"kid\" is not a string")),
    };
    // `jwk`, `jku`, `x5u`, `x5c` are deliberately never read: keys come only from the JWKS.
    Ok(JoseHeader { alg, kid })
}

/// A `crit` entry for the rejection: names as they are, anything else as JSON.
fn crit_name(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

fn check_signature(parsed: &ParsedJws<'_>, keys: &KeySet) -> Result<(), Rejection> {
    let (header, signed, signature) = (
        &parsed.header,
        parsed.signed.as_bytes(),
        parsed.signature.as_slice(),
    );
    let alg = header.alg;
    let verified = match &header.kid {
        Some(kid) => {
            let mut named = keys
                .keys()
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .peekable();
            if named.peek().is_none() {
                return Err(Rejection::UnknownKid(kid.clone()));
            }
            let mut allowed = named
                .filter(|k| k.allows(alg))
                .take(MAX_CANDIDATES)
                .peekable();
            if allowed.peek().is_none() {
                return Err(Rejection::KeyAlgMismatch {
                    kid: kid.clone(),
                    alg,
                });
            }
            allowed.any(|k| alg.verify_with(keys.verifier(), &k.public, signed, signature))
        }
        None => {
            let mut candidates = keys
                .keys()
                .iter()
                .filter(|k| k.allows(alg))
                .take(MAX_CANDIDATES)
                .peekable();
            if candidates.peek().is_none() {
                return Err(Rejection::NoMatchingKey(alg));
            }
            candidates.any(|k| alg.verify_with(keys.verifier(), &k.public, signed, signature))
        }
    };
    if verified {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// `iss` must be the configured issuer exactly.
fn check_issuer(claims: &UniqueObject, rules: &ClaimRules) -> Result<(), Rejection> {
    match claims.0.get("iss") {
        Some(Value::String(iss)) if *iss == rules.issuer => Ok(()),
        other => Err(Rejection::IssuerMismatch {
            got: other.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)),
            expected: rules.issuer.clone(),
        }),
    }
}

/// The claims after the signature: required names, audience, times (the issuer was checked
/// before the keys).
fn check_claims(claims: &UniqueObject, rules: &ClaimRules, now: u64) -> Result<(), Rejection> {
    let claims = &claims.0;
    if let Some(missing) = rules
        .required
        .iter()
        .find(|c| !claims.contains_key(c.as_str()))
    {
        return Err(Rejection::MissingClaim(missing.clone()));
    }
    if !rules.audiences.is_empty() {
        let got = audiences(claims.get("aud"))?;
        let known = |aud: &String| rules.audiences.iter().any(|a| same_resource(aud, a));
        if !got.iter().any(known) {
            return Err(Rejection::AudienceMismatch {
                got,
                expected: rules.audiences.clone(),
            });
        }
    }
    let skew = i128::from(rules.clock_skew_secs);
    let now_wide = i128::from(now);
    if let Some(exp) = numeric_date(claims.get("exp"), "exp")?
        && now_wide >= i128::from(exp).saturating_add(skew)
    {
        return Err(Rejection::Expired { exp, now });
    }
    if let Some(nbf) = numeric_date(claims.get("nbf"), "nbf")?
        && now_wide.saturating_add(skew) < i128::from(nbf)
    {
        return Err(Rejection::NotYetValid { nbf, now });
    }
    Ok(())
}

/// `aud` is a string or an array of strings (RFC 7519 4.1.3); anything else is invalid.
fn audiences(value: Option<&Value>) -> Result<Vec<String>, Rejection> {
    const BAD: Rejection = Rejection::InvalidClaim {
        claim: "aud",
        reason: "must be a string or an array of strings",
    };
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(aud)) => Ok(vec![aud.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or(BAD))
            .collect(),
        Some(_) => Err(BAD),
    }
}

/// NumericDate as an integer; fractions, strings and out-of-range numbers are refused
/// rather than rounded, so no parser disagreement can stretch a lifetime.
fn numeric_date(value: Option<&Value>, claim: &'static str) -> Result<Option<i64>, Rejection> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(Rejection::InvalidClaim {
            claim,
            reason: "not an integer NumericDate",
        }),
        Some(_) => Err(Rejection::InvalidClaim {
            claim,
            reason: "not a number",
        }),
    }
}

#[cfg(test)]
mod tests;
