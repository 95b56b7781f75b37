//! The algorithm allow-list. Each algorithm is tied to one key type, so a key can only ever
//! verify the algorithms its type allows: no `none`, no HMAC, no RSA key verifying ES256.

use jwt_compact::alg::{Rsa, RsaPublicKey};
use jwt_compact::{Algorithm, AlgorithmSignature};

use super::ecdsa_p256::{Es256, P256Key};
use super::rsa_pkcs1::{Hash, MontgomeryKey, Pkcs1};

/// The JWS algorithms this filter verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
}

/// Which implementation checks signatures (`jwtValidationOptions.verifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verifier {
    /// RS* with e = 65537 and ES256 through this crate's 32-bit verifiers, written for
    /// wasm32 (3 to 8 times faster there); PS* and other exponents through `rsa`.
    #[default]
    Fast,
    /// Everything through the audited `rsa` and `p256` crates.
    Reference,
}

/// Key families, as in a JWK's `kty` (plus curve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
}

/// Public key material, already parsed and checked.
#[derive(Debug, Clone)]
pub enum PublicKey {
    Rsa(RsaKey),
    EcP256(EcKey),
}

/// An RSA key, with its Montgomery form for the fast RS* path when the exponent is 65537.
#[derive(Debug, Clone)]
pub struct RsaKey {
    pub key: RsaPublicKey,
    pub fast: Option<MontgomeryKey>,
    /// The modulus, big-endian and exactly as long as a signature, for the `s < n` check.
    modulus: Vec<u8>,
}

impl RsaKey {
    pub fn new(key: RsaPublicKey) -> Self {
        use rsa::traits::PublicKeyParts;
        let fast = MontgomeryKey::new(key.n(), key.e());
        let modulus = key.n().to_bytes_be();
        Self { key, fast, modulus }
    }

    /// RFC 8017 8.2.2 / 8.1.2: a signature is an integer of exactly the modulus length and
    /// below the modulus. `rsa`'s PSS verifier skips the second check, which would give every
    /// token with `s + n` under the length a second valid encoding.
    fn is_signature_representative(&self, signature: &[u8]) -> bool {
        // Equal lengths, so byte order is numeric order.
        signature.len() == self.modulus.len() && signature < self.modulus.as_slice()
    }
}

/// A P-256 key, with the precomputed form the ES256 verifier uses.
#[derive(Debug, Clone)]
pub struct EcKey {
    pub key: p256::ecdsa::VerifyingKey,
    pub fast: P256Key,
}

impl EcKey {
    /// `None` only if the verifier refuses a point `p256` accepted (not expected: both check
    /// that it is on the curve).
    pub fn new(key: p256::ecdsa::VerifyingKey) -> Option<Self> {
        let point = key.to_encoded_point(false);
        let coordinate = |c: Option<&p256::FieldBytes>| c.map(|c| <[u8; 32]>::from(*c));
        let fast = P256Key::from_coordinates(&coordinate(point.x())?, &coordinate(point.y())?)?;
        Some(Self { key, fast })
    }
}

impl PublicKey {
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Rsa(_) => KeyKind::Rsa,
            Self::EcP256(_) => KeyKind::EcP256,
        }
    }
}

impl Alg {
    /// Maps a JWS `alg` name; anything not on the allow-list (`none`, `HS256`, ...) is `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
        }
    }

    pub fn key_kind(self) -> KeyKind {
        match self {
            Self::Es256 => KeyKind::EcP256,
            _ => KeyKind::Rsa,
        }
    }

    /// Verifies `signature` over `message` with the fast verifiers; `false` on any mismatch,
    /// including a key of the wrong type or a signature of the wrong length.
    pub fn verify(self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        self.verify_with(Verifier::Fast, key, message, signature)
    }

    /// [`Alg::verify`] through the chosen verifier. In builds with debug assertions (tests,
    /// fuzzing) the other one runs too, in shadow, and the two must agree.
    pub fn verify_with(
        self,
        verifier: Verifier,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        if let PublicKey::Rsa(rsa_key) = key
            && !rsa_key.is_signature_representative(signature)
        {
            // Checked here once for every RSA path, whatever the verifier behind it checks.
            return false;
        }
        let verified = self.verify_through(verifier, key, message, signature);
        #[cfg(debug_assertions)]
        {
            let other = match verifier {
                Verifier::Fast => Verifier::Reference,
                Verifier::Reference => Verifier::Fast,
            };
            let shadow = self.verify_through(other, key, message, signature);
            debug_assert_eq!(
                verified,
                shadow,
                "{} verifiers disagree ({verifier:?} said {verified})",
                self.name()
            );
        }
        verified
    }

    fn verify_through(
        self,
        verifier: Verifier,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        match (self, key, verifier) {
            (Self::Es256, PublicKey::EcP256(EcKey { fast, .. }), Verifier::Fast) => {
                check(&Es256, fast, message, signature)
            }
            (Self::Es256, PublicKey::EcP256(EcKey { key, .. }), Verifier::Reference) => {
                check(&jwt_compact::alg::Es256, key, message, signature)
            }
            (Self::Es256, PublicKey::Rsa(_), _) | (_, PublicKey::EcP256(_), _) => false,
            (rsa_alg, PublicKey::Rsa(RsaKey { key, fast, .. }), verifier) => {
                let pkcs1 = match rsa_alg {
                    Self::Rs256 => Some(Hash::Sha256),
                    Self::Rs384 => Some(Hash::Sha384),
                    Self::Rs512 => Some(Hash::Sha512),
                    _ => None,
                };
                if let (Some(hash), Some(fast), Verifier::Fast) = (pkcs1, fast, verifier) {
                    return check(&Pkcs1(hash), fast, message, signature);
                }
                let rsa_alg = match rsa_alg {
                    Self::Rs384 => Rsa::rs384(),
                    Self::Rs512 => Rsa::rs512(),
                    Self::Ps256 => Rsa::ps256(),
                    Self::Ps384 => Rsa::ps384(),
                    Self::Ps512 => Rsa::ps512(),
                    Self::Rs256 | Self::Es256 => Rsa::rs256(),
                };
                check(&rsa_alg, key, message, signature)
            }
        }
    }
}

fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    if A::Signature::LENGTH.is_some_and(|len| len.get() != signature.len()) {
        return false;
    }
    match A::Signature::try_from_slice(signature) {
        Ok(signature) => alg.verify_signature(&signature, key, message),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_are_allowed() {
        for name in [
            "none", "None", "HS256", "HS384", "HS512", "ES384", "EdDSA", "rs256", "",
        ] {
            assert_eq!(Alg::from_name(name), None, "{name}");
        }
        for name in [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
        ] {
            assert_eq!(Alg::from_name(name).map(Alg::name), Some(name));
        }
    }
}
