//! The RSA verifier against the reference crate on the same inputs:
//! - mode 0: `MontgomeryKey::public_op` against `BigUint::modpow` on an arbitrary odd modulus
//!   and an arbitrary signature (below the modulus or not): of 256 bytes (the fixed-size path)
//!   when the length's high bit is set, else of 2 to 520 bytes (the general path, and the
//!   fixed one at 256);
//! - mode 1: a PKCS#1 v1.5 signature by a fixture key over one of a fixed set of messages,
//!   then mutated, and checked either over its own message or over a fuzzer-chosen one (which
//!   both sides must refuse unless it is the same bytes), with the filter's RS* decision
//!   (`Alg::verify`, the s < n check and the Montgomery path) compared against `rsa`'s PKCS#1
//!   v1.5 verifier.
//!
//! Each signature is made once per process (`signature`), not per run: an RSA private-key
//! operation costs milliseconds and held the target to ~50 executions/s, while every run's
//! two public-key checks cost tens of microseconds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::alg::Alg;
use mcp_authn::core::rsa_pkcs1::MontgomeryKey;
use mcp_authn_fuzz::rsa_fixtures;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::sync::OnceLock;

/// Messages signed ahead: empty, around the SHA-256 and SHA-512 padding boundaries (55/56,
/// 111/112 bytes), a block and a half, a JWS signing input, and a long one.
fn messages() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [
        0usize, 1, 31, 55, 56, 63, 64, 65, 111, 112, 127, 128, 200, 1000,
    ]
    .iter()
    .map(|&len| (0..len).map(|i| (i * 7 + len) as u8).collect())
    .collect();
    out.push(b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmdXp6In0".to_vec());
    out.push(vec![0xff; 4096]);
    out
}

/// The three RS* algorithms: the filter's `Alg`, `rsa`'s scheme and the digest.
fn hash(index: u8, message: &[u8]) -> (Alg, Pkcs1v15Sign, Vec<u8>) {
    match index % 3 {
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
    }
}

/// The fixed messages, and a slot per (fixture, hash, message) for its signature, indexed
/// `[fixture][hash][message]`: each is signed on first use, so a short run starts at once.
struct Signed {
    messages: Vec<Vec<u8>>,
    signatures: Vec<[Vec<OnceLock<Vec<u8>>>; 3]>,
}

fn signed() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let messages = messages();
        let slots = || messages.iter().map(|_| OnceLock::new()).collect::<Vec<_>>();
        let signatures = rsa_fixtures()
            .iter()
            .map(|_| [slots(), slots(), slots()])
            .collect();
        Signed {
            messages,
            signatures,
        }
    })
}

/// The fixture's signature over message `m` with hash `h`, made once.
fn signature(f: usize, h: u8, m: usize) -> Vec<u8> {
    let signed = signed();
    signed.signatures[f][usize::from(h % 3)][m]
        .get_or_init(|| {
            let (_, scheme, digest) = hash(h, &signed.messages[m]);
            rsa_fixtures()[f]
                .private
                .sign(scheme, &digest)
                .expect("the fixture key signs")
        })
        .clone()
}

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
    let len = if hi & 0x80 != 0 {
        256
    } else {
        (usize::from(hi) << 8 | usize::from(lo)) % 519 + 2
    };
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
    let Some((&[which, hash_index, pick, mutation, position, value], chosen)) =
        data.split_first_chunk::<6>().map(|(a, b)| (a, b))
    else {
        return;
    };
    let fixtures = rsa_fixtures();
    let signed = signed();
    let f = usize::from(which) % fixtures.len();
    let fixture = &fixtures[f];
    let m = usize::from(pick) % signed.messages.len();
    let mut signature = signature(f, hash_index, m);
    // The high bit of `pick`: verify the signature over the fuzzer's message instead.
    let message: &[u8] = if pick & 0x80 == 0 {
        &signed.messages[m]
    } else {
        chosen
    };
    let (alg, scheme, digest) = hash(hash_index, message);
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
    if message != signed.messages[m].as_slice() {
        assert!(!reference, "a signature verified over another message");
    }
}
