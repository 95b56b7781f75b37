//! JSON Web Key Set parsing. Each key is parsed on its own: a bad or foreign key is skipped
//! with a reason and never sinks the rest of the set.

use std::fmt;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jwt_compact::alg::RsaPublicKey;
use rsa::BigUint;
use serde_json::Value;

use super::alg::{Alg, EcKey, KeyKind, PublicKey, RsaKey, Verifier};

/// Keys past this count are skipped: a JWKS is a handful of keys, not a resource to exhaust.
pub const MAX_KEYS: usize = 64;
/// RFC 7518 section 3.3: RSA keys must be at least 2048 bits.
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted by default: the largest in real use. Verification cost
/// grows with the square of the size, so an 8192-bit key costs four times a 4096-bit one
/// for every garbage token sent with its `kid`.
pub const DEFAULT_MAX_RSA_BITS: usize = 4096;
/// How far `jwtValidationOptions.maxRsaKeyBits` may raise it.
pub const MAX_RSA_BITS_LIMIT: usize = 8192;

/// What a key set accepts, from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// RSA keys with a longer modulus are skipped.
    pub max_rsa_bits: usize,
    /// Which implementation verifies signatures with these keys.
    pub verifier: Verifier,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            max_rsa_bits: DEFAULT_MAX_RSA_BITS,
            verifier: Verifier::Fast,
        }
    }
}

/// JWK coordinates are base64url; some issuers pad them, which is harmless here.
const JWK_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A verification key from the set.
#[derive(Debug, Clone)]
pub struct Key {
    pub kid: Option<String>,
    /// The JWK's `alg`, which pins the only algorithm this key verifies.
    pub pinned_alg: Option<Alg>,
    pub public: PublicKey,
}

impl Key {
    fn public_jwk(&self) -> Value {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use rsa::traits::PublicKeyParts;
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = serde_json::Map::new();
        match &self.public {
            PublicKey::Rsa(RsaKey { key, .. }) => {
                jwk.insert("kty".into(), "RSA".into());
                jwk.insert("n".into(), b64(&key.n().to_bytes_be()).into());
                jwk.insert("e".into(), b64(&key.e().to_bytes_be()).into());
            }
            PublicKey::EcP256(EcKey { key, .. }) => {
                let point = key.to_encoded_point(false);
                jwk.insert("kty".into(), "EC".into());
                jwk.insert("crv".into(), "P-256".into());
                let coordinate =
                    |c: Option<&p256::FieldBytes>| b64(c.map_or(&[][..], |c| c.as_ref()));
                jwk.insert("x".into(), coordinate(point.x()).into());
                jwk.insert("y".into(), coordinate(point.y()).into());
            }
        }
        jwk.insert("use".into(), "sig".into());
        if let Some(kid) = &self.kid {
            jwk.insert("kid".into(), kid.clone().into());
        }
        if let Some(alg) = self.pinned_alg {
            jwk.insert("alg".into(), alg.name().into());
        }
        Value::Object(jwk)
    }

    /// Whether this key may verify a token signed with `alg`.
    pub fn allows(&self, alg: Alg) -> bool {
        alg.key_kind() == self.public.kind() && self.pinned_alg.is_none_or(|pinned| pinned == alg)
    }
}

/// A key that was left out, and why (for logs and the checker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub index: usize,
    pub kid: Option<String>,
    pub reason: String,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key {} (kid={kid}): {}", self.index, self.reason),
            None => write!(f, "key {}: {}", self.index, self.reason),
        }
    }
}

/// The usable keys of a JWKS.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<Key>,
    skipped: Vec<SkippedKey>,
    verifier: Verifier,
}

