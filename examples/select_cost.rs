//! Native cost of choosing the server (and issuer) for a request, with 1, 10 and 100 servers in
//! the config: `cargo run --release --example select_cost [iterations]`. Prints numbers,
//! asserts nothing (the unit tests in core/servers/tests.rs check the answers).
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // benchmark driver, not filter code

use std::hint::black_box;
use std::time::Instant;

use mcp_authn::core::config::KeySource;
use mcp_authn::core::decision::KeyState;
use mcp_authn::core::request::Request;
use mcp_authn::core::servers::{Plugin, TokenCaches};
use mcp_authn::sign::SigningKey;
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.example.com";
const OTHER: &str = "https://login.example.org";

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let fixtures: Value =
        serde_json::from_str(include_str!("../tests/fixtures/keys.json")).unwrap_or_default();
    let Ok(rsa) = SigningKey::from_jwk(&fixtures["rsa"]) else {
        eprintln!("tests/fixtures/keys.json is unreadable");
        return;
    };
    let jwks = json!({"keys": [rsa.public_jwk()]});
    let now = 1_700_000_000_u64;
    let token = |iss: &str, aud: &str| {
        rsa.mint(&json!({"iss": iss, "aud": aud, "sub": "bench", "exp": now + 3600}))
    };
    println!(
        "{:<52} {:>10} {:>14}",
        "case (request to the last server)", "ns/select", "ns/decision"
    );
    let single = json!({"issuer": ISSUER, "jwks": {"inline": jwks},
                        "resourceMetadata": {"resource": "https://mcp.example.com/mcp"}});
    let request = |path: &str, token: &str| Request {
        method: "POST".into(),
        path: path.into(),
        scheme: "https".into(),
        authority: "mcp.example.com".into(),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
    };
    measure(
        "single-server shape",
        &single,
        &request("/mcp", &token(ISSUER, "https://mcp.example.com/mcp")),
        iterations,
        now,
    );
    for count in [1_usize, 10, 100] {
        let servers: Vec<Value> = (0..count)
            .map(|i| {
                json!({"name": format!("s{i}"),
                       "match": {"hosts": ["mcp.example.com"], "pathPrefix": format!("/s{i}")},
                       "issuer": ISSUER, "jwks": {"inline": jwks},
                       "resourceMetadata": {"resource": format!("https://mcp.example.com/s{i}/mcp")}})
            })
            .collect();
        let last = count - 1;
        let aud = format!("https://mcp.example.com/s{last}/mcp");
        measure(
            &format!("{count} servers, one issuer each"),
            &json!({"servers": servers}),
            &request(&format!("/s{last}/mcp"), &token(ISSUER, &aud)),
            iterations,
            now,
        );
        let mut two = servers.clone();
        two[last] = json!({"name": format!("s{last}"),
            "match": {"hosts": ["mcp.example.com"], "pathPrefix": format!("/s{last}")},
            "issuers": [{"issuer": ISSUER, "jwks": {"inline": jwks}},
                        {"issuer": OTHER, "jwks": {"inline": jwks}}],
            "resourceMetadata": {"resource": aud}});
        measure(
            &format!("{count} servers, the last with two issuers (2nd)"),
            &json!({"servers": two}),
            &request(&format!("/s{last}/mcp"), &token(OTHER, &aud)),
            iterations,
            now,
        );
    }
}

/// Prints the cost of `Plugin::select` alone, and of select + the cached decision.
fn measure(name: &str, config: &Value, request: &Request, iterations: u32, now: u64) {
    let plugin = match Plugin::from_json(config.to_string().as_bytes()) {
        Ok(plugin) => plugin,
        Err(err) => {
            eprintln!("{name}: {err}");
            return;
        }
    };
    let Ok(target) = plugin.select(request, None) else {
        eprintln!("{name}: not selected");
        return;
    };
    let started = Instant::now();
    for _ in 0..iterations {
        let _ = black_box(plugin.select(black_box(request), None));
    }
    let select_ns = started.elapsed().as_nanos() / u128::from(iterations);
    let Some(KeySource::Inline(keys)) = plugin.config(target).map(|c| &c.keys) else {
        return;
    };
    let mut caches = TokenCaches::new(&plugin);
    let ready = || KeyState::Ready {
        keys,
        may_refetch: false,
    };
    // The first decision verifies and fills the cache; the loop measures cached decisions.
    let _ = plugin.decide(target, request, ready(), &mut caches, now);
    let started = Instant::now();
    for _ in 0..iterations {
        if let Ok(target) = plugin.select(black_box(request), None) {
            let _ = black_box(plugin.decide(target, request, ready(), &mut caches, now));
        }
    }
    let decision_ns = started.elapsed().as_nanos() / u128::from(iterations);
    println!("{name:<52} {select_ns:>10} {decision_ns:>14}");
}
