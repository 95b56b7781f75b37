//! Where an ES256 verification spends its time, piece by piece, on the production arithmetic.
//! Built for wasm32 and run in Node's V8 (close to Envoy's), as docs/performance.md shows:
//!
//! ```text
//! cargo build --release --target wasm32-wasip1 --features fuzzing --example es256_cost
//! node --no-warnings scripts/wasi-run.mjs target/wasm32-wasip1/release/examples/es256_cost.wasm
//! ```
//!
//! Also runs natively (`cargo run --release --features fuzzing --example es256_cost`). Each
//! line is the best of several rounds, so that a busy machine inflates it less. Prints
//! numbers, asserts nothing but that each operation gave the expected answer.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // benchmark driver, not filter code

use std::hint::black_box;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_authn::core::ecdsa_p256::P256Key;
use mcp_authn::core::ecdsa_p256::fuzzing::parts;
use mcp_authn::core::jwks::KeySet;
use mcp_authn::core::verify::{ClaimRules, check_without_keys, verify};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;
use sha2::{Digest, Sha256};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";
/// Short rounds (about a millisecond or two each), many of them: the best one is the least
/// disturbed by other processes and by V8 still running a function in its baseline tier.
const ROUNDS: u32 = 30;

fn main() {
    let scale: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    // Only the cases whose name contains this (for a profiler run on one of them).
    let only = std::env::args().nth(2).unwrap_or_default();
    let report = |name: &str, count: u32, op: &mut dyn FnMut(u32) -> bool| {
        if name.contains(&only) {
            report(name, count, op);
        }
    };
    let mut rng = Rng(0x5eed_c057);
    let signing = loop {
        if let Ok(key) = SigningKey::from_slice(&rng.bytes()) {
            break key;
        }
    };
    let point = signing.verifying_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return;
    };
    let (x, y): ([u8; 32], [u8; 32]) = ((*x).into(), (*y).into());
    let Some(key) = P256Key::from_coordinates(&x, &y) else {
        eprintln!("key refused");
        return;
    };
    let now = 1_700_000_000u64;
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": now + 3600,
        "scope": "tools:read tools:call", "client_id": "bench-client"});
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "ec-1"});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature: Signature = signing.sign(signing_input.as_bytes());
    let signature = signature.to_bytes();
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let digest: [u8; 32] = Sha256::digest(signing_input.as_bytes()).into();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec-1",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
    let Ok(keys) = KeySet::parse(json!({"keys": [jwk]}).to_string().as_bytes()) else {
        eprintln!("JWKS refused");
        return;
    };
    let rules = ClaimRules {
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        required: vec!["exp".into()],
        clock_skew_secs: 60,
    };
    // Field elements and scalars: a and b below both p and n (top limb below n's).
    let a = rng.limbs();
    let b = rng.limbs();
    let (u1, u2) = (rng.limbs(), rng.limbs());

    println!("{:<40} {:>10}", "case (best of 30 rounds)", "µs/op");
    let n = 20_000 * scale;
    let (Some(fa), Some(fb)) = (parts::field_element(&a), parts::field_element(&b)) else {
        return;
    };
    report("field multiply", n, &mut |count| {
        let mut x = fa;
        for _ in 0..count {
            x = black_box(x).multiply(fb);
        }
        !x.is_zero()
    });
    report("field square", n, &mut |count| {
        let mut x = fa;
        for _ in 0..count {
            x = black_box(x).square();
        }
        !x.is_zero()
    });
    report("field inverse (mod p)", n / 100, &mut |count| {
        (0..count).all(|_| black_box(fa).invert().is_some())
    });
    report("s^-1 (mod n)", n / 100, &mut |count| {
        (0..count).all(|_| parts::scalar_invert(black_box(&a)).is_some())
    });
    report("scalar multiply (mod n, Montgomery)", n, &mut |count| {
        let mut x = a;
        for _ in 0..count {
            x = parts::scalar_mul(black_box(&x), &b);
        }
        x[0] != 0
    });
    report("point double (Jacobian)", n / 4, &mut |count| {
        parts::double_g(black_box(count))[0] != 0
    });
    report("point add (mixed)", n / 4, &mut |count| {
        parts::add_g(black_box(count))[0] != 0
    });
    report("u1*G + u2*Q", n / 1000, &mut |count| {
        (0..count).all(|_| parts::mul_add(&key, black_box(&u1), black_box(&u2)) == Some(false))
    });
    report("key tables (first use of a key)", n / 2000, &mut |count| {
        (0..count).all(|_| parts::build_key_tables(black_box(&key)))
    });
    report("SHA-256 of the signing input", n / 10, &mut |count| {
        (0..count).all(|_| Sha256::digest(black_box(signing_input.as_bytes()))[0] == digest[0])
    });
    report("ES256 over the digest", n / 1000, &mut |count| {
        (0..count).all(|_| key.verify_prehash(black_box(&digest), &signature))
    });
    report("token: base64, JSON, iss (no keys)", n / 40, &mut |count| {
        (0..count).all(|_| check_without_keys(black_box(&token), &rules).is_ok())
    });
    report("whole verify (core::verify)", n / 1000, &mut |count| {
        (0..count).all(|_| verify(black_box(&token), &keys, &rules, now).is_ok())
    });
}

/// Runs `op(count)` for `ROUNDS` rounds and prints the best time per operation; `op` returns
/// whether every answer was the expected one.
fn report(name: &str, count: u32, op: &mut dyn FnMut(u32) -> bool) {
    let count = count.max(1);
    let mut best = f64::INFINITY;
    let mut all_ok = true;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        all_ok &= op(count);
        best = best.min(start.elapsed().as_secs_f64());
    }
    let per_op = best * 1e6 / f64::from(count);
    let status = if all_ok { "" } else { "  (UNEXPECTED RESULTS)" };
    println!("{name:<40} {per_op:>10.3}{status}");
}

/// xorshift64: reproducible inputs without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self) -> [u8; 32] {
        std::array::from_fn(|_| (self.next() >> 24) as u8)
    }

    /// 256-bit limbs below p and n: the top limb is kept below 2^31.
    fn limbs(&mut self) -> [u32; 8] {
        let mut out: [u32; 8] = std::array::from_fn(|_| (self.next() >> 16) as u32);
        out[7] >>= 1;
        out
    }
}
