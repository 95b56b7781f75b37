//! Cost of the per-request core work on the hot paths (cached token, no token), natively or in
//! V8: `cargo run --release --example request_cost`, or
//! `cargo build --release --target wasm32-wasip1 --features sign --example request_cost` and
//! `node scripts/wasi-run.mjs target/wasm32-wasip1/release/examples/request_cost.wasm` (the
//! `sign` feature mints the token in a wasm release build, as for `verify_cost`). Prints the
//! best of 20 batches per case, asserts nothing.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // benchmark driver, not filter code

use std::hint::black_box;
use std::time::Instant;

use mcp_authn::core::config::KeySource;
use mcp_authn::core::decision::KeyState;
use mcp_authn::core::request::Request;
use mcp_authn::core::servers::{Plugin, TokenCaches};
use mcp_authn::sign::SigningKey;
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";

fn main() {
    let fixtures: Value =
        serde_json::from_str(include_str!("../tests/fixtures/keys.json")).unwrap_or_default();
    let Ok(rsa) = SigningKey::from_jwk(&fixtures["rsa"]) else {
        eprintln!("tests/fixtures/keys.json is unreadable");
        return;
    };
    let token = rsa.mint(&json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench",
        "exp": NOW + 3600, "scope": "mcp:tools", "email": "bench@example.com"}));
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let public = json!({"keys": [rsa.public_jwk()]});
    let config = json!({"issuer": ISSUER, "jwks": {"inline": public},
                        "resourceMetadata": {"resource": AUDIENCE}});
    let plugin = match Plugin::from_json(config.to_string().as_bytes()) {
        Ok(plugin) => plugin,
        Err(err) => {
            eprintln!("config: {err}");
            return;
        }
    };
    let request = |authorization: Option<&str>| Request {
        method: "GET".into(),
        path: "/mcp".into(),
        scheme: "http".into(),
        authority: "127.0.0.1:10000".into(),
        headers: [("user-agent", "wrk"), ("accept", "*/*")]
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .chain(authorization.map(|a| ("authorization".into(), a.to_string())))
            .collect(),
    };
    let bearer = format!("Bearer {token}");
    for (name, request) in [
        ("cached token", request(Some(&bearer))),
        ("no token (401)", request(None)),
    ] {
        measure(name, &plugin, &request, iterations);
    }
}

/// Select + decide, as the host calls them per request (the first call fills the cache).
fn measure(name: &str, plugin: &Plugin, request: &Request, iterations: u32) {
    let Ok(target) = plugin.select(request, None) else {
        eprintln!("{name}: not selected");
        return;
    };
    let Some(KeySource::Inline(keys)) = plugin.config(target).map(|c| &c.keys) else {
        return;
    };
    let mut caches = TokenCaches::new(plugin);
    let ready = || KeyState::Ready {
        keys,
        may_refetch: false,
    };
    let first = plugin.decide(target, request, ready(), &mut caches, NOW);
    // The best of 20 batches: on a shared machine the minimum is the stable figure.
    let batch = (iterations / 20).max(1);
    let ns = (0..20)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..batch {
                if let Ok(target) = plugin.select(black_box(request), None) {
                    let _ = black_box(plugin.decide(target, request, ready(), &mut caches, NOW));
                }
            }
            started.elapsed().as_nanos() / u128::from(batch)
        })
        .min()
        .unwrap_or(0);
    let kind = format!("{first:?}");
    let kind = kind.split([' ', '(', '{']).next().unwrap_or("");
    println!("{name:<20} {ns:>8} ns/decision ({kind})");
}
