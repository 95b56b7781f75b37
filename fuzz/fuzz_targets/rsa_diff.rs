//! The RSA verifier against the reference crate on the same inputs:
//! - mode 0: `MontgomeryKey::public_op` against `BigUint::modpow` on an arbitrary odd modulus
//!   of 2 to 520 bytes and an arbitrary signature (below the modulus or not);
//! - mode 1: a PKCS#1 v1.5 signature made with a fixture key over a fuzzer-chosen message,
//!   then mutated, with the filter's RS* decision (`Alg::verify`, the s < n check and the
//!   Montgomery path) compared against `rsa`'s PKCS#1 v1.5 verifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::alg::Alg;
use mcp_authn::core::rsa_pkcs1::MontgomeryKey;
use mcp_authn_fuzz::rsa_fixtures;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign};
use sha2::{Digest, Sha256, Sha384, Sha512};

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => public_op(rest),
        Some((_, rest)) => pkcs1(rest),
        None => {}
    }
});

fn public_op(data: &[u8]) {
    let Some((&[hi, lo], rest)) = data.split_first_chunk::<2>().map(|(a, b)| (a, b)) else {
        return;
    };
    let len = (usize::from(hi) << 8 | usize::from(lo)) % 519 + 2;
    if rest.len() < 2 * len {
        return;
    }
    let (n_bytes, rest) = rest.split_at(len);
    let signature = &rest[..len];
    let mut n_bytes = n_bytes.to_vec();
    n_bytes[len - 1] |= 1;
    n_bytes[0] |= 0x80; // full length, so the signature is exactly as long as the modulus
    let n = BigUint::from_bytes_be(&n_bytes);
    let e = BigUint::from(65_537u32);
    let key = MontgomeryKey::new(&n, &e).expect("odd modulus of two bytes or more");
    let s = BigUint::from_bytes_be(signature);
    let expected = (s < n).then(|| {
        let mut bytes = s.modpow(&e, &n).to_bytes_be();
        let mut padded = vec![0u8; len - bytes.len()];
        padded.append(&mut bytes);
        padded
    });
    assert_eq!(key.public_op(signature), expected, "n={n:x} s={s:x}");
}

fn pkcs1(data: &[u8]) {
    let Some((&[which, hash, mutation, position, value], message)) =
        data.split_first_chunk::<5>().map(|(a, b)| (a, b))
    else {
        return;
    };
    let fixtures = rsa_fixtures();
    let fixture = &fixtures[usize::from(which) % fixtures.len()];
    let (alg, scheme, digest): (Alg, Pkcs1v15Sign, Vec<u8>) = match hash % 3 {
        0 => (
            Alg::Rs256,
            Pkcs1v15Sign::new::<Sha256>(),
            Sha256::digest(message).to_vec(),
        ),
        1 => (
            Alg::Rs384,
            Pkcs1v15Sign::new::<Sha384>(),
            Sha384::digest(message).to_vec(),
        ),
        _ => (
            Alg::Rs512,
            Pkcs1v15Sign::new::<Sha512>(),
            Sha512::digest(message).to_vec(),
        ),
    };
    let mut signature = fixture
        .private
        .sign(scheme.clone(), &digest)
        .expect("the fixture key signs");
    let n = fixture.key.n();
    let at = usize::from(position) % signature.len();
    match mutation % 10 {
        0 => {}
        1 => signature[at] ^= 1 << (value % 8),
        2 => signature[at] = value,
        // s + n and s - n: the same value mod n, a different integer
        3 => signature = (BigUint::from_bytes_be(&signature) + n).to_bytes_be(),
        4 => {
            let s = BigUint::from_bytes_be(&signature);
            if s >= *n {
                signature = (s - n).to_bytes_be();
            }
        }
        5 => signature.truncate(at),
        6 => signature.insert(0, value),
        7 => signature = n.to_bytes_be(),
        8 => signature = (n - BigUint::from(1u8)).to_bytes_be(),
        _ => signature = vec![value; signature.len()],
    }
    let reference = fixture.key.verify(scheme, &digest, &signature).is_ok();
    let ours = alg.verify(&fixture.public, message, &signature);
    assert_eq!(ours, reference, "mutation {} at {at}", mutation % 10);
}
