//! Writes the seed corpora into `fuzz/seeds/<target>/` (committed; libFuzzer grows `fuzz/corpus/`) from the same fixtures the unit tests
//! use: valid and near-valid tokens, the fixture JWKS, the fixed configs, and URLs.
//! Run with `cargo run --manifest-path fuzz/Cargo.toml --example gen-seeds` from the repo root.

use std::fs;
use std::path::Path;

use mcp_authn_fuzz::{AUTHORITY, config_variants, public_jwks, signer, valid_claims};
use serde_json::json;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("create corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let rsa = signer("rsa");
    let ec = signer("ec");
    let valid_rsa = rsa.mint(&valid_claims());
    let valid_ec = ec.mint(&valid_claims());
    let mut expired = valid_claims();
    expired["exp"] = json!(1);
    let expired = rsa.mint(&expired);
    let mut wrong_aud = valid_claims();
    wrong_aud["aud"] = json!(["https://other.example.com", 7]);
    let wrong_aud = ec.mint(&wrong_aud);
    let tokens = [&valid_rsa, &valid_ec, &expired, &wrong_aud];

    let token_dir = root.join("token");
    for (i, token) in tokens.iter().enumerate() {
        write(&token_dir, &format!("token-{i}"), token.as_bytes());
    }
    write(&token_dir, "bearer", format!("Bearer {valid_rsa}").as_bytes());

    let decide_dir = root.join("decide");
    let requests = [
        (0u8, 0u8, format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {valid_rsa}")),
        (0, 1, format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {wrong_aud}")),
        (1, 0, format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {valid_ec}\nx-user:root")),
        (2, 2, format!("GET\n/mcp\n{AUTHORITY}\nauthorization:Bearer {expired}")),
        (3, 0, format!("POST\n/mcp?token={valid_rsa}&x=1\n{AUTHORITY}")),
        (4, 0, format!("POST\n/mcp\n{AUTHORITY}\ncookie:a=b; session={valid_ec}")),
        (5, 0, format!("POST\n/mcp\n{AUTHORITY}\nx-token:Token {valid_rsa}")),
        (0, 0, format!("POST\n/mcp?access_token={valid_rsa}\n{AUTHORITY}")),
        (0, 0, format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer a\nauthorization:Bearer b")),
        (0, 3, format!("GET\n/.well-known/oauth-protected-resource/mcp\n{AUTHORITY}")),
        (2, 0, format!("GET\n/.well-known/openid-configuration/x\n{AUTHORITY}\nx-forwarded-proto:http")),
    ];
    for (i, (config, keys, text)) in requests.iter().enumerate() {
        let mut bytes = vec![*config, *keys];
        bytes.extend_from_slice(text.as_bytes());
        write(&decide_dir, &format!("request-{i}"), &bytes);
    }

    let jwks_dir = root.join("jwks");
    write(&jwks_dir, "fixture", public_jwks().to_string().as_bytes());
    let mut small = public_jwks();
    small["keys"][0] = signer("rsa_small").public_jwk();
    write(&jwks_dir, "with-small-rsa", small.to_string().as_bytes());
    let odd = json!({"keys": [{"kty": "oct", "k": "AAAA"}, {"kty": "EC", "crv": "P-384"},
                             {"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "enc"}]});
    write(&jwks_dir, "odd-keys", odd.to_string().as_bytes());

    let config_dir = root.join("config");
    for (i, config) in config_variants().iter().enumerate() {
        write(&config_dir, &format!("config-{i}"), config.to_string().as_bytes());
    }
    let remote = json!({"issuer": "https://kc.example.com/realms/mcp", "provider": {"keycloak": {}},
        "jwks": {"cluster": "kc", "timeoutMs": 1000, "cacheDurationSeconds": 60,
                 "minRefreshIntervalSeconds": 1},
        "resourceMetadata": {"resource": "https://mcp.example.com/mcp",
                             "scopesSupported": ["mcp:read", "mcp:write"], "resourceName": "x"},
        "jwtValidationOptions": {"requiredClaims": ["exp", "sub"], "clockSkewSeconds": 30,
                                 "maxTokenBytes": 4096},
        "mode": "Optional", "clientId": "mcp"});
    write(&config_dir, "remote", remote.to_string().as_bytes());

    let url_dir = root.join("url_metadata");
    let urls: [(u8, &str); 4] = [
        (3, "https://mcp.example.com/mcp\0mcp.example.com\0/mcp\0mcp:read mcp:write\0https"),
        (2, "http://127.0.0.1:8080?a=b\0evil\"host\0/x y\"\0mcp:read\0http"),
        (12, "HTTPS://Gw.Example.com:443/base/path?q=1\0gw\0/.well-known/oauth-protected-resource/a\0s\0javascript"),
        (1, "https://user@h/#frag\0h\0/\0\0"),
    ];
    for (i, (flags, text)) in urls.iter().enumerate() {
        let mut bytes = vec![*flags];
        bytes.extend_from_slice(text.as_bytes());
        write(&url_dir, &format!("url-{i}"), &bytes);
    }
    println!("seeds written to {}", root.display());
}
