//! A reference model of token acceptance, written from the rules (RFC 7515/7519, the docs)
//! and sharing no code with the filter: its own base64url decoding, `serde_json` for the JSON,
//! the `rsa` and `p256` crates for signatures (the filter verifies RS* and ES256 with its own
//! arithmetic), then the claim rules. The fuzz targets assert that every token the filter
//! accepts, the model accepts too, so a filter that lost a check is caught by the first input
//! that needs it.
//!
//! The model is deliberately no stricter than the rules where the filter may be lenient in a
//! harmless way (it tries every key when there is no `kid`; it ignores duplicate members).

use p256::ecdsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};

/// One public key of the set, as the model holds it.
enum Key {
    Rsa(RsaPublicKey),
    Ec(p256::ecdsa::VerifyingKey),
}

struct Entry {
    kid: Option<String>,
    alg: Option<String>,
    key: Key,
}

/// The rules a token must satisfy.
pub struct Model {
    issuer: String,
    audiences: Vec<String>,
    required: Vec<String>,
    skew: u64,
    keys: Vec<Entry>,
}

/// base64url without padding (RFC 7515 section 2), decoded by hand.
pub fn b64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // One leftover character (6 bits) can encode no byte.
    (bits < 6).then_some(out)
}

fn str_field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

impl Model {
    /// The model of the filter's base config: `jwks` is the public key set.
    pub fn new(
        issuer: &str,
        audiences: &[&str],
        required: &[&str],
        skew: u64,
        jwks: &Value,
    ) -> Self {
        let mut keys = Vec::new();
        for jwk in jwks["keys"].as_array().expect("keys") {
            let jwk = jwk.as_object().expect("jwk object");
            let field = |n: &str| b64url(str_field(jwk, n).expect("jwk member")).expect("b64");
            let key = match str_field(jwk, "kty") {
                Some("RSA") => Key::Rsa(
                    RsaPublicKey::new(
                        BigUint::from_bytes_be(&field("n")),
                        BigUint::from_bytes_be(&field("e")),
                    )
                    .expect("rsa key"),
                ),
                Some("EC") => {
                    let point = [vec![4u8], field("x"), field("y")].concat();
                    Key::Ec(p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).expect("p256 key"))
                }
                other => panic!("unexpected kty {other:?}"),
            };
            keys.push(Entry {
                kid: str_field(jwk, "kid").map(str::to_string),
                alg: str_field(jwk, "alg").map(str::to_string),
                key,
            });
        }
        Self {
            issuer: issuer.to_string(),
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            required: required.iter().map(|a| a.to_string()).collect(),
            skew,
            keys,
        }
    }

    /// The token's claims when the model accepts it at `now`, or the rule it breaks.
    pub fn check(&self, token: &str, now: u64) -> Result<Map<String, Value>, &'static str> {
        let parts: Vec<&str> = token.split('.').collect();
        let [h, p, s] = parts[..] else {
            return Err("not three parts");
        };
        let header: Value =
            serde_json::from_slice(&b64url(h).ok_or("header b64")?).map_err(|_| "header json")?;
        let header = header.as_object().ok_or("header not an object")?;
        let payload: Value =
            serde_json::from_slice(&b64url(p).ok_or("payload b64")?).map_err(|_| "payload json")?;
        let Value::Object(claims) = payload else {
            return Err("payload not an object");
        };
        let signature = b64url(s).ok_or("signature b64")?;
        if header.contains_key("crit") || header.contains_key("b64") {
            return Err("crit/b64");
        }
        let alg = str_field(header, "alg").ok_or("no alg")?;
        let kid = header.get("kid");
        if kid.is_some_and(|k| !k.is_string()) {
            return Err("kid not a string");
        }
        let kid = kid.and_then(Value::as_str);
        let signed = format!("{h}.{p}");
        let verified = self
            .keys
            .iter()
            .filter(|e| kid.is_none() || e.kid.as_deref() == kid)
            .filter(|e| e.alg.as_deref().is_none_or(|a| a == alg))
            .any(|e| verify(&e.key, alg, signed.as_bytes(), &signature));
        if !verified {
            return Err("signature");
        }
        self.claim_rules(&claims, now)?;
        Ok(claims)
    }

    fn claim_rules(&self, claims: &Map<String, Value>, now: u64) -> Result<(), &'static str> {
        if str_field(claims, "iss") != Some(self.issuer.as_str()) {
            return Err("iss");
        }
        if !self.audiences.is_empty() {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => self.audiences.contains(a),
                Some(Value::Array(list)) => list.iter().any(|a| {
                    a.as_str()
                        .is_some_and(|a| self.audiences.iter().any(|x| x == a))
                }),
                _ => false,
            };
            if !ok {
                return Err("aud");
            }
        }
        for name in &self.required {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err("required claim");
            }
        }
        let (now, skew) = (now as f64, self.skew as f64);
        if let Some(exp) = claims.get("exp") {
            let exp = exp.as_f64().ok_or("exp not a number")?;
            if now > exp + skew {
                return Err("exp");
            }
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_f64().ok_or("nbf not a number")?;
            if nbf > now + skew {
                return Err("nbf");
            }
        }
        Ok(())
    }
}

fn verify(key: &Key, alg: &str, message: &[u8], signature: &[u8]) -> bool {
    use rsa::{pkcs1v15, pss};
    use sha2::{Sha256, Sha384, Sha512};
    match key {
        Key::Rsa(k) => {
            let pkcs1 = pkcs1v15::Signature::try_from(signature);
            let pss_sig = pss::Signature::try_from(signature);
            let (Ok(pkcs1), Ok(pss_sig)) = (pkcs1, pss_sig) else {
                return false;
            };
            let k = k.clone();
            match alg {
                "RS256" => pkcs1v15::VerifyingKey::<Sha256>::new(k)
                    .verify(message, &pkcs1)
                    .is_ok(),
                "RS384" => pkcs1v15::VerifyingKey::<Sha384>::new(k)
                    .verify(message, &pkcs1)
                    .is_ok(),
                "RS512" => pkcs1v15::VerifyingKey::<Sha512>::new(k)
                    .verify(message, &pkcs1)
                    .is_ok(),
                "PS256" => pss::VerifyingKey::<Sha256>::new(k)
                    .verify(message, &pss_sig)
                    .is_ok(),
                "PS384" => pss::VerifyingKey::<Sha384>::new(k)
                    .verify(message, &pss_sig)
                    .is_ok(),
                "PS512" => pss::VerifyingKey::<Sha512>::new(k)
                    .verify(message, &pss_sig)
                    .is_ok(),
                _ => false,
            }
        }
        Key::Ec(k) => {
            alg == "ES256"
                && p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| k.verify(message, &sig).is_ok())
        }
    }
}
