use super::*;
use crate::core::config::KeySource;
use crate::core::testkit::{
    AUDIENCE, ISSUER, NOW, SUBJECT, claims, claims_with, jwks, keyset, mint,
};
use crate::core::token::InvalidRequest;
use serde_json::{Value, json};

const AUTHORITY: &str = "mcp.example.com";
const PRM_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// A config with inline RSA and EC keys plus the given top-level members.
fn config(extra: Value) -> Config {
    let mut raw = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": {"inline": jwks(&["rsa", "ec"])},
    });
    for (key, value) in extra.as_object().expect("extra members are an object") {
        raw[key] = value.clone();
    }
    Config::from_json(raw.to_string().as_bytes()).expect("test config is valid")
}

fn mode_config(mode: &str) -> Config {
    config(json!({ "mode": mode }))
}

fn inline_keys(config: &Config) -> &KeySet {
    match &config.keys {
        KeySource::Inline(set) => set,
        KeySource::Remote(_) => panic!("test configs use inline keys"),
    }
}

fn ready(config: &Config) -> KeyState<'_> {
    KeyState::Ready {
        keys: inline_keys(config),
        may_refetch: false,
    }
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        scheme: "https".into(),
        authority: AUTHORITY.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn post(headers: &[(&str, &str)]) -> Request {
    request("POST", "/mcp", headers)
}

fn with_token(token: &str) -> Request {
    post(&[("authorization", &format!("Bearer {token}"))])
}

fn valid_token() -> String {
    mint("rsa", &claims())
}

fn expired_token() -> String {
    mint("rsa", &claims_with("exp", Some(json!(NOW - 3600))))
}

fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn expect_reply(decision: Decision) -> (LocalReply, Outcome) {
    match decision {
        Decision::Respond { reply, outcome } => (reply, outcome),
        other => panic!("expected a local reply, got {other:?}"),
    }
}

