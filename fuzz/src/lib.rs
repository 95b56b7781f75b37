//! Shared pieces of the fuzz targets: the fixture keys, a few fixed configs, the fixed clock,
//! a byte format for requests, and the invariants every decision must keep.

pub mod mcp;
pub mod oracle;

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_authn::core::alg::PublicKey;
use mcp_authn::core::config::{Config, Mode};
use mcp_authn::core::decision::{Decision, KeyState, Outcome, Wait};
use mcp_authn::core::jwks::KeySet;
use mcp_authn::core::request::Request;
use mcp_authn::core::token::TokenLocation;
use mcp_authn::sign::SigningKey;
use serde_json::{Value, json};

/// The private fixture JWKs (`rsa`, `rsa2`, `rsa_small`, `ec`), shared with the unit tests.
const KEYS_JSON: &str = include_str!("../../tests/fixtures/keys.json");

/// The fixed "now" of every target, seconds since the epoch (the unit tests' clock).
pub const NOW: u64 = 1_700_000_000;
pub const ISSUER: &str = "https://idp.example.com";
pub const AUDIENCE: &str = "https://mcp.example.com/mcp";
pub const AUTHORITY: &str = "mcp.example.com";

/// The fixture signing keys by name.
pub fn signer(name: &str) -> SigningKey {
    let all: Value = serde_json::from_str(KEYS_JSON).expect("keys.json is JSON");
    SigningKey::from_jwk(&all[name]).expect("fixture key parses")
}

/// `{"keys": [...]}` with the public halves of the `rsa` and `ec` fixture keys.
pub fn public_jwks() -> Value {
    json!({"keys": [signer("rsa").public_jwk(), signer("ec").public_jwk()]})
}

