//! Token signing for demos, tests and the checker's `mint` command. Native only: the filter
//! itself never signs anything.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_compact::alg::{Es256, Rsa, RsaPrivateKey};
use jwt_compact::{Algorithm, AlgorithmSignature};
use rsa::BigUint;
use serde_json::{Value, json};

use crate::core::alg::Alg;

/// A private key read from a JWK with its private members.
pub struct SigningKey {
    kid: Option<String>,
    key: PrivateKey,
}

enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    EcP256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// Reads an RSA (`n`, `e`, `d`, `p`, `q`) or P-256 (`d`) private JWK.
    pub fn from_jwk(jwk: &Value) -> Result<Self, String> {
        let member = |name: &str| -> Result<Vec<u8>, String> {
            let text = jwk
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("private JWK lacks \"{name}\""))?;
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| format!("\"{name}\" is not base64url"))
        };
        let int = |name: &str| member(name).map(|bytes| BigUint::from_bytes_be(&bytes));
        let key = match jwk.get("kty").and_then(Value::as_str) {
            Some("RSA") => {
                let key = RsaPrivateKey::from_components(
                    int("n")?,
                    int("e")?,
                    int("d")?,
                    vec![int("p")?, int("q")?],
                )
                .map_err(|e| format!("invalid RSA private key: {e}"))?;
                PrivateKey::Rsa(Box::new(key))
            }
            Some("EC") => {
                let key = p256::ecdsa::SigningKey::from_slice(&member("d")?)
                    .map_err(|_| "invalid P-256 private key".to_string())?;
                PrivateKey::EcP256(key)
            }
            _ => return Err("unsupported private key type".into()),
        };
        Ok(Self {
            kid: jwk.get("kid").and_then(Value::as_str).map(str::to_string),
            key,
        })
    }

    /// The algorithm this key signs with by default.
    pub fn default_alg(&self) -> Alg {
        match self.key {
            PrivateKey::Rsa(_) => Alg::Rs256,
            PrivateKey::EcP256(_) => Alg::Es256,
        }
    }

    /// The public JWK (with `kid`, `alg` and `use`), for publishing in a JWKS.
    pub fn public_jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = match &self.key {
            PrivateKey::Rsa(key) => {
                use rsa::traits::PublicKeyParts;
                json!({"kty": "RSA", "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())})
            }
            PrivateKey::EcP256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256",
                       "x": b64(&point.x().map(|x| x.to_vec()).unwrap_or_default()),
                       "y": b64(&point.y().map(|y| y.to_vec()).unwrap_or_default())})
            }
        };
        if let Some(members) = jwk.as_object_mut() {
            members.insert("alg".into(), json!(self.default_alg().name()));
            members.insert("use".into(), json!("sig"));
            if let Some(kid) = &self.kid {
                members.insert("kid".into(), json!(kid));
            }
        }
        jwk
    }

    /// A compact JWS with header `{alg, typ, kid}` over `claims`.
    pub fn mint(&self, claims: &Value) -> String {
        let header = match &self.kid {
            Some(kid) => json!({"alg": self.default_alg().name(), "typ": "JWT", "kid": kid}),
            None => json!({"alg": self.default_alg().name(), "typ": "JWT"}),
        };
        self.sign_raw(&header, claims.to_string().as_bytes(), self.default_alg())
    }

    /// Signs arbitrary header and payload bytes with `alg`, for crafting test tokens.
    /// Returns an empty signature segment when `alg` does not fit the key.
    pub fn sign_raw(&self, header: &Value, payload: &[u8], alg: Alg) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let message = signing_input.as_bytes();
        let signature = match (&self.key, alg) {
            (PrivateKey::EcP256(key), Alg::Es256) => {
                Es256.sign(key, message).as_bytes().into_owned()
            }
            (PrivateKey::Rsa(key), alg) if alg != Alg::Es256 => {
                let rsa = match alg {
                    Alg::Rs384 => Rsa::rs384(),
                    Alg::Rs512 => Rsa::rs512(),
                    Alg::Ps256 => Rsa::ps256(),
                    Alg::Ps384 => Rsa::ps384(),
                    Alg::Ps512 => Rsa::ps512(),
                    _ => Rsa::rs256(),
                };
                rsa.sign(key, message).as_bytes().into_owned()
            }
            _ => Vec::new(),
        };
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}