fn expect_forward(decision: Decision) -> (HeaderEdits, Outcome) {
    match decision {
        Decision::Forward { edits, outcome, .. } => (edits, outcome),
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn removes(edits: &HeaderEdits, name: &str) -> bool {
    edits.remove.iter().any(|n| n == name)
}

// --- the mode table (spec section 4) -------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Presented {
    None,
    Expired,
    Garbage,
    Valid,
}

#[derive(Debug)]
enum Expect {
    Unauthorized,
    PassWithoutCredential,
    PassHeaderKept,
    PassCredentialRemoved,
}

#[test]
fn every_mode_handles_every_credential_as_the_spec_table_says() {
    use Expect as E;
    use Presented as C;
    let table = [
        ("strict", C::None, E::Unauthorized),
        ("strict", C::Expired, E::Unauthorized),
        ("strict", C::Garbage, E::Unauthorized),
        ("strict", C::Valid, E::PassCredentialRemoved),
        ("optional", C::None, E::PassWithoutCredential),
        ("optional", C::Expired, E::Unauthorized),
        ("optional", C::Garbage, E::Unauthorized),
        ("optional", C::Valid, E::PassCredentialRemoved),
        ("permissive", C::None, E::PassWithoutCredential),
        ("permissive", C::Expired, E::PassHeaderKept),
        ("permissive", C::Garbage, E::PassHeaderKept),
        ("permissive", C::Valid, E::PassCredentialRemoved),
    ];
    for (mode, credential, expected) in table {
        let config = mode_config(mode);
        let token = match credential {
            C::None => None,
            C::Expired => Some(expired_token()),
            C::Garbage => Some("not.a.jwt".to_string()),
            C::Valid => Some(valid_token()),
        };
        let req = match &token {
            Some(token) => with_token(token),
            None => post(&[]),
        };
        let case = format!("{mode} / {credential:?}");
        let decision = decide(&config, &req, ready(&config), NOW);
        match expected {
            E::Unauthorized => {
                let (reply, outcome) = expect_reply(decision);
                assert_eq!(reply.status, 401, "{case}");
                let challenge = header(&reply, "www-authenticate").unwrap();
                let Outcome::Denied(denial) = outcome else {
                    panic!("{case}: {outcome:?}")
                };
                if token.is_none() {
                    assert_eq!(denial, Denial::Missing, "{case}");
                    assert!(!challenge.contains("error="), "{case}: {challenge}");
                } else {
                    assert!(matches!(denial, Denial::Token(_)), "{case}");
                    assert!(
                        challenge.starts_with("Bearer error=\"invalid_token\""),
                        "{case}: {challenge}"
                    );
                }
            }
            E::PassWithoutCredential => {
                let (edits, outcome) = expect_forward(decision);
                assert_eq!(outcome, Outcome::Unauthenticated { denial: None }, "{case}");
                assert_eq!(edits, HeaderEdits::default(), "{case}");
            }
            E::PassHeaderKept => {
                let (edits, outcome) = expect_forward(decision);
                assert!(
                    matches!(
                        outcome,
                        Outcome::Unauthenticated {
                            denial: Some(Denial::Token(_))
                        }
                    ),
                    "{case}: {outcome:?}"
                );
                assert!(!removes(&edits, "authorization"), "{case}: {edits:?}");
                assert!(edits.set.is_empty(), "{case}");
            }
            E::PassCredentialRemoved => {
                let (edits, outcome) = expect_forward(decision);
                assert!(
                    matches!(&outcome, Outcome::Allowed { claims } if claims.subject() == Some(SUBJECT)),
                    "{case}: {outcome:?}"
                );
                assert_eq!(edits.remove, ["authorization"], "{case}");
            }
        }
    }
}

#[test]
fn missing_token_reply_is_exact() {
    let config = config(json!({
        "resourceMetadata": {"scopesSupported": ["mcp:read", "mcp:write"]}
    }));
    let (reply, outcome) = expect_reply(decide(&config, &post(&[]), ready(&config), NOW));
    assert_eq!(outcome, Outcome::Denied(Denial::Missing));
    assert_eq!(
        reply,
        LocalReply {
            status: 401,
            headers: vec![
                (
                    "www-authenticate".into(),
                    format!(r#"Bearer resource_metadata="{PRM_URL}", scope="mcp:read mcp:write""#)
                ),
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: r#"{"error":"unauthorized","error_description":"a bearer token is required"}"#
                .into(),
        }
    );
}

#[test]
fn invalid_token_reply_is_exact() {
    let config = mode_config("strict");
    let (reply, outcome) = expect_reply(decide(
        &config,
        &with_token(&expired_token()),
        ready(&config),
        NOW,
    ));
    assert_eq!(
        outcome,
        Outcome::Denied(Denial::Token(Rejection::Expired {
            exp: NOW as i64 - 3600,
            now: NOW
        }))
    );
    assert_eq!(reply.status, 401);
    assert_eq!(
        header(&reply, "www-authenticate"),
        Some(
            format!(
                r#"Bearer error="invalid_token", error_description="token expired", resource_metadata="{PRM_URL}""#
            )
            .as_str()
        )
    );
    assert_eq!(
        reply.body,
        r#"{"error":"invalid_token","error_description":"token expired"}"#
    );
}

#[test]
fn rejections_reach_the_client_as_invalid_token() {
    let config = mode_config("strict");
    let cases = [
        (
            mint("rsa", &claims_with("aud", Some(json!("other")))),
            "audience mismatch",
        ),
        (
            mint("rsa", &claims_with("iss", Some(json!("https://evil")))),
            "issuer mismatch",
        ),
        (mint("rsa2", &claims()), "no matching signing key"),
        ("a.b.c".to_string(), "malformed token"),
    ];
    for (token, description) in cases {
        let (reply, _) = expect_reply(decide(&config, &with_token(&token), ready(&config), NOW));
        assert_eq!(reply.status, 401);
        let challenge = header(&reply, "www-authenticate").unwrap();
        assert!(
            challenge.contains(&format!("error_description=\"{description}\"")),
            "{challenge}"
        );
    }
}

// --- keys ----------------------------------------------------------------------------

#[test]
fn a_request_without_a_token_never_asks_for_keys() {
    for mode in ["strict", "optional", "permissive"] {
        let config = mode_config(mode);
        for state in [
            KeyState::Missing { may_fetch: true },
            KeyState::Missing { may_fetch: false },
        ] {
            let decision = decide(&config, &post(&[]), state, NOW);
            assert!(
                !matches!(decision, Decision::Wait(Wait::FetchKeys { .. })),
                "{mode}: {decision:?}"
            );
            if mode == "strict" {
                let (reply, outcome) = expect_reply(decision);
                assert_eq!(reply.status, 401);
                assert_eq!(outcome, Outcome::Denied(Denial::Missing));
            }
        }
        // An invalid request (two credentials) does not either.
        let two = post(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        let decision = decide(&config, &two, KeyState::Missing { may_fetch: true }, NOW);
        assert!(
            !matches!(decision, Decision::Wait(Wait::FetchKeys { .. })),
            "{mode}"
        );
    }
}

#[test]
fn garbage_tokens_are_refused_without_waiting_for_keys() {
    let config = mode_config("strict");
    for token in ["abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        let (reply, outcome) = expect_reply(decide(
            &config,
            &with_token(token),
            KeyState::Missing { may_fetch: true },
            NOW,
        ));
        assert_eq!(reply.status, 401, "{token}");
        assert!(
            matches!(outcome, Outcome::Denied(Denial::Token(ref r)) if r.metric() == Metric::DeniedMalformed || r.metric() == Metric::DeniedUnsupportedAlg),
            "{token}: {outcome:?}"
        );
    }
}

#[test]
fn a_token_without_keys_fetches_them_first() {
    let config = mode_config("strict");
    let req = with_token(&valid_token());
    assert_eq!(
        decide(&config, &req, KeyState::Missing { may_fetch: true }, NOW),
        Decision::Wait(Wait::FetchKeys {
            unknown_kid: false,
            paused: Paused(Waiting::Token)
        })
    );
    let (reply, outcome) = expect_reply(decide(
        &config,
        &req,
        KeyState::Missing { may_fetch: false },
        NOW,
    ));
    assert_eq!(reply.status, 401);
    assert_eq!(
        outcome,
        Outcome::Denied(Denial::Token(Rejection::KeysUnavailable))
    );
    assert!(
        header(&reply, "www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token", error_description="signing keys unavailable""#)
    );
    // Permissive passes the request when keys cannot be had.
    let permissive = mode_config("permissive");
    let (edits, outcome) = expect_forward(decide(
        &permissive,
        &req,
        KeyState::Missing { may_fetch: false },
        NOW,
    ));
    assert_eq!(
        outcome,
        Outcome::Unauthenticated {
            denial: Some(Denial::Token(Rejection::KeysUnavailable))
        }
    );
    assert!(!removes(&edits, "authorization"));
}

#[test]
fn an_unknown_kid_refetches_only_when_allowed() {
    let config = mode_config("strict");
    // rsa2 signs with kid rsa-2, which the inline set does not have.
    let req = with_token(&mint("rsa2", &claims()));
    let keys = inline_keys(&config);
    assert_eq!(
        decide(
            &config,
            &req,
            KeyState::Ready {
                keys,
                may_refetch: true
            },
            NOW
        ),
        Decision::Wait(Wait::FetchKeys {
            unknown_kid: true,
            paused: Paused(Waiting::Token)
        })
    );
    let (reply, outcome) = expect_reply(decide(
        &config,
        &req,
        KeyState::Ready {
            keys,
            may_refetch: false,
        },
        NOW,
    ));
    assert_eq!(reply.status, 401);
    assert_eq!(
        outcome,
        Outcome::Denied(Denial::Token(Rejection::UnknownKid("rsa-2".into())))
    );
    // After the refetch the new key is there and the token passes.
    let rotated = keyset(&["rsa", "rsa2"]);
    let (edits, _) = expect_forward(decide(
        &config,
        &req,
        KeyState::Ready {
            keys: &rotated,
            may_refetch: false,
        },
        NOW,
    ));
    assert_eq!(edits.remove, ["authorization"]);
}

#[test]
fn only_an_unknown_kid_triggers_a_refetch() {
    let config = mode_config("strict");
    let keys = inline_keys(&config);
    for token in [
        expired_token(),
        "x.y.z".to_string(),
        mint("rsa", &claims_with("aud", None)),
    ] {
        let decision = decide(
            &config,
            &with_token(&token),
            KeyState::Ready {
                keys,
                may_refetch: true,
            },
            NOW,
        );
        let (reply, _) = expect_reply(decision);
        assert_eq!(reply.status, 401);
    }
}

// --- request-level refusals ----------------------------------------------------------

#[test]
fn an_oversized_token_is_refused_without_verification() {
    let config = config(json!({"jwtValidationOptions": {"maxTokenBytes": 1024}}));
    let token = "a".repeat(1025);
    // With no keys, a verification attempt would have to ask for them first.
    let (reply, outcome) = expect_reply(decide(
        &config,
        &with_token(&token),
        KeyState::Missing { may_fetch: true },
        NOW,
    ));
    assert_eq!(reply.status, 401);
    assert_eq!(
        outcome,
        Outcome::Denied(Denial::Token(Rejection::TooLarge {
            size: 1025,
            max: 1024
        }))
    );
    assert!(
        header(&reply, "www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token", error_description="token too large""#)
    );
    // At the limit the token is looked at: parsed, and refused as malformed.
    let (_, outcome) = expect_reply(decide(
        &config,
        &with_token(&"a".repeat(1024)),
        KeyState::Missing { may_fetch: true },
        NOW,
    ));
    assert!(
        matches!(
            outcome,
            Outcome::Denied(Denial::Token(Rejection::Malformed(_)))
        ),
        "{outcome:?}"
    );
}

#[test]
fn duplicate_credentials_and_uri_tokens_are_invalid_requests() {
    let token = valid_token();
    let bearer = format!("Bearer {token}");
    let cases = [
        (
            request(
                "POST",
                "/mcp",
                &[("authorization", &bearer), ("authorization", &bearer)],
            ),
            InvalidRequest::MultipleCredentials,
        ),
        (
            request("POST", &format!("/mcp?access_token={token}"), &[]),
            InvalidRequest::TokenInUri,
        ),
        (
            request(
                "POST",
                &format!("/mcp?access_token={token}"),
                &[("authorization", &bearer)],
            ),
            InvalidRequest::TokenInUri,
        ),
        (
            request("POST", "/mcp", &[("authorization", "Bearer ")]),
            InvalidRequest::EmptyToken,
        ),
    ];
    for mode in ["strict", "optional"] {
        let config = mode_config(mode);
        for (req, why) in &cases {
            let (reply, outcome) = expect_reply(decide(&config, req, ready(&config), NOW));
            assert_eq!(reply.status, 400, "{mode} {why:?}");
            assert_eq!(outcome, Outcome::Denied(Denial::InvalidRequest(*why)));
            let challenge = header(&reply, "www-authenticate").unwrap();
            assert_eq!(
                challenge,
                format!(
                    r#"Bearer error="invalid_request", error_description="{}", resource_metadata="{PRM_URL}""#,
                    why.description()
                )
            );
            let body: Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(body["error"], "invalid_request");
        }
    }
}

// --- routing -------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum Routed {
    Metadata,
    Public,
    Unauthorized,
}

#[test]
fn well_known_paths_are_routed_exactly() {
    let config = mode_config("strict");
    let cases = [
        ("/.well-known/oauth-protected-resource", Routed::Metadata),
        (
            "/.well-known/oauth-protected-resource/mcp",
            Routed::Metadata,
        ),
        (
            "/.well-known/oauth-protected-resource/mcp?x=1",
            Routed::Metadata,
        ),
        (
            "/.well-known/oauth-protected-resource?x=1",
            Routed::Metadata,
        ),
        // Answered locally, so a dot segment here cannot reach the upstream.
        (
            "/.well-known/oauth-protected-resource/../../mcp",
            Routed::Metadata,
        ),
        (
            "/.well-known/oauth-protected-resource-evil",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/oauth-protected-resourcemcp",
            Routed::Unauthorized,
        ),
        (
            "/mcp/.well-known/oauth-protected-resource",
            Routed::Unauthorized,
        ),
        (
            "/.WELL-KNOWN/oauth-protected-resource",
            Routed::Unauthorized,
        ),
        (
            "//.well-known/oauth-protected-resource",
            Routed::Unauthorized,
        ),
        ("/.well-known/openid-configuration", Routed::Public),
        ("/.well-known/openid-configuration?x=1", Routed::Public),
        (
            "/.well-known/openid-configuration/realms/mcp",
            Routed::Public,
        ),
        ("/.well-known/oauth-authorization-server", Routed::Public),
        (
            "/.well-known/oauth-authorization-server/tenant",
            Routed::Public,
        ),
        (
            "/.well-known/openid-configuration/../../mcp",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/openid-configuration/./x",
            Routed::Unauthorized,
        ),
        ("/.well-known/openid-configuration/..", Routed::Unauthorized),
        (
            "/.well-known/openid-configuration/%2e%2e/mcp",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/openid-configuration/..%2fmcp",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/openid-configuration/..\\mcp",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/openid-configuration//mcp",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/openid-configuration/..;/mcp",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/openid-configuration;/../mcp",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/oauth-authorization-server;x",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/openid-configuration-evil",
            Routed::Unauthorized,
        ),
        (
            "/.well-known/oauth-authorization-serverx",
            Routed::Unauthorized,
        ),
        (
            "/mcp/.well-known/openid-configuration",
            Routed::Unauthorized,
        ),
        ("/.well-known/jwks.json", Routed::Unauthorized),
        ("/mcp", Routed::Unauthorized),
        ("/", Routed::Unauthorized),
    ];
    for (path, expected) in cases {
        let decision = decide(&config, &request("GET", path, &[]), ready(&config), NOW);
        let routed = match decision {
            Decision::Respond {
                reply,
                outcome: Outcome::Public,
            } if reply.status == 200 => Routed::Metadata,
            Decision::Forward {
                outcome: Outcome::Public,
                ..
            } => Routed::Public,
            Decision::Respond {
                reply,
                outcome: Outcome::Denied(Denial::Missing),
            } if reply.status == 401 => Routed::Unauthorized,
            other => panic!("{path}: unexpected {other:?}"),
        };
        assert_eq!(routed, expected, "{path}");
    }
}

#[test]
fn the_metadata_document_is_served_with_cors() {
    let config = config(json!({
        "resourceMetadata": {"resource": "https://mcp.example.com/mcp", "scopesSupported": ["mcp:read"]}
    }));
    for method in ["GET", "HEAD"] {
        let req = request(method, "/.well-known/oauth-protected-resource/mcp", &[]);
        let (reply, outcome) = expect_reply(decide(&config, &req, ready(&config), NOW));
        assert_eq!(outcome, Outcome::Public);
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.headers,
            [
                ("content-type".to_string(), "application/json".to_string()),
                ("access-control-allow-origin".into(), "*".into()),
                ("cache-control".into(), "max-age=300".into()),
            ]
        );
        assert_eq!(
            reply.body,
            r#"{"authorization_servers":["https://idp.example.com"],"mcp_protocol_version":"2025-06-18","resource":"https://mcp.example.com/mcp","resource_type":"mcp-server","scopes_supported":["mcp:read"]}"#
        );
    }
    // Without a configured resource the document follows the request.
    let computed = mode_config("strict");
    let req = request(
        "GET",
        "/.well-known/oauth-protected-resource/tools",
        &[("x-forwarded-proto", "http")],
    );
    let (reply, _) = expect_reply(decide(&computed, &req, ready(&computed), NOW));
    let doc: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(doc["resource"], "http://mcp.example.com/tools");
}

#[test]
fn other_methods_on_the_metadata_path_are_405() {
    let config = mode_config("strict");
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
        let req = request(method, "/.well-known/oauth-protected-resource", &[]);
        let (reply, outcome) = expect_reply(decide(&config, &req, ready(&config), NOW));
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(outcome, Outcome::Public);
        assert_eq!(header(&reply, "allow"), Some("GET, HEAD"));
    }
}

#[test]
fn well_known_paths_ignore_tokens_and_key_state() {
    let config = mode_config("strict");
    let req = request(
        "GET",
        "/.well-known/oauth-protected-resource",
        &[("authorization", "Bearer garbage")],
    );
    let (reply, _) = expect_reply(decide(
        &config,
        &req,
        KeyState::Missing { may_fetch: true },
        NOW,
    ));
    assert_eq!(reply.status, 200);
    let discovery = request(
        "GET",
        "/.well-known/openid-configuration",
        &[("authorization", "Bearer garbage")],
    );
    let (_, outcome) = expect_forward(decide(
        &config,
        &discovery,
        KeyState::Missing { may_fetch: true },
        NOW,
    ));
    assert_eq!(outcome, Outcome::Public);
}

// --- claims to headers ---------------------------------------------------------------

fn claims_config(mode: &str) -> Config {
    config(json!({
        "mode": mode,
        "claimsToHeaders": [
            {"claim": "sub", "header": "X-User"},
            {"claim": "scope", "header": "x-scope"},
            {"claim": "absent", "header": "x-absent"},
            {"claim": "roles", "header": "x-roles"},
        ]
    }))
}

const CLAIM_HEADERS: [&str; 4] = ["x-user", "x-scope", "x-absent", "x-roles"];

#[test]
fn claims_are_copied_into_headers_for_a_valid_token() {
    let config = claims_config("strict");
    let mut claims = claims();
    claims["scope"] = json!("mcp:read mcp:write");
    claims["roles"] = json!(["admin", "dev"]);
    let spoofed = format!("Bearer {}", mint("ec", &claims));
    let req = post(&[
        ("authorization", &spoofed),
        ("x-user", "root"),
        ("x-scope", "all"),
    ]);
    let (edits, _) = expect_forward(decide(&config, &req, ready(&config), NOW));
    for name in CLAIM_HEADERS {
        assert!(removes(&edits, name), "{name} must be removed: {edits:?}");
    }
    assert!(removes(&edits, "authorization"));
    assert_eq!(
        edits.set,
        [
            ("x-user".to_string(), SUBJECT.to_string()),
            ("x-scope".into(), "mcp:read mcp:write".into()),
            ("x-roles".into(), r#"["admin","dev"]"#.into()),
        ]
    );
}

#[test]
fn client_supplied_claim_headers_are_removed_in_every_forward() {
    let spoof = [("x-user", "root"), ("x-scope", "admin")];
    let expired = format!("Bearer {}", expired_token());
    let cases: [(&str, Request); 4] = [
        ("optional", post(&spoof)),
        ("permissive", post(&spoof)),
        (
            "permissive",
            post(&[spoof[0], spoof[1], ("authorization", expired.as_str())]),
        ),
        (
            "strict",
            request("GET", "/.well-known/openid-configuration", &spoof),
        ),
    ];
    for (mode, req) in cases {
        let config = claims_config(mode);
        let (edits, outcome) = expect_forward(decide(&config, &req, ready(&config), NOW));
        for name in CLAIM_HEADERS {
            assert!(removes(&edits, name), "{mode}: {name} kept ({outcome:?})");
        }
        assert!(edits.set.is_empty(), "{mode}: {edits:?}");
        assert!(!removes(&edits, "authorization"), "{mode}");
    }
}

#[test]
fn outcomes_name_their_metric() {
    assert_eq!(Denial::Missing.metric().name(), "denied.missing");
    assert_eq!(
        Denial::InvalidRequest(InvalidRequest::TokenInUri)
            .metric()
            .name(),
        "denied.invalid_request"
    );
    assert_eq!(
        Denial::Token(Rejection::UnknownKid("k".into()))
            .metric()
            .name(),
        "denied.unknown_kid"
    );
    assert_eq!(Outcome::Public.metric(), None);
    assert_eq!(
        Outcome::Unauthenticated { denial: None }.metric(),
        Some(Metric::PassedUnauthenticated)
    );
    assert_eq!(Denial::Missing.to_string(), "no credential");
}

// --- verified-token cache ------------------------------------------------------------

/// [`decide`] with the verified-token cache.
fn decide_cached(
    config: &Config,
    request: &Request,
    state: KeyState<'_>,
    now: u64,
    cache: &mut TokenCache,
) -> Decision {
    let keys = Keys {
        state,
        cache: Some(cache),
    };
    decide(config, request, keys, now)
}

fn cache(capacity: usize, max_age_secs: u64) -> TokenCache {
    TokenCache::new(crate::core::token_cache::CachePolicy {
        capacity,
        max_age_secs,
    })
}

fn allowed_subject(decision: Decision) -> Option<String> {
    match decision {
        Decision::Forward {
            outcome: Outcome::Allowed { claims },
            ..
        } => claims.subject().map(str::to_string),
        other => panic!("expected an allowed forward, got {other:?}"),
    }
}

#[test]
fn a_repeated_token_is_answered_from_the_cache_without_keys() {
    let config = mode_config("strict");
    let keys = inline_keys(&config);
    let mut cache = cache(16, 300);
    let req = with_token(&valid_token());
    let ready = KeyState::Ready {
        keys,
        may_refetch: false,
    };
    assert_eq!(
        allowed_subject(decide_cached(&config, &req, ready, NOW, &mut cache)).as_deref(),
        Some(SUBJECT)
    );
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.hits(), 0);
    // No keys at all now: only the cache can accept it, and still strips the credential.
    let no_keys = KeyState::Missing { may_fetch: false };
    let (edits, _) = expect_forward(decide_cached(&config, &req, no_keys, NOW + 1, &mut cache));
    assert!(edits.remove.iter().any(|n| *n == "authorization"));
    assert_eq!(cache.hits(), 1);
}

#[test]
fn failed_tokens_are_never_cached() {
    let config = mode_config("strict");
    let keys = inline_keys(&config);
    let mut cache = cache(16, 300);
    for token in [
        expired_token(),
        mint("rsa", &claims_with("aud", Some(json!("other")))),
    ] {
        let req = with_token(&token);
        for _ in 0..2 {
            let ready = KeyState::Ready {
                keys,
                may_refetch: false,
            };
            let (reply, _) = expect_reply(decide_cached(&config, &req, ready, NOW, &mut cache));
            assert_eq!(reply.status, 401);
        }
    }
    assert!(cache.is_empty());
}

#[test]
fn cache_entries_end_at_exp_and_never_accept_an_expired_token() {
    let config = config(json!({"jwtValidationOptions": {"clockSkewSeconds": 0}}));
    let keys = inline_keys(&config);
    let mut cache = cache(16, 300);
    let token = mint("rsa", &claims_with("exp", Some(json!(NOW + 10))));
    let req = with_token(&token);
    let ready = KeyState::Ready {
        keys,
        may_refetch: false,
    };
    allowed_subject(decide_cached(&config, &req, ready, NOW, &mut cache));
    // At exp the entry is gone and verification refuses the token.
    let ready = KeyState::Ready {
        keys,
        may_refetch: false,
    };
    let (reply, outcome) = expect_reply(decide_cached(&config, &req, ready, NOW + 10, &mut cache));
    assert_eq!(reply.status, 401);
    assert!(matches!(
        outcome,
        Outcome::Denied(Denial::Token(Rejection::Expired { .. }))
    ));
    // Without keys, an expired entry cannot be the reason for an accept either.
    let no_keys = KeyState::Missing { may_fetch: false };
    let (reply, _) = expect_reply(decide_cached(&config, &req, no_keys, NOW + 10, &mut cache));
    assert_eq!(reply.status, 401);
}

#[test]
fn cache_entries_end_at_the_age_cap_and_the_capacity_holds() {
    let config = mode_config("strict");
    let keys = inline_keys(&config);
    let mut small = cache(2, 5);
    let tokens: Vec<String> = (0..5)
        .map(|i| mint("rsa", &claims_with("jti", Some(json!(i)))))
        .collect();
    for token in &tokens {
        let ready = KeyState::Ready {
            keys,
            may_refetch: false,
        };
        allowed_subject(decide_cached(
            &config,
            &with_token(token),
            ready,
            NOW,
            &mut small,
        ));
        assert!(small.len() <= 2);
    }
    let last = with_token(&tokens[4]);
    let no_keys = KeyState::Missing { may_fetch: false };
    allowed_subject(decide_cached(&config, &last, no_keys, NOW + 4, &mut small));
    let no_keys = KeyState::Missing { may_fetch: false };
    let (reply, _) = expect_reply(decide_cached(&config, &last, no_keys, NOW + 5, &mut small));
    assert_eq!(reply.status, 401);
    small.clear();
    assert!(small.is_empty());
    let mut disabled = cache(0, 300);
    let ready = KeyState::Ready {
        keys,
        may_refetch: false,
    };
    allowed_subject(decide_cached(&config, &last, ready, NOW, &mut disabled));
    assert!(disabled.is_empty());
}

#[test]
fn a_paused_request_is_decided_from_the_keys_alone_when_it_resumes() {
    let config = mode_config("strict");
    let req = with_token(&valid_token());
    let first = decide(&config, &req, KeyState::Missing { may_fetch: true }, NOW);
    let Decision::Wait(Wait::FetchKeys { paused, .. }) = first else {
        panic!("a token without keys waits for them: {first:?}");
    };
    let keys = inline_keys(&config);
    let (_, outcome) = expect_forward(paused.resume(&config, &req, Some(keys), NOW).into());
    assert!(matches!(outcome, Outcome::Allowed { .. }), "{outcome:?}");
    let (reply, outcome) = expect_reply(paused.resume(&config, &req, None, NOW).into());
    assert_eq!(reply.status, 401);
    assert_eq!(
        outcome,
        Outcome::Denied(Denial::Token(Rejection::KeysUnavailable))
    );
}
