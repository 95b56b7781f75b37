//! Writes the seed corpora into `fuzz/seeds/<target>/` (committed; libFuzzer grows `fuzz/corpus/`) from the same fixtures the unit tests
//! use: valid and near-valid tokens, the fixture JWKS, the fixed configs, and URLs.
//! Run with `cargo run --manifest-path fuzz/Cargo.toml --example gen-seeds` from the repo root.

use std::fs;
use std::path::Path;

use mcp_authn::core::alg::Alg;
use mcp_authn_fuzz::{AUTHORITY, NOW, config_variants, public_jwks, signer, valid_claims};
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
    // Validly signed tokens that each break exactly one rule (`rule-*`), so a filter that
    // dropped that rule accepts the seed itself and the oracle (src/oracle.rs) fails at once;
    // and valid ones in the other accepted forms (`valid-*`).
    let broken = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = valid_claims();
        f(&mut claims);
        claims
    };
    let header = |alg: Alg, kid: &str, extra: serde_json::Value| {
        let mut h = json!({"alg": alg.name(), "typ": "JWT", "kid": kid});
        for (k, v) in extra.as_object().expect("object") {
            h[k] = v.clone();
        }
        h
    };
    let sign = |key: &mcp_authn::sign::SigningKey,
                h: serde_json::Value,
                claims: serde_json::Value,
                alg: Alg| { key.sign_raw(&h, claims.to_string().as_bytes(), alg) };
    let rule_breakers = [
        (
            "rule-expired",
            rsa.mint(&broken(&|c| c["exp"] = json!(NOW - 3600))),
        ),
        (
            "rule-expired-at-skew",
            rsa.mint(&broken(&|c| c["exp"] = json!(NOW - 61))),
        ),
        (
            "rule-not-yet-valid",
            ec.mint(&broken(&|c| c["nbf"] = json!(NOW + 3600))),
        ),
        (
            "rule-wrong-aud",
            rsa.mint(&broken(&|c| {
                c["aud"] = json!("https://other.example.com/mcp")
            })),
        ),
        (
            "rule-aud-number",
            rsa.mint(&broken(&|c| c["aud"] = json!(7))),
        ),
        (
            "rule-wrong-iss",
            ec.mint(&broken(&|c| c["iss"] = json!("https://idp.example.com/"))),
        ),
        (
            "rule-no-exp",
            rsa.mint(&broken(&|c| {
                c.as_object_mut().expect("object").remove("exp");
            })),
        ),
        (
            "rule-exp-string",
            rsa.mint(&broken(&|c| c["exp"] = json!("9999999999"))),
        ),
        (
            "valid-rs384",
            sign(
                &rsa,
                header(Alg::Rs384, "rsa-1", json!({})),
                valid_claims(),
                Alg::Rs384,
            ),
        ),
        (
            "valid-ps256",
            sign(
                &rsa,
                header(Alg::Ps256, "rsa-1", json!({})),
                valid_claims(),
                Alg::Ps256,
            ),
        ),
        (
            "rule-crit",
            sign(
                &rsa,
                header(Alg::Rs256, "rsa-1", json!({"crit": ["exp"], "exp": 1})),
                valid_claims(),
                Alg::Rs256,
            ),
        ),
        (
            "rule-b64-false",
            sign(
                &rsa,
                header(Alg::Rs256, "rsa-1", json!({"b64": false})),
                valid_claims(),
                Alg::Rs256,
            ),
        ),
        (
            "rule-other-key-same-kid",
            sign(
                &signer("rsa2"),
                header(Alg::Rs256, "rsa-1", json!({})),
                valid_claims(),
                Alg::Rs256,
            ),
        ),
        (
            "valid-no-kid",
            sign(&ec, json!({"alg": "ES256"}), valid_claims(), Alg::Es256),
        ),
    ];
    for (name, token) in &rule_breakers {
        write(&token_dir, name, token.as_bytes());
    }
    write(
        &token_dir,
        "bearer",
        format!("Bearer {valid_rsa}").as_bytes(),
    );

    let decide_dir = root.join("decide");
    let requests = [
        (
            0u8,
            0u8,
            format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {valid_rsa}"),
        ),
        (
            0,
            1,
            format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {wrong_aud}"),
        ),
        (
            1,
            0,
            format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {valid_ec}\nx-user:root"),
        ),
        (
            2,
            2,
            format!("GET\n/mcp\n{AUTHORITY}\nauthorization:Bearer {expired}"),
        ),
        (
            3,
            0,
            format!("POST\n/mcp?token={valid_rsa}&x=1\n{AUTHORITY}"),
        ),
        (
            4,
            0,
            format!("POST\n/mcp\n{AUTHORITY}\ncookie:a=b; session={valid_ec}"),
        ),
        (
            5,
            0,
            format!("POST\n/mcp\n{AUTHORITY}\nx-token:Token {valid_rsa}"),
        ),
        (
            0,
            0,
            format!("POST\n/mcp?access_token={valid_rsa}\n{AUTHORITY}"),
        ),
        (
            0,
            0,
            format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer a\nauthorization:Bearer b"),
        ),
        (
            0,
            3,
            format!("GET\n/.well-known/oauth-protected-resource/mcp\n{AUTHORITY}"),
        ),
        (
            2,
            0,
            format!(
                "GET\n/.well-known/openid-configuration/x\n{AUTHORITY}\nx-forwarded-proto:http"
            ),
        ),
    ];
    let mut requests = requests.to_vec();
    for (i, (_, token)) in rule_breakers.iter().enumerate() {
        let config = u8::try_from(i % 6).expect("small");
        let text = match config {
            3 => format!("POST\n/mcp?token={token}\n{AUTHORITY}"),
            4 => format!("POST\n/mcp\n{AUTHORITY}\ncookie:session={token}"),
            5 => format!("POST\n/mcp\n{AUTHORITY}\nx-token:Token {token}"),
            _ => format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {token}"),
        };
        requests.push((config, 0, text));
    }
    requests.push((
        6,
        0,
        format!("GET\n/.well-known/oauth-authorization-server/mcp\n{AUTHORITY}"),
    ));
    requests.push((
        6,
        0,
        format!("POST\n/mcp\n{AUTHORITY}\nauthorization:Bearer {valid_rsa}\nx-user:root"),
    ));
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
        write(
            &config_dir,
            &format!("config-{i}"),
            config.to_string().as_bytes(),
        );
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
        (
            3,
            "https://mcp.example.com/mcp\0mcp.example.com\0/mcp\0mcp:read mcp:write\0https",
        ),
        (
            2,
            "http://127.0.0.1:8080?a=b\0evil\"host\0/x y\"\0mcp:read\0http",
        ),
        (
            12,
            "HTTPS://Gw.Example.com:443/base/path?q=1\0gw\0/.well-known/oauth-protected-resource/a\0s\0javascript",
        ),
        (1, "https://user@h/#frag\0h\0/\0\0"),
    ];
    for (i, (flags, text)) in urls.iter().enumerate() {
        let mut bytes = vec![*flags];
        bytes.extend_from_slice(text.as_bytes());
        write(&url_dir, &format!("url-{i}"), &bytes);
    }
    // mcpAuthorization: request bodies (with a list answer after 0xFF) and SSE streams.
    let tools = json!({"tools": [{"name": "echo"}, {"name": "list_files"}, {"name": "delete_file"},
                                 {"name": "system_status"}, {"description": "no name"}]});
    let answer = json!({"jsonrpc": "2.0", "id": 1, "result": tools}).to_string();
    let jsonrpc_dir = root.join("jsonrpc");
    let bodies: [(u8, &str, bool); 8] = [
        (
            0,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#,
            false,
        ),
        (
            0,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_file"}}"#,
            false,
        ),
        (
            2,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"greet"}}]"#,
            false,
        ),
        (
            1,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"list_files"}}"#,
            false,
        ),
        (
            0,
            r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///x"}}"#,
            false,
        ),
        (
            0,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"ech\u006f","name":"x"}}"#,
            false,
        ),
        (1, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, true),
        (
            2,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":"p","method":"prompts/list"}]"#,
            true,
        ),
    ];
    for (i, (caller, body, with_answer)) in bodies.iter().enumerate() {
        let mut bytes = vec![*caller];
        bytes.extend_from_slice(body.as_bytes());
        if *with_answer {
            bytes.push(0xFF);
            bytes.extend_from_slice(answer.as_bytes());
        }
        write(&jsonrpc_dir, &format!("body-{i}"), &bytes);
    }
    let sse_dir = root.join("sse");
    let streams = [
        format!("data: {answer}\n\n"),
        format!(
            "event: message\r\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}}\r\n\r\nid: 7\r\ndata: {answer}\r\n\r\n"
        ),
        format!(": comment\n\ndata: [{answer}]\n\ndata: {answer}\n\n"),
        format!("data: {}\ndata: {}\n\n", &answer[..20], &answer[20..]),
        format!("data: {}\n\ndata: {answer}\n\n", "x".repeat(1500)),
    ];
    for (i, stream) in streams.iter().enumerate() {
        let mut bytes = vec![u8::try_from(i).expect("small"), 13];
        bytes.extend_from_slice(stream.as_bytes());
        write(&sse_dir, &format!("stream-{i}"), &bytes);
    }
    // The differential targets: every mode and mutation once, with fixed pseudo-random bytes.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    };
    let rsa_dir = root.join("rsa_diff");
    for (i, len) in [2u16, 5, 64, 256, 384, 512].into_iter().enumerate() {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&(len - 2).to_be_bytes());
        bytes.extend(noise(2 * usize::from(len)));
        write(&rsa_dir, &format!("public-op-{i}"), &bytes);
    }
    // [mode 1, fixture, hash, message (high bit: verify over the trailing bytes instead),
    //  mutation, position, value, trailing bytes]
    for mutation in 0u8..10 {
        let trailing = usize::from(mutation) * 13;
        for (name, pick, len) in [
            ("pkcs1", mutation, 40),
            ("pkcs1-other-message", 0x80 | mutation, trailing),
        ] {
            let mut bytes = vec![1, mutation, mutation % 3, pick, mutation, 17, 0x80];
            bytes.extend(noise(len));
            write(&rsa_dir, &format!("{name}-{mutation}"), &bytes);
        }
    }
    let es_dir = root.join("es256_diff");
    for mutation in 0u8..13 {
        let mut bytes = vec![mutation, 5, 3];
        bytes.extend(noise(128));
        write(&es_dir, &format!("mutation-{mutation}"), &bytes);
    }
    println!("seeds written to {}", root.display());
}