/// The base configuration: inline fixture keys, the fixed issuer and audience.
pub fn base_config() -> Value {
    json!({"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"inline": public_jwks()}})
}

/// The configurations `decide` is fuzzed under, one per way of finding or treating tokens.
pub fn config_variants() -> Vec<Value> {
    let with = |extra: Value| {
        let mut config = base_config();
        for (k, v) in extra.as_object().expect("object") {
            config[k] = v.clone();
        }
        config
    };
    vec![
        base_config(),
        with(json!({"mode": "optional", "claimsToHeaders": [
            {"claim": "sub", "header": "x-user"}, {"claim": "roles", "header": "x-roles"}]})),
        with(json!({"mode": "permissive", "resourceMetadata": {"scopesSupported": ["mcp:read"]}})),
        with(json!({"authorizationLocation": {"queryParameter": {"name": "token"}}})),
        with(json!({"authorizationLocation": {"cookie": {"name": "session"}}})),
        with(
            json!({"authorizationLocation": {"header": {"name": "x-token", "prefix": "Token "}},
                    "resourceMetadata": {"resource": AUDIENCE}}),
        ),
        // A fronted provider: the well-known paths become `AskIdp` (and registration, with a
        // POST), which `check_decision` bounds.
        with(
            json!({"provider": {"oidc": {"cluster": "idp"}}, "resourceMetadata": {"resource": AUDIENCE},
                    "claimsToHeaders": [{"claim": "sub", "header": "x-user"}]}),
        ),
    ]
}

/// The reference model of the base config's token rules (`oracle`), built once.
pub fn model() -> &'static oracle::Model {
    static MODEL: OnceLock<oracle::Model> = OnceLock::new();
    MODEL.get_or_init(|| oracle::Model::new(ISSUER, &[AUDIENCE], &["exp"], 60, &public_jwks()))
}

/// Every string the request presents at the config's token location, decoded the ways a
/// reader of the rules might (trimmed, percent-decoded), found without the filter's code.
fn presented(location: &TokenLocation, request: &Request) -> Vec<String> {
    let mut found = Vec::new();
    match location {
        TokenLocation::Header { name, prefix } => {
            for value in request.header_values(name.as_str()) {
                let value = value.trim();
                if value.len() >= prefix.len() && value.is_char_boundary(prefix.len()) {
                    let (head, rest) = value.split_at(prefix.len());
                    if head.eq_ignore_ascii_case(prefix) {
                        found.push(rest.trim().to_string());
                    }
                }
            }
        }
        TokenLocation::QueryParameter { name } => {
            let query = request.path.split_once('?').map_or("", |(_, q)| q);
            for pair in query.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if percent_decode(k) == *name {
                    found.push(percent_decode(v));
                    found.push(v.to_string());
                }
            }
        }
        TokenLocation::Cookie { name } => {
            for header in request.header_values("cookie") {
                for pair in header.split(';') {
                    let (k, v) = pair.trim().split_once('=').unwrap_or((pair.trim(), ""));
                    if k.trim() == name {
                        found.push(v.trim().trim_matches('"').to_string());
                    }
                }
            }
        }
    }
    found
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An allowed request, checked against the model: the presented token is one the model
/// accepts, it is gone from where it was, and the claim headers are exactly the token's.
fn check_allowed(config: &Config, request: &Request, edits: &mcp_authn::core::reply::HeaderEdits) {
    let candidates = presented(&config.location, request);
    let accepted = candidates.iter().find_map(|t| model().check(t, NOW).ok());
    let Some(claims) = accepted else {
        let reasons: Vec<_> = candidates
            .iter()
            .map(|t| model().check(t, NOW).err())
            .collect();
        panic!("the filter allowed a token the model refuses: {candidates:?} {reasons:?}");
    };
    match &config.location {
        TokenLocation::Header { name, .. } => {
            assert!(
                edits.remove.iter().any(|n| n == name.as_str()),
                "credential header {name} not removed: {edits:?}"
            )
        }
        TokenLocation::QueryParameter { name } => {
            let path = edits.set.iter().find(|(n, _)| n == ":path").map(|(_, v)| v);
            let path = path.unwrap_or_else(|| panic!(":path not rewritten: {edits:?}"));
            // No parameter the upstream reads as `name` (keys percent-decoded) is left. (The
            // token string may remain inside another parameter the client chose to send.)
            let query = path.split_once('?').map_or("", |(_, q)| q);
            for pair in query.split('&') {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                assert_ne!(
                    percent_decode(key),
                    *name,
                    "a {name} parameter left in :path {path:?}"
                );
            }
        }
        TokenLocation::Cookie { name } => {
            let kept = edits
                .set
                .iter()
                .find(|(n, _)| n == "cookie")
                .map(|(_, v)| v);
            let removed = edits.remove.iter().any(|n| n == "cookie");
            assert!(kept.is_some() || removed, "cookie not rewritten: {edits:?}");
            // No cookie of that name is left. (The token string may remain inside another
            // cookie the client chose to send.)
            for pair in kept.map_or("", String::as_str).split(';') {
                let key = pair.trim().split_once('=').map_or(pair.trim(), |(k, _)| k);
                assert_ne!(key.trim(), name, "a {name} cookie left: {kept:?}");
            }
        }
    }
    for mapping in &config.claim_headers {
        assert!(
            edits.remove.iter().any(|n| n == mapping.header.as_str()),
            "client copy of {} kept",
            mapping.header
        );
        let set: Vec<&String> = edits
            .set
            .iter()
            .filter(|(n, _)| *n == mapping.header)
            .map(|(_, v)| v)
            .collect();
        let expected = match claims.get(&mapping.claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        }
        .filter(|v| is_safe_header_value(v));
        assert_eq!(
            set,
            expected.iter().collect::<Vec<_>>(),
            "claim header {}",
            mapping.header
        );
    }
}

/// The parsed [`config_variants`], built once per process.
pub fn configs() -> &'static [Config] {
    static CONFIGS: OnceLock<Vec<Config>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        config_variants()
            .iter()
            .map(|v| Config::from_json(v.to_string().as_bytes()).expect("fuzz config is valid"))
            .collect()
    })
}

/// The inline key set of the base config.
pub fn keyset() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        KeySet::parse(public_jwks().to_string().as_bytes()).expect("fixture JWKS parses")
    })
}

/// A request from text: `method\npath\nauthority\nname:value\n...` (header names lower-cased,
/// as the host hands them over). Missing lines are empty.
pub fn request_from_text(text: &str) -> Request {
    let mut lines = text.split('\n');
    let mut request = Request {
        method: lines.next().unwrap_or_default().to_string(),
        path: lines.next().unwrap_or_default().to_string(),
        scheme: "https".into(),
        authority: lines.next().unwrap_or_default().to_string(),
        headers: Vec::new(),
    };
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        request
            .headers
            .push((name.to_ascii_lowercase(), value.to_string()));
    }
    request
}

