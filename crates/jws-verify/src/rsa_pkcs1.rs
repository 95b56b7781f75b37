//! RS256/384/512 verification with a public-key operation built for wasm32: Montgomery
//! multiplication with 64-bit products (native i64 ops in wasm), and the exponent 65537 as
//! 16 squarings and one multiplication by the plain signature, which also leaves Montgomery
//! form. 2048-bit moduli, nearly every JWKS key, take the fixed-size path of [`fixed`]
//! (28-bit limbs, product scanning, a dedicated squaring); other sizes take [`General`]
//! (32-bit limbs, CIOS). The general-purpose bignum in `rsa` allocates per operation and is
//! several times slower in V8. Plugged into jwt-compact as an `Algorithm`, so the
//! verification flow stays the same; keys with another exponent use `rsa`.
//!
//! Indexing and arithmetic here are on fixed-length limb vectors built at key load; the
//! bounds are argued where they matter, and the module is checked against `rsa` and the
//! Wycheproof vectors in tests.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::borrow::Cow;
use std::convert::Infallible;

use jwt_compact::{Algorithm, AlgorithmSignature};
use rsa::BigUint;
use sha2::{Digest, Sha256, Sha384, Sha512};

mod fixed;

/// The only public exponent the fast path handles; it covers virtually every JWKS.
const F4: u32 = 65_537;

/// An RSA public key in Montgomery form: 2048-bit moduli in the fixed-size form of
/// [`fixed`], every other size in 32-bit limbs ([`General`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MontgomeryKey {
    form: Form,
    /// Modulus length in bytes (the signature length).
    size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    Fixed(Box<fixed::Fixed>),
    General(General),
}

impl MontgomeryKey {
    /// `None` unless the exponent is 65537 and the modulus is odd.
    pub fn new(n: &BigUint, e: &BigUint) -> Option<Self> {
        if *e != BigUint::from(F4) || n.bits() < 2 {
            return None;
        }
        let size = n.bits().div_ceil(8);
        let form = if size == fixed::BYTES {
            Form::Fixed(Box::new(fixed::Fixed::new(n)?))
        } else {
            Form::General(General::new(n)?)
        };
        Some(Self { form, size })
    }

    /// `signature^65537 mod n` as big-endian bytes of the modulus length; `None` when the
    /// signature is not exactly that long or not below the modulus.
    pub fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.size {
            return None;
        }
        match &self.form {
            Form::Fixed(fixed) => fixed.public_op(signature),
            Form::General(general) => general.public_op(signature, self.size),
        }
    }
}

/// Any odd modulus, in little-endian 32-bit limbs, multiplied by CIOS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct General {
    /// Modulus, little-endian 32-bit limbs.
    n: Vec<u32>,
    /// `-n^-1 mod 2^32`.
    n0_inv: u32,
    /// `R^2 mod n`, with `R = 2^(32 * limbs)`: converts into Montgomery form.
    r2: Vec<u32>,
}

impl General {
    fn new(n: &BigUint) -> Option<Self> {
        let n_limbs = limbs(&n.to_bytes_be());
        let n0 = *n_limbs.first()?;
        if n0 & 1 == 0 {
            return None;
        }
        let k = n_limbs.len();
        let mut r2_limbs = limbs(&r_squared(n, 32 * k));
        r2_limbs.resize(k, 0);
        Some(Self {
            n: n_limbs,
            n0_inv: neg_inverse(n0),
            r2: r2_limbs,
        })
    }

    /// [`MontgomeryKey::public_op`] for a signature of `size` bytes.
    fn public_op(&self, signature: &[u8], size: usize) -> Option<Vec<u8>> {
        let k = self.n.len();
        let mut s = limbs(signature);
        s.resize(k, 0);
        if !less_than(&s, &self.n) {
            return None;
        }
        // s·R, squared 16 times: s^65536·R; times the plain s and R^-1: s^65537, out of
        // Montgomery form without a conversion of its own.
        let mut x = self.mul(&s, &self.r2);
        for _ in 0..16 {
            x = self.mul(&x, &x);
        }
        let result = self.mul(&x, &s);
        let mut out = Vec::with_capacity(k * 4);
        for limb in result.iter().rev() {
            out.extend_from_slice(&limb.to_be_bytes());
        }
        // Drop the leading zero bytes beyond the modulus length.
        Some(out.split_off(out.len() - size))
    }