/// Why a JWKS document as a whole was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    NotJson,
    NoKeysArray,
    NoUsableKey(Vec<SkippedKey>),
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson => f.write_str("not a JSON object"),
            Self::NoKeysArray => f.write_str("no \"keys\" array"),
            Self::NoUsableKey(skipped) if skipped.is_empty() => {
                f.write_str("no usable key (the set is empty)")
            }
            Self::NoUsableKey(skipped) => {
                f.write_str("no usable key (")?;
                for (i, key) in skipped.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{key}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl std::error::Error for JwksError {}

impl KeySet {
    /// Parses a JWKS document under the default [`KeyPolicy`].
    pub fn parse(json: &[u8]) -> Result<Self, JwksError> {
        Self::parse_with(json, KeyPolicy::default())
    }

    /// Parses a JWKS document; succeeds only when at least one key is usable.
    pub fn parse_with(json: &[u8], policy: KeyPolicy) -> Result<Self, JwksError> {
        let doc: Value = serde_json::from_slice(json).map_err(|_| JwksError::NotJson)?;
        let Value::Object(doc) = doc else {
            return Err(JwksError::NotJson);
        };
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::NoKeysArray);
        };
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(str::to_string);
            let parsed = if index >= MAX_KEYS {
                Err(format!("more than {MAX_KEYS} keys in the set"))
            } else {
                parse_key(entry, policy)
            };
            match parsed {
                Ok(key) => keys.push(key),
                Err(reason) => skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(skipped));
        }
        Ok(Self {
            keys,
            skipped,
            verifier: policy.verifier,
        })
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The verifier the config chose for these keys.
    pub fn verifier(&self) -> Verifier {
        self.verifier
    }

    /// The usable keys as a JWKS with public members only (never private ones, whatever the
    /// source held), for serving on the gateway.
    pub fn public_document(&self) -> String {
        let keys: Vec<Value> = self.keys.iter().map(Key::public_jwk).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// Whether any key carries this `kid`: for tests and the `jwks` fuzz target only.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn parse_key(entry: &Value, policy: KeyPolicy) -> Result<Key, String> {
    let Value::Object(jwk) = entry else {
        return Err("not a JSON object".into());
    };
    let field = |name: &str| -> Result<Option<&str>, String> {
        match jwk.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("\"{name}\" is not a string")),
        }
    };
    let kid = field("kid")?.map(str::to_string);
    if let Some(usage) = field("use")?
        && usage != "sig"
    {
        return Err(format!("use \"{usage}\" is not \"sig\""));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
        if !verifies {
            return Err("key_ops does not include \"verify\"".into());
        }
    }
    let public = match field("kty")? {
        Some("RSA") => rsa_key(field("n")?, field("e")?, policy)?,
        Some("EC") => ec_key(field("crv")?, field("x")?, field("y")?)?,
        Some("oct") => return Err("symmetric (oct) keys are refused".into()),
        Some(other) => return Err(format!("unsupported key type \"{other}\"")),
        None => return Err("missing \"kty\"".into()),
    };
    let pinned_alg = match field("alg")? {
        None => None,
        Some(name) => {
            let alg = Alg::from_name(name).ok_or_else(|| format!("unsupported alg \"{name}\""))?;
            if alg.key_kind() != public.kind() {
                return Err(format!("alg \"{name}\" does not fit the key type"));
            }
            Some(alg)
        }
    };
    Ok(Key {
        kid,
        pinned_alg,
        public,
    })
}

fn decode(name: &str, value: Option<&str>) -> Result<Vec<u8>, String> {
    let value = value.ok_or_else(|| format!("missing \"{name}\""))?;
    JWK_BASE64
        .decode(value)
        .map_err(|_| format!("\"{name}\" is not base64url"))
}

fn rsa_key(n: Option<&str>, e: Option<&str>, policy: KeyPolicy) -> Result<PublicKey, String> {
    let n = BigUint::from_bytes_be(&decode("n", n)?);
    let e = BigUint::from_bytes_be(&decode("e", e)?);
    let bits = n.bits();
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA modulus of {bits} bits is under {MIN_RSA_BITS}"
        ));
    }
    if bits > policy.max_rsa_bits {
        return Err(format!(
            "RSA modulus of {bits} bits is over {} (jwtValidationOptions.maxRsaKeyBits)",
            policy.max_rsa_bits
        ));
    }
    let key = RsaPublicKey::new_with_max_size(n, e, policy.max_rsa_bits)
        .map_err(|err| format!("invalid RSA key: {err}"))?;
    Ok(PublicKey::Rsa(RsaKey::new(key)))
}

fn ec_key(crv: Option<&str>, x: Option<&str>, y: Option<&str>) -> Result<PublicKey, String> {
    match crv {
        Some("P-256") => {}
        Some(other) => return Err(format!("unsupported curve \"{other}\"")),
        None => return Err("missing \"crv\"".into()),
    }
    let coordinate = |name: &str, value: Option<&str>| -> Result<p256::FieldBytes, String> {
        let bytes: [u8; 32] = decode(name, value)?
            .try_into()
            .map_err(|_| "P-256 coordinates must be 32 bytes".to_string())?;
        Ok(bytes.into())
    };
    let point = p256::EncodedPoint::from_affine_coordinates(
        &coordinate("x", x)?,
        &coordinate("y", y)?,
        false,
    );
    p256::ecdsa::VerifyingKey::from_encoded_point(&point)
        .ok()
        .and_then(EcKey::new)
        .map(PublicKey::EcP256)
        .ok_or_else(|| "point is not on the P-256 curve".to_string())
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::EcP256 => "EC P-256",
        }
    }
}

#[cfg(test)]
mod tests;
