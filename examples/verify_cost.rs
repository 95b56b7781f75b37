//! Cost per verification, through the same core the filter runs, with the RS256 path split
//! into its public-key operation, its SHA-256 and the rest (base64, JSON, claims). Natively:
//! `cargo run --release --example verify_cost [iterations]`. In V8 (Node's, close to Envoy's),
//! as the filter runs it:
//! `cargo build --release --target wasm32-wasip1 --features sign --example verify_cost &&
//! node --no-warnings scripts/wasi-run.mjs target/wasm32-wasip1/release/examples/verify_cost.wasm`.
//! Prints numbers, asserts nothing.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // benchmark driver, not filter code

use std::hint::black_box;
use std::time::Instant;

use mcp_authn::core::alg::{Alg, PublicKey, Verifier};
use mcp_authn::core::config::{Config, KeySource};
use mcp_authn::core::decision::{KeyState, Keys, decide};
use mcp_authn::core::jwks::{KeyPolicy, KeySet};
use mcp_authn::core::request::Request;
use mcp_authn::core::token_cache::TokenCache;
use mcp_authn::core::verify::ClaimRules;
use mcp_authn::core::verify::verify;
use mcp_authn::sign::SigningKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let fixtures: Value =
        serde_json::from_str(include_str!("../tests/fixtures/keys.json")).unwrap_or_default();
    let signer = |name: &str| SigningKey::from_jwk(&fixtures[name]).ok();
    let (Some(rsa), Some(ec)) = (signer("rsa"), signer("ec")) else {
        eprintln!("tests/fixtures/keys.json is unreadable");
        return;
    };
    let jwks = json!({"keys": [rsa.public_jwk(), ec.public_jwk()]});
    let Ok(keys) = KeySet::parse(jwks.to_string().as_bytes()) else {
        eprintln!("fixture JWKS refused");
        return;
    };
    let rules = ClaimRules {
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        required: vec!["exp".into()],
        clock_skew_secs: 60,
    };
    let now = 1_700_000_000;
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": now + 3600});
    let reference_policy = KeyPolicy {
        verifier: Verifier::Reference,
        ..KeyPolicy::default()
    };
    let Ok(reference) = KeySet::parse_with(jwks.to_string().as_bytes(), reference_policy) else {
        eprintln!("fixture JWKS refused");
        return;
    };
    println!(
        "{:<34} {:>10} {:>10} {:>12}",
        "case", "best µs/op", "median", "best ops/s"
    );
    rs256_parts(&rsa.mint(&claims), &keys, iterations);
    for (name, key, keys) in [
        ("RS256 verify (2048-bit)", &rsa, &keys),
        ("ES256 verify (P-256)", &ec, &keys),
        ("RS256 verify, reference (rsa)", &rsa, &reference),
        ("ES256 verify, reference (p256)", &ec, &reference),
    ] {
        let token = key.mint(&claims);
        report(name, iterations, || {
            black_box(verify(black_box(&token), keys, &rules, now)).is_ok()
        });
    }
    let config = Config::from_json(
        json!({"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"inline": jwks}})
            .to_string()
            .as_bytes(),
    );
    let Ok(config) = config else {
        eprintln!("bench config refused");
        return;
    };
    let KeySource::Inline(inline) = &config.keys else {
        return;
    };
    let token = rsa.mint(&claims);
    let request = Request {
        method: "POST".into(),
        path: "/mcp".into(),
        scheme: "https".into(),
        authority: "mcp.example.com".into(),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
    };
    let mut cache = TokenCache::new(config.token_cache);
    report("decide, cached token (hit)", iterations * 50, || {
        let keys = KeyState::Ready {
            keys: inline,
            may_refetch: false,
        };
        matches!(
            decide(&config, black_box(&request), cached(keys, &mut cache), now),
            mcp_authn::core::decision::Decision::Forward { .. }
        )
    });
    let anonymous = Request {
        headers: vec![],
        ..request.clone()
    };
    report("decide, no token (401)", iterations * 50, || {
        let keys = KeyState::Ready {
            keys: inline,
            may_refetch: false,
        };
        !matches!(
            decide(
                &config,
                black_box(&anonymous),
                cached(keys, &mut cache),
                now
            ),
            mcp_authn::core::decision::Decision::Forward { .. }
        )
    });
}

/// The RS256 path in parts: the public-key operation alone, the SHA-256 of the signing input,
/// and the whole signature check (both, plus the PKCS#1 block); the whole verification, in
/// the rows after, adds the base64, JSON and claims work.
fn rs256_parts(token: &str, keys: &KeySet, iterations: u32) {
    let Some(PublicKey::Rsa(key)) = keys.keys().first().map(|key| &key.public) else {
        eprintln!("the fixture JWKS has no RSA key first");
        return;
    };
    let Some(fast) = key.fast.as_ref() else {
        eprintln!("the fixture RSA key has no Montgomery form");
        return;
    };
    let Some((input, signature)) = token.rsplit_once('.') else {
        return;
    };
    use base64::Engine;
    let Ok(signature) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
        return;
    };
    report("RS256 public op (s^65537 mod n)", iterations, || {
        black_box(fast.public_op(black_box(&signature))).is_some()
    });
    report("SHA-256 of the signing input", iterations * 10, || {
        black_box(Sha256::digest(black_box(input.as_bytes()))).len() == 32
    });
    let public = &keys.keys()[0].public;
    report("RS256 signature check", iterations, || {
        Alg::Rs256.verify(public, black_box(input.as_bytes()), black_box(&signature))
    });
}

fn cached<'a>(state: KeyState<'a>, cache: &'a mut TokenCache) -> Keys<'a> {
    Keys {
        state,
        cache: Some(cache),
    }
}

/// Prints the best of five timed batches (a shared machine only ever makes an op slower) and
/// the median.
fn report(name: &str, iterations: u32, mut op: impl FnMut() -> bool) {
    const BATCHES: u32 = 5;
    // Untimed first runs: V8 compiles with its baseline tier first and swaps in optimised code,
    // compiled in the background, once a function is hot.
    let warm_up = Instant::now();
    while warm_up.elapsed().as_millis() < 500 {
        black_box(op());
    }
    let per_batch = iterations.div_ceil(BATCHES);
    let mut ok = 0u32;
    let mut times: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                ok += u32::from(op());
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(per_batch)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let (best, median) = (times[0], times[times.len() / 2]);
    let status = if ok == per_batch * BATCHES {
        ""
    } else {
        "  (UNEXPECTED RESULTS)"
    };
    println!(
        "{name:<34} {best:>10.2} {median:>10.2} {:>12.0}{status}",
        1e6 / best
    );
}
