//! Native cost per verification, through the same core the filter runs:
//! `cargo run --release --example verify_cost [iterations]`. Prints numbers, asserts nothing.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // benchmark driver, not filter code

use std::hint::black_box;
use std::time::Instant;

use mcp_authn::core::alg::Verifier;
use mcp_authn::core::config::{Config, KeySource};
use mcp_authn::core::decision::{KeyState, Keys, decide};
use mcp_authn::core::jwks::{KeyPolicy, KeySet};
use mcp_authn::core::request::Request;
use mcp_authn::core::token_cache::TokenCache;
use mcp_authn::core::verify::ClaimRules;
use mcp_authn::core::verify::verify;
use mcp_authn::sign::SigningKey;
use serde_json::{Value, json};

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
    println!("{:<34} {:>12} {:>14}", "case", "µs/op", "ops/s");
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

fn cached<'a>(state: KeyState<'a>, cache: &'a mut TokenCache) -> Keys<'a> {
    Keys {
        state,
        cache: Some(cache),
    }
}

fn report(name: &str, iterations: u32, mut op: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut ok = 0u32;
    for _ in 0..iterations {
        ok += u32::from(op());
    }
    let elapsed = start.elapsed();
    let per_op = elapsed.as_secs_f64() * 1e6 / f64::from(iterations);
    let status = if ok == iterations {
        ""
    } else {
        "  (UNEXPECTED RESULTS)"
    };
    println!("{name:<34} {per_op:>12.2} {:>14.0}{status}", 1e6 / per_op);
}
