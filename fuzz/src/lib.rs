//! Shared pieces of the fuzz targets: the fixture keys, a few fixed configs, the fixed clock,
//! a byte format for requests, and the invariants every decision must keep.

use std::sync::OnceLock;

use mcp_authn::core::config::{Config, Mode};
use mcp_authn::core::decision::{Decision, KeyState, Outcome};
use mcp_authn::core::jwks::KeySet;
use mcp_authn::core::request::Request;
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
        with(json!({"authorizationLocation": {"header": {"name": "x-token", "prefix": "Token "}},
                    "resourceMetadata": {"resource": AUDIENCE}})),
    ]
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
        0 => KeyState::Ready { keys, may_refetch: false },
        1 => KeyState::Ready { keys, may_refetch: true },
        2 => KeyState::Missing { may_fetch: true },
        _ => KeyState::Missing { may_fetch: false },
    }
}

/// A header value a proxy can send as is: visible ASCII, space and tab only.
pub fn is_safe_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The invariants of every decision, whatever the input:
/// - strict mode forwards only valid tokens and public paths;
/// - a key fetch is asked for only when the key state allows one;
/// - local replies are never 5xx and carry safe header values and a JSON body;
/// - header edits set only safe values, except that a rewritten `:path` or `cookie` (the
///   credential taken out) may keep what the client sent there, and only that (a `:path` also gets shorter).
pub fn check_decision(config: &Config, request: &Request, keys: KeyState<'_>, decision: &Decision) {
    match decision {
        Decision::Forward { edits, outcome } => {
            if config.mode == Mode::Strict {
                assert!(
                    matches!(outcome, Outcome::Allowed { .. } | Outcome::Public),
                    "strict mode forwarded {outcome:?}"
                );
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
                    let allowed = |c: char| source.iter().any(|s| s.contains(c)) || c == ';' || c == ' ';
                    assert!(value.chars().all(allowed), "{name} gained characters: {value:?}");
                }
            }
        }
        Decision::Respond { reply, .. } => {
            for (name, value) in &reply.headers {
                assert!(is_safe_header_value(value), "unsafe reply header {name}: {value:?}");
            }
            serde_json::from_str::<Value>(&reply.body).expect("reply body is JSON");
            assert!((200..500).contains(&reply.status), "status {}", reply.status);
        }
        Decision::FetchKeys { unknown_kid } => match keys {
            KeyState::Ready { may_refetch, .. } => assert!(may_refetch && *unknown_kid),
            KeyState::Missing { may_fetch } => assert!(may_fetch && !*unknown_kid),
        },
        // Only for the fronted-provider well-known paths, which these configs may name.
        Decision::AskIdp(_) => {}
    }
}

/// Claims that pass the base config's rules at [`NOW`].
pub fn valid_claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": NOW - 10, "exp": NOW + 300,
           "roles": ["admin", "dev"]})
}