    /// Montgomery product `a * b * R^-1 mod n` (CIOS). Inputs are below `n`, so is the output.
    fn mul(&self, a: &[u32], b: &[u32]) -> Vec<u32> {
        let k = self.n.len();
        debug_assert!(
            a.len() == k && b.len() == k,
            "Montgomery inputs of the modulus length"
        );
        debug_assert!(
            less_than(a, &self.n) && less_than(b, &self.n),
            "Montgomery inputs below n"
        );
        let mut t = vec![0u32; k + 2];
        for &ai in a {
            // t += ai * b. Each step is at most (2^32-1)^2 + 2 (2^32-1) = 2^64 - 1: no overflow.
            let mut carry = 0u64;
            for j in 0..k {
                let sum = u64::from(t[j]) + u64::from(ai) * u64::from(b[j]) + carry;
                t[j] = sum as u32;
                carry = sum >> 32;
            }
            let sum = u64::from(t[k]) + carry;
            t[k] = sum as u32;
            t[k + 1] = (sum >> 32) as u32;
            // t = (t + m n) / 2^32, with m chosen so the low limb cancels.
            let m = t[0].wrapping_mul(self.n0_inv);
            let sum = u64::from(t[0]) + u64::from(m) * u64::from(self.n[0]);
            let mut carry = sum >> 32;
            for j in 1..k {
                let sum = u64::from(t[j]) + u64::from(m) * u64::from(self.n[j]) + carry;
                t[j - 1] = sum as u32;
                carry = sum >> 32;
            }
            let sum = u64::from(t[k]) + carry;
            t[k - 1] = sum as u32;
            t[k] = t[k + 1] + (sum >> 32) as u32;
        }
        // t < 2n here; one conditional subtraction brings it below n.
        if t[k] != 0 || !less_than(&t[..k], &self.n) {
            let mut borrow = 0i64;
            for (tj, nj) in t.iter_mut().zip(&self.n) {
                let diff = i64::from(*tj) - i64::from(*nj) + borrow;
                *tj = diff as u32;
                borrow = diff >> 32;
            }
        }
        t.truncate(k);
        t
    }
}