/// Selector byte -> key state: ready (with or without refetch) or missing.
pub fn key_state(selector: u8, keys: &KeySet) -> KeyState<'_> {
    match selector % 4 {
        0 => KeyState::Ready {
            keys,
            may_refetch: false,
        },
        1 => KeyState::Ready {
            keys,
            may_refetch: true,
        },
        2 => KeyState::Missing { may_fetch: true },
        _ => KeyState::Missing { may_fetch: false },
    }
}

/// A header value a proxy can send as is: visible ASCII, space and tab only.
pub fn is_safe_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The invariants of every decision, whatever the input:
/// - strict mode forwards only valid tokens and public paths;
/// - a key fetch is asked for only when the key state allows one;
/// - local replies are never 5xx and carry safe header values and a JSON body;
/// - an allowed request presents a token the reference model (`oracle`) accepts, which is
///   removed from where it was, and the claim headers are exactly the token's claims;
/// - without a valid token no claim header is set;
/// - only a fronted provider is asked (`AskIdp`, or `RegisterLocally`), and only for
///   authorization-server paths;
/// - header edits set only safe values, except that a rewritten `:path` or `cookie` (the
///   credential taken out) may keep what the client sent there, and only that (a `:path` also gets shorter).
pub fn check_decision(config: &Config, request: &Request, keys: KeyState<'_>, decision: &Decision) {
    match decision {
        Decision::Forward { edits, outcome, .. } => {
            if config.mode == Mode::Strict {
                assert!(
                    matches!(outcome, Outcome::Allowed { .. } | Outcome::Public),
                    "strict mode forwarded {outcome:?}"
                );
            }
            if matches!(outcome, Outcome::Allowed { .. }) {
                check_allowed(config, request, edits);
            } else {
                for mapping in &config.claim_headers {
                    assert!(
                        edits.set.iter().all(|(n, _)| *n != mapping.header),
                        "claim header {} set without a valid token",
                        mapping.header
                    );
                }
            }
            for (name, value) in &edits.set {
                let source: Vec<&str> = match name.as_str() {
                    ":path" => vec![request.path.as_str()],
                    "cookie" => request.header_values("cookie").collect(),
                    _ => Vec::new(),
                };
                if source.is_empty() {
                    assert!(is_safe_header_value(value), "unsafe edit {name}: {value:?}");
                } else {
                    if name == ":path" {
                        assert!(value.len() < request.path.len(), "{name} grew: {value:?}");
                    }
                    let allowed =
                        |c: char| source.iter().any(|s| s.contains(c)) || c == ';' || c == ' ';
                    assert!(
                        value.chars().all(allowed),
                        "{name} gained characters: {value:?}"
                    );
                }
            }
        }
        Decision::Respond { reply, .. } => {
            for (name, value) in &reply.headers {
                assert!(
                    is_safe_header_value(value),
                    "unsafe reply header {name}: {value:?}"
                );
            }
            serde_json::from_str::<Value>(&reply.body).expect("reply body is JSON");
            assert!(
                (200..500).contains(&reply.status),
                "status {}",
                reply.status
            );
        }
        Decision::Wait(Wait::FetchKeys { unknown_kid, .. }) => match keys {
            KeyState::Ready { may_refetch, .. } => assert!(may_refetch && *unknown_kid),
            KeyState::Missing { may_fetch } => assert!(may_fetch && !*unknown_kid),
        },
        // Only a fronted provider is asked (or registration answered locally), and only for
        // the authorization-server paths.
        Decision::Wait(Wait::AskIdp(_) | Wait::RegisterLocally { .. }) => {
            assert!(config.provider.is_some(), "AskIdp without a provider");
            let path = request.path.split('?').next().unwrap_or_default();
            assert!(
                path.starts_with("/.well-known/oauth-authorization-server")
                    || path.starts_with("/.well-known/openid-configuration"),
                "AskIdp for {path:?}"
            );
        }
    }
}

/// Claims that pass the base config's rules at [`NOW`].
pub fn valid_claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": NOW - 10, "exp": NOW + 300,
           "roles": ["admin", "dev"]})
}

