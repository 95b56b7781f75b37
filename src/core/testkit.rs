//! Test helpers shared by the core's unit tests: the fixture keys, token minting and the
//! fixed clock every test uses.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::jwks::KeySet;
use super::verify::ClaimRules;
use crate::sign::SigningKey;

/// Private JWKs `rsa`, `rsa2`, `rsa_small` (1024-bit) and `ec`.
const KEYS_JSON: &str = include_str!("../../tests/fixtures/keys.json");

/// The fixed "now" of every test, seconds since the epoch.
pub(crate) const NOW: u64 = 1_700_000_000;
pub(crate) const ISSUER: &str = "https://idp.example.com";
pub(crate) const AUDIENCE: &str = "https://mcp.example.com/mcp";
pub(crate) const SUBJECT: &str = "user-1";

fn fixtures() -> &'static Value {
    static FIXTURES: OnceLock<Value> = OnceLock::new();
    FIXTURES.get_or_init(|| serde_json::from_str(KEYS_JSON).expect("keys.json is JSON"))
}

/// The private JWK named `name` in the fixtures.
pub(crate) fn private_jwk(name: &str) -> Value {
    fixtures()
        .get(name)
        .unwrap_or_else(|| panic!("no fixture key {name:?}"))
        .clone()
}

/// The signing key named `name`; parsed once (RSA key setup is not free).
pub(crate) fn signer(name: &str) -> &'static SigningKey {
    static SIGNERS: OnceLock<Vec<(String, SigningKey)>> = OnceLock::new();
    let signers = SIGNERS.get_or_init(|| {
        fixtures()
            .as_object()
            .expect("keys.json is an object")
            .iter()
            .map(|(name, jwk)| {
                let key =
                    SigningKey::from_jwk(jwk).unwrap_or_else(|e| panic!("fixture key {name}: {e}"));
                (name.clone(), key)
            })
            .collect()
    });
    signers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, key)| key)
        .unwrap_or_else(|| panic!("no fixture key {name:?}"))
}

/// The public JWK of `name`, with `kid`, `alg` (pinned) and `use: sig`.
pub(crate) fn public_jwk(name: &str) -> Value {
    signer(name).public_jwk()
}

/// The public JWK of `name` with the listed members removed.
pub(crate) fn public_jwk_without(name: &str, members: &[&str]) -> Value {
    let mut jwk = public_jwk(name);
    let object = jwk.as_object_mut().expect("a JWK is an object");
    for member in members {
        object.remove(*member);
    }
    jwk
}

/// `{"keys": [...]}` of the named public keys.
pub(crate) fn jwks(names: &[&str]) -> Value {
    json!({"keys": names.iter().map(|n| public_jwk(n)).collect::<Vec<_>>()})
}

/// A key set of exactly these JWKs; panics when it does not parse.
pub(crate) fn keyset_of(jwks: Vec<Value>) -> KeySet {
    KeySet::parse(json!({ "keys": jwks }).to_string().as_bytes()).expect("test JWKS parses")
}

/// A key set of the named public keys.
pub(crate) fn keyset(names: &[&str]) -> KeySet {
    keyset_of(names.iter().map(|n| public_jwk(n)).collect())
}

/// A claims set that passes [`rules`] at [`NOW`].
pub(crate) fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "iat": NOW - 10,
        "exp": NOW + 300,
    })
}

/// [`claims`] with `name` set to `value`, or removed when `value` is `None`.
pub(crate) fn claims_with(name: &str, value: Option<Value>) -> Value {
    let mut claims = claims();
    let object = claims.as_object_mut().expect("claims are an object");
    match value {
        Some(value) => {
            object.insert(name.to_string(), value);
        }
        None => {
            object.remove(name);
        }
    }
    claims
}

/// The default rules of a config with `issuer` and `audiences: [AUDIENCE]`.
pub(crate) fn rules() -> ClaimRules {
    ClaimRules {
        issuer: ISSUER.to_string(),
        audiences: vec![AUDIENCE.to_string()],
        required: vec!["exp".to_string()],
        clock_skew_secs: 60,
    }
}

/// A token over `claims` from key `name`, with its default algorithm and its `kid`.
pub(crate) fn mint(name: &str, claims: &Value) -> String {
    signer(name).mint(claims)
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `b64(header).b64(payload).b64(signature)` with no signing at all.
pub(crate) fn unsigned(header: &[u8], payload: &[u8], signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}

/// An ES256 token over raw header and payload bytes (for headers `serde_json::Value` cannot
/// express, such as duplicate members), signed by the `ec` fixture key.
pub(crate) fn es256_over_raw(header: &[u8], payload: &[u8]) -> String {
    use jwt_compact::{Algorithm, AlgorithmSignature};
    let d = private_jwk("ec")["d"]
        .as_str()
        .map(|d| URL_SAFE_NO_PAD.decode(d).expect("d is base64url"))
        .expect("ec fixture has d");
    let key = p256::ecdsa::SigningKey::from_slice(&d).expect("ec fixture is a P-256 key");
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let signature = jwt_compact::alg::Es256.sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64(signature.as_bytes()))
}