/// `-n0^-1 mod 2^32` for an odd `n0`, by Newton iteration (each step doubles the bits).
fn neg_inverse(n0: u32) -> u32 {
    let mut inv: u32 = 1;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// `R^2 mod n` as big-endian bytes, for `R = 2^r_bits`: the conversion into Montgomery form.
/// Not inlined: both forms call it, at key load only.
#[inline(never)]
fn r_squared(n: &BigUint, r_bits: usize) -> Vec<u8> {
    ((BigUint::from(1u8) << (2 * r_bits)) % n).to_bytes_be()
}

/// Big-endian bytes to little-endian 32-bit limbs.
fn limbs(bytes: &[u8]) -> Vec<u32> {
    bytes
        .rchunks(4)
        .map(|chunk| chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        .collect()
}

/// `a < b` for equal-length little-endian limb vectors (of either radix).
fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// The hash of an RS* algorithm, with its DER `DigestInfo` prefix (RFC 8017 section 9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "RS256",
            Self::Sha384 => "RS384",
            Self::Sha512 => "RS512",
        }
    }

    fn digest_info(self, message: &[u8]) -> Vec<u8> {
        const PREFIX: [u8; 15] = [
            0x30, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x00,
        ];
        let (digest, id, total): (Vec<u8>, u8, u8) = match self {
            Self::Sha256 => (Sha256::digest(message).to_vec(), 1, 0x31),
            Self::Sha384 => (Sha384::digest(message).to_vec(), 2, 0x41),
            Self::Sha512 => (Sha512::digest(message).to_vec(), 3, 0x51),
        };
        let mut info = PREFIX.to_vec();
        info[1] = total;
        info[14] = id;
        info.extend_from_slice(&[0x05, 0x00, 0x04, digest.len() as u8]);
        info.extend_from_slice(&digest);
        info
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-2, over [`MontgomeryKey`].
#[derive(Debug, Clone, Copy)]
pub struct Pkcs1(pub Hash);

/// A PKCS#1 signature: the raw bytes, checked for length by the key.
pub struct Pkcs1Signature(Vec<u8>);

impl AlgorithmSignature for Pkcs1Signature {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(Self(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

impl Algorithm for Pkcs1 {
    /// Verification only: this filter never signs.
    type SigningKey = Infallible;
    type VerifyingKey = MontgomeryKey;
    type Signature = Pkcs1Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0.name())
    }

    fn sign(&self, signing_key: &Infallible, _message: &[u8]) -> Pkcs1Signature {
        match *signing_key {}
    }

    /// Rebuilds the expected encoded message `00 01 FF.. 00 DigestInfo` and compares it
    /// whole, which rules out the parsing attacks on lenient PKCS#1 decoders.
    fn verify_signature(
        &self,
        signature: &Pkcs1Signature,
        key: &MontgomeryKey,
        message: &[u8],
    ) -> bool {
        let Some(encoded) = key.public_op(&signature.0) else {
            return false;
        };
        let info = self.0.digest_info(message);
        let Some(padding) = key.size.checked_sub(info.len() + 3) else {
            return false;
        };
        if padding < 8 {
            return false;
        }
        let mut expected = Vec::with_capacity(key.size);
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(2 + padding, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(&info);
        expected == encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::traits::PublicKeyParts;

    fn fixture_key() -> (rsa::RsaPrivateKey, rsa::RsaPublicKey) {
        let fixtures: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/keys.json")).unwrap();
        let jwk = &fixtures["rsa"];
        let int = |name: &str| {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().unwrap())
                .unwrap();
            BigUint::from_bytes_be(&bytes)
        };
        let private = rsa::RsaPrivateKey::from_components(
            int("n"),
            int("e"),
            int("d"),
            vec![int("p"), int("q")],
        )
        .unwrap();
        let public = private.to_public_key();
        (private, public)
    }

    #[test]
    fn public_op_matches_the_reference_bignum() {
        let (_, public) = fixture_key();
        let key = MontgomeryKey::new(public.n(), public.e()).unwrap();
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..50 {
            let mut bytes = vec![0u8; key.size];
            for b in bytes.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            bytes[0] &= 0x7f; // below the modulus
            let expected = BigUint::from_bytes_be(&bytes).modpow(public.e(), public.n());
            let mut expected = expected.to_bytes_be();
            while expected.len() < key.size {
                expected.insert(0, 0);
            }
            assert_eq!(key.public_op(&bytes).unwrap(), expected);
        }
    }

    /// xorshift64: reproducible bytes without a dependency.
    fn random_bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                *seed as u8
            })
            .collect()
    }

    /// `s^65537 mod n` by `BigUint`, padded to `size` bytes.
    fn reference(s: &BigUint, n: &BigUint, size: usize) -> Vec<u8> {
        let mut bytes = s.modpow(&BigUint::from(F4), n).to_bytes_be();
        let mut out = vec![0u8; size - bytes.len()];
        out.append(&mut bytes);
        out
    }

    /// The differential test of both paths against `BigUint`, on any odd modulus rather than
    /// RSA moduli (the arithmetic needs only oddness): random 2048-bit ones (the fixed path;
    /// its SIMD128 inner loop when built for wasm32, as scripts/wasm-tests.sh runs it), every
    /// eighth of another size (the general path), and edge moduli; per modulus, a random
    /// signature below it and the edges 0, 1, n - 1, n - 2.
    #[test]
    fn public_op_matches_the_reference_on_random_and_edge_moduli() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let ones = BigUint::from_bytes_be(&[0xff; 256]);
        let mut moduli = vec![
            ones.clone(),                                     // 2^2048 - 1
            (BigUint::from(1u8) << 2047) + 1u8,               // the smallest top-bit modulus
            (BigUint::from(1u8) << 2040) + 1u8,               // the smallest 256-byte modulus
            (BigUint::from(1u8) << 2044) - 1u8,               // 73 full 28-bit limbs
            ones.clone() - (BigUint::from(1u8) << 1000usize), // a hole in the middle
            BigUint::from_bytes_be(&[0xff; 255]),             // one byte short: general
            BigUint::from_bytes_be(&[0xff; 257]),             // one byte over: general
        ];
        for case in 0..600 {
            let size = match case % 8 {
                7 => [128, 255, 257, 384, 512][case / 8 % 5],
                _ => 256,
            };
            let mut bytes = random_bytes(&mut seed, size);
            bytes[0] |= 1 << (case % 8); // every top-byte length
            bytes[size - 1] |= 1;
            moduli.push(BigUint::from_bytes_be(&bytes));
        }
        let mut compared = 0;
        for n in &moduli {
            let size = n.bits().div_ceil(8);
            let key = MontgomeryKey::new(n, &BigUint::from(F4)).unwrap();
            assert_eq!(
                matches!(key.form, Form::Fixed(_)),
                size == 256,
                "{size}-byte modulus"
            );
            let random = BigUint::from_bytes_be(&random_bytes(&mut seed, size)) % n;
            for s in [
                random,
                BigUint::from(0u8),
                BigUint::from(1u8),
                n - 1u8,
                n - 2u8,
            ] {
                let mut signature = s.to_bytes_be();
                signature.splice(0..0, vec![0u8; size - signature.len()]);
                assert_eq!(
                    key.public_op(&signature),
                    Some(reference(&s, n, size)),
                    "n = {n:x}, s = {s:x}"
                );
                compared += 1;
            }
            assert!(key.public_op(&n.to_bytes_be()).is_none(), "s = n refused");
            assert!(key.public_op(&vec![0xff; size]).is_none(), "s > n refused");
        }
        assert_eq!(compared, 5 * 607);
    }

    #[test]
    fn out_of_range_signatures_are_refused() {
        let (_, public) = fixture_key();
        let key = MontgomeryKey::new(public.n(), public.e()).unwrap();
        assert!(key.public_op(&vec![0xff; key.size]).is_none());
        assert!(key.public_op(&public.n().to_bytes_be()).is_none());
        assert!(key.public_op(&[1, 2, 3]).is_none());
        assert!(MontgomeryKey::new(public.n(), &BigUint::from(3u8)).is_none());
    }

    #[test]
    fn verifies_what_the_rsa_crate_signs_and_nothing_else() {
        let (private, public) = fixture_key();
        let key = MontgomeryKey::new(public.n(), public.e()).unwrap();
        for (hash, reference) in [
            (Hash::Sha256, jwt_compact::alg::Rsa::rs256()),
            (Hash::Sha384, jwt_compact::alg::Rsa::rs384()),
            (Hash::Sha512, jwt_compact::alg::Rsa::rs512()),
        ] {
            let signature = reference.sign(&private, b"message").as_bytes().into_owned();
            let alg = Pkcs1(hash);
            let check = |sig: &[u8], msg: &[u8]| {
                alg.verify_signature(&Pkcs1Signature(sig.to_vec()), &key, msg)
            };
            assert!(check(&signature, b"message"), "{hash:?}");
            assert!(!check(&signature, b"massage"), "{hash:?}");
            let mut flipped = signature.clone();
            flipped[10] ^= 1;
            assert!(!check(&flipped, b"message"), "{hash:?}");
        }
        let rs256 = jwt_compact::alg::Rsa::rs256()
            .sign(&private, b"m")
            .as_bytes()
            .into_owned();
        assert!(!Pkcs1(Hash::Sha384).verify_signature(&Pkcs1Signature(rs256), &key, b"m"));
    }
}