/// An RSA fixture key: the private key that signs, `rsa`'s public key (the reference
/// verifier) and the filter's parsed key (the verifier under test).
pub struct RsaFixture {
    pub private: rsa::RsaPrivateKey,
    pub key: rsa::RsaPublicKey,
    pub public: PublicKey,
}

/// The `rsa` and `rsa2` fixture keys (2048-bit), parsed once per process.
pub fn rsa_fixtures() -> &'static [RsaFixture] {
    static KEYS: OnceLock<Vec<RsaFixture>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let all: Value = serde_json::from_str(KEYS_JSON).expect("keys.json is JSON");
        ["rsa", "rsa2"]
            .iter()
            .map(|name| {
                let jwk = &all[*name];
                let int = |member: &str| {
                    let text = jwk[member].as_str().expect("RSA fixture member");
                    rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(text).expect("base64url"))
                };
                let private = rsa::RsaPrivateKey::from_components(
                    int("n"),
                    int("e"),
                    int("d"),
                    vec![int("p"), int("q")],
                )
                .expect("fixture RSA key");
                let public_jwk = json!({"kty": "RSA", "n": jwk["n"], "e": jwk["e"]});
                let set = KeySet::parse(json!({"keys": [public_jwk]}).to_string().as_bytes())
                    .expect("fixture RSA key parses");
                RsaFixture {
                    key: private.to_public_key(),
                    public: set.keys()[0].public.clone(),
                    private,
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_authn::core::decision::decide;

    fn request(config: usize, token: &str) -> (Request, &'static Config) {
        let config = &configs()[config];
        (
            request_from_text(&format!(
                "POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {token}"
            )),
            config,
        )
    }

    #[test]
    fn the_model_accepts_valid_tokens_and_names_the_rule_others_break() {
        let valid = valid_claims();
        for key in ["rsa", "ec"] {
            assert!(model().check(&signer(key).mint(&valid), NOW).is_ok());
        }
        let mut expired = valid_claims();
        expired["exp"] = json!(NOW - 61);
        assert_eq!(
            model().check(&signer("rsa").mint(&expired), NOW).err(),
            Some("exp")
        );
        let mut aud = valid_claims();
        aud["aud"] = json!(["https://other.example.com"]);
        assert_eq!(
            model().check(&signer("ec").mint(&aud), NOW).err(),
            Some("aud")
        );
        let mut no_exp = valid_claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            model().check(&signer("rsa").mint(&no_exp), NOW).err(),
            Some("required claim")
        );
        assert_eq!(
            model().check(&signer("rsa2").mint(&valid), NOW).err(),
            Some("signature")
        );
    }

    #[test]
    fn check_decision_accepts_the_filters_own_decision() {
        let token = signer("rsa").mint(&valid_claims());
        for index in [0, 1, 6] {
            let (request, config) = request(index, &token);
            let keys = key_state(0, keyset());
            check_decision(config, &request, keys, &decide(config, &request, keys, NOW));
        }
    }

    #[test]
    #[should_panic(expected = "not removed")]
    fn check_decision_catches_a_credential_left_in_place() {
        let (request, config) = request(0, &signer("rsa").mint(&valid_claims()));
        let keys = key_state(0, keyset());
        let Decision::Forward {
            mut edits,
            outcome,
            passage,
        } = decide(config, &request, keys, NOW)
        else {
            panic!()
        };
        edits.remove.clear();
        check_decision(
            config,
            &request,
            keys,
            &Decision::Forward {
                edits,
                outcome,
                passage,
            },
        );
    }

    #[test]
    #[should_panic(expected = "the model refuses")]
    fn check_decision_catches_an_allowed_expired_token() {
        let mut expired = valid_claims();
        expired["exp"] = json!(NOW - 3600);
        let (request, config) = request(0, &signer("rsa").mint(&expired));
        let (_, good) = request_pair();
        let keys = key_state(0, keyset());
        check_decision(config, &request, keys, &good);
    }

    /// A genuine Allowed decision (for a valid token), to graft onto another request.
    fn request_pair() -> (Request, Decision) {
        let (request, config) = request(0, &signer("rsa").mint(&valid_claims()));
        let decision = decide(config, &request, key_state(0, keyset()), NOW);
        (request, decision)
    }
}
