//! The `mcp-authn` checker binary, driven the way an operator would: temp files in, exit codes
//! and output checked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_authn::core::alg::Alg;
use mcp_authn::sign::SigningKey;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-authn");
const KEYS: &str = include_str!("fixtures/keys.json");
const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";
/// The `--now` every verification uses; tokens expire in 2100.
const NOW: u64 = 1_700_000_000;
const FAR_FUTURE: u64 = 4_102_444_800;

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("mcp-authn-checker-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path.to_str().expect("utf-8 temp path").to_string()
    }

    /// The private JWK `key` of the fixtures, as a file.
    fn private_key(&self, key: &str) -> String {
        let keys: Value = serde_json::from_str(KEYS).unwrap();
        self.write(&format!("{key}.json"), keys[key].to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run mcp-authn")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn signer(key: &str) -> SigningKey {
    let keys: Value = serde_json::from_str(KEYS).unwrap();
    SigningKey::from_jwk(&keys[key]).unwrap()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn good_claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": FAR_FUTURE})
}

/// A scratch dir with `rsa.json` (private), `jwks.json` (from the `jwks` command) and
/// `config.json` (remote JWKS, so `--jwks` is needed).
struct Setup {
    dir: Scratch,
    key: String,
    jwks: String,
    config: String,
}

fn setup(name: &str) -> Setup {
    let dir = Scratch::new(name);
    let key = dir.private_key("rsa");
    let out = run(&["jwks", "--key", &key]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let published: Value = serde_json::from_str(&stdout(&out)).expect("jwks prints JSON");
    assert_eq!(published["keys"][0]["kid"], "rsa-1");
    assert!(
        published["keys"][0].get("d").is_none(),
        "private member leaked"
    );
    let jwks = dir.write("jwks.json", stdout(&out));
    let config = dir.write(
        "config.json",
        json!({
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "jwks": {"url": "https://idp.example.com/jwks", "cluster": "idp"}
        })
        .to_string(),
    );
    Setup {
        dir,
        key,
        jwks,
        config,
    }
}

fn mint(setup: &Setup, claims: &Value) -> String {
    let out = run(&["mint", "--key", &setup.key, "--claims", &claims.to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn verify(setup: &Setup, token: &str) -> Output {
    run(&[
        "verify",
        "--config",
        &setup.config,
        "--jwks",
        &setup.jwks,
        "--token",
        token,
        "--now",
        &NOW.to_string(),
    ])
}

#[test]
fn check_config_accepts_a_good_config_and_prints_it_normalised() {
    let dir = Scratch::new("check-good");
    let config = dir.write(
        "config.json",
        json!({
            "issuer": ISSUER,
            "jwks": {"cluster": "idp"},
            "resourceMetadata": {"resource": AUDIENCE},
            "mode": "Optional"
        })
        .to_string(),
    );
    let out = run(&["check-config", &config]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let normalised: Value = serde_json::from_str(&stdout(&out)).expect("prints JSON");
    assert_eq!(normalised["issuer"], ISSUER);
    assert_eq!(normalised["audiences"], json!([AUDIENCE]));
    assert_eq!(normalised["mode"], "optional");
    assert_eq!(
        normalised["jwks"]["url"],
        "https://idp.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        normalised["jwtValidationOptions"]["requiredClaims"],
        json!(["exp"])
    );
}

#[test]
fn check_config_reports_inline_key_counts_and_warnings() {
    let dir = Scratch::new("check-inline");
    let keys: Value = serde_json::from_str(KEYS).unwrap();
    let small = SigningKey::from_jwk(&keys["rsa_small"])
        .unwrap()
        .public_jwk();
    let config = dir.write(
        "config.json",
        json!({
            "issuer": ISSUER,
            "audiences": [],
            "jwks": {"inline": {"keys": [signer("rsa").public_jwk(), small]}}
        })
        .to_string(),
    );
    let out = run(&["check-config", &config]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let normalised: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        normalised["jwks"]["inline"],
        json!({"usableKeys": 1, "skippedKeys": 1})
    );
    let err = stderr(&out);
    assert!(
        err.contains("warning: audiences: [] disables the audience check"),
        "{err}"
    );
    assert!(
        err.contains("RSA modulus of 1024 bits is under 2048"),
        "{err}"
    );
}

#[test]
fn check_config_warns_what_trusting_the_server_header_validation_leaves_to_the_server() {
    let dir = Scratch::new("check-trust");
    let config = |trust: Value| {
        json!({
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "jwks": {"url": "https://idp.example.com/jwks", "cluster": "idp"},
            "mcpAuthorization": {"rules": ["mcp.tool.name == \"echo\""], "trustServerHeaderValidation": trust}
        })
        .to_string()
    };
    let on = run(&["check-config", &dir.write("on.json", config(json!(true)))]);
    assert_eq!(code(&on), 0, "{}", stderr(&on));
    let err = stderr(&on);
    assert!(
        err.contains("warning: mcpAuthorization.trustServerHeaderValidation: a 2026-07-28 call"),
        "{err}"
    );
    assert!(err.contains("envoy.filters.http.buffer"), "{err}");
    let off = run(&["check-config", &dir.write("off.json", config(json!(false)))]);
    assert!(!stderr(&off).contains("trustServerHeaderValidation"));
    let bad = run(&["check-config", &dir.write("bad.json", config(json!("yes")))]);
    assert_ne!(code(&bad), 0);
    assert!(
        stderr(&bad).contains("mcpAuthorization.trustServerHeaderValidation"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn check_config_names_the_bad_field() {
    let dir = Scratch::new("check-bad");
    let cases = [
        (
            json!({"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"url": "idp/jwks", "cluster": "idp"}}),
            "jwks.url: not an absolute http(s) URL",
        ),
        (
            json!({"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"cluster": "idp"}, "mdoe": "strict"}),
            "mdoe: unknown field `mdoe`",
        ),
        (
            json!({"issuer": ISSUER, "jwks": {"cluster": "idp"}}),
            "audiences: required",
        ),
    ];
    for (i, (config, expected)) in cases.into_iter().enumerate() {
        let path = dir.write(&format!("bad{i}.json"), config.to_string());
        let out = run(&["check-config", &path]);
        assert_eq!(code(&out), 2, "{config}");
        assert!(stdout(&out).is_empty());
        let err = stderr(&out);
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
    }
    let out = run(&[
        "check-config",
        &dir.0.join("missing.json").to_string_lossy(),
    ]);
    assert_eq!(code(&out), 2);
}

#[test]
fn check_config_takes_many_servers_and_issuers_and_names_the_bad_server() {
    let dir = Scratch::new("check-servers");
    let servers = json!({
        "servers": [
            {"name": "files", "match": {"hosts": ["MCP.example.com"], "pathPrefix": "/files/"},
             "issuer": ISSUER, "jwks": {"cluster": "idp"},
             "resourceMetadata": {"resource": "https://mcp.example.com/files/mcp"}},
            {"name": "search", "match": {"pathPrefix": "/search"},
             "issuers": [
                 {"issuer": "https://kc.example.com/realms/b", "jwks": {"cluster": "kc"}},
                 {"issuer": ISSUER, "jwks": {"cluster": "idp"},
                  "jwtValidationOptions": {"requiredClaims": ["exp", "sub"]}}
             ],
             "resourceMetadata": {"resource": "https://mcp.example.com/search/mcp"}}
        ],
        "unmatched": "pass"
    });
    let config = dir.write("servers.json", servers.to_string());
    let out = run(&["check-config", &config]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let normalised: Value = serde_json::from_str(&stdout(&out)).expect("prints JSON");
    assert_eq!(normalised["unmatched"], "pass");
    assert_eq!(normalised["serverSelection"], "match");
    let files = &normalised["servers"][0];
    assert_eq!(files["name"], "files");
    assert_eq!(
        files["match"],
        json!({"hosts": ["mcp.example.com"], "pathPrefix": "/files"})
    );
    let search = &normalised["servers"][1]["issuers"];
    assert_eq!(search[0]["issuer"], "https://kc.example.com/realms/b");
    assert_eq!(search[1]["issuer"], ISSUER);
    assert_eq!(
        search[1]["jwtValidationOptions"]["requiredClaims"],
        json!(["exp", "sub"])
    );
    assert_eq!(
        search[0]["audiences"],
        json!(["https://mcp.example.com/search/mcp"])
    );
    let mut overlapping = servers.clone();
    overlapping["servers"][1]["match"]["pathPrefix"] = json!("/files/x");
    let mut bad_url = servers;
    bad_url["servers"][1]["issuers"][0]["jwks"]["url"] = json!("kc/certs");
    for (i, (config, expected)) in [
        (
            overlapping,
            "servers[1].match: servers[1] (\"search\") and servers[0] (\"files\")",
        ),
        (
            bad_url,
            "servers[1].issuers[0].jwks.url: not an absolute http(s) URL",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.write(&format!("bad{i}.json"), config.to_string());
        let out = run(&["check-config", &path]);
        assert_eq!(code(&out), 2);
        assert!(
            stderr(&out).contains(expected),
            "{expected:?} not in {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_minted_token_verifies() {
    let setup = setup("verify-ok");
    let token = mint(&setup, &good_claims());
    let out = verify(&setup, &token);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("accepted: sub=alice"),
        "{}",
        stdout(&out)
    );
    // The token can come from a file, and inline keys need no --jwks.
    let token_file = setup.dir.write("token.txt", format!("{token}\n"));
    let inline_config = setup.dir.write(
        "inline.json",
        json!({
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "jwks": {"inline": std::fs::read_to_string(&setup.jwks).unwrap().trim()},
            "claimsToHeaders": [{"claim": "sub", "header": "x-user"}]
        })
        .to_string(),
    );
    let out = run(&[
        "verify",
        "--config",
        &inline_config,
        "--token",
        &format!("@{token_file}"),
        "--now",
        &NOW.to_string(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out),
        "accepted: sub=alice\n  upstream header x-user: alice\n"
    );
}

#[test]
fn mint_fills_in_iat_and_exp() {
    let setup = setup("mint-defaults");
    let token = mint(
        &setup,
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bob"}),
    );
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let iat = claims["iat"].as_u64().expect("iat set");
    assert_eq!(claims["exp"].as_u64(), Some(iat + 3600));
    // Verified against the real clock (no --now) it is accepted.
    let out = run(&[
        "verify",
        "--config",
        &setup.config,
        "--jwks",
        &setup.jwks,
        "--token",
        &token,
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn a_wrong_audience_is_rejected_with_the_reason() {
    let setup = setup("verify-aud");
    let mut claims = good_claims();
    claims["aud"] = json!("https://other.example.com");
    let out = verify(&setup, &mint(&setup, &claims));
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains("rejected: aud mismatch (token aud=[\"https://other.example.com\"]"),
        "{text}"
    );
    assert!(text.contains("status 401"), "{text}");
    assert!(
        text.contains(r#"error="invalid_token", error_description="audience mismatch""#),
        "{text}"
    );
}

#[test]
fn hostile_tokens_are_rejected_with_the_right_reason() {
    let setup = setup("verify-hostile");
    let payload = good_claims().to_string();
    let expired = {
        let mut claims = good_claims();
        claims["exp"] = json!(NOW - 3600);
        mint(&setup, &claims)
    };
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&payload)
    );
    let hs256 = {
        use jwt_compact::alg::{Hs256, Hs256Key};
        use jwt_compact::{Algorithm, AlgorithmSignature};
        let secret = std::fs::read(&setup.jwks).unwrap();
        let input = format!(
            "{}.{}",
            b64(r#"{"alg":"HS256","kid":"rsa-1"}"#),
            b64(&payload)
        );
        let mac = Hs256.sign(&Hs256Key::new(&secret), input.as_bytes());
        format!("{input}.{}", b64(mac.as_bytes()))
    };
    let embedded_jwk = {
        let attacker = signer("rsa2");
        let mut jwk = attacker.public_jwk();
        jwk["kid"] = json!("rsa-1");
        attacker.sign_raw(
            &json!({"alg": "RS256", "kid": "rsa-1", "jwk": jwk}),
            payload.as_bytes(),
            Alg::Rs256,
        )
    };
    let cases = [
        (
            expired,
            format!("rejected: expired (exp={}, now={NOW})", NOW - 3600),
        ),
        (none, "rejected: alg \"none\" is not allowed".to_string()),
        (hs256, "rejected: alg \"HS256\" is not allowed".to_string()),
        (
            embedded_jwk,
            "rejected: signature does not verify".to_string(),
        ),
        ("x.y".to_string(), "rejected: malformed token".to_string()),
    ];
    for (token, expected) in cases {
        let out = verify(&setup, &token);
        assert_eq!(code(&out), 1, "{expected}: {}", stdout(&out));
        assert!(
            stdout(&out).starts_with(&expected),
            "{expected:?} vs {:?}",
            stdout(&out)
        );
    }
}

#[test]
fn bad_invocations_exit_2() {
    let setup = setup("usage");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "usage:"),
        (vec!["frobnicate"], "usage:"),
        (vec!["check-config"], "usage:"),
        (vec!["verify"], "--config is required"),
        (
            vec!["verify", "--config", &setup.config, "--jwks", &setup.jwks],
            "--token is required",
        ),
        (
            vec!["verify", "--config", &setup.config, "--token", "a.b.c"],
            "pass --jwks FILE",
        ),
        (
            vec![
                "verify",
                "--config",
                &setup.config,
                "--jwks",
                &setup.jwks,
                "--token",
                "a.b.c",
                "--now",
                "yesterday",
            ],
            "--now: not a number of seconds",
        ),
        (vec!["mint", "--key", &setup.key], "--claims is required"),
        (vec!["mint", "--claims", "{}"], "--key is required"),
        (
            vec!["mint", "--key", &setup.key, "--claims", "[1]"],
            "--claims must be a JSON object",
        ),
        (vec!["mint", "--key", &setup.key, "--claims", "{"], "error:"),
        (vec!["jwks"], "--key is required"),
        (
            vec!["jwks", "--key", &setup.config],
            "unsupported private key type",
        ),
    ];
    for (args, expected) in cases {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{args:?}: {expected:?} not in {err:?}"
        );
    }
    assert!(Path::new(&setup.key).exists());
}
