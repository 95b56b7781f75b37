use super::*;
use crate::core::config::Config;
use crate::core::decision::{Decision, KeyState, decide};
use crate::core::request::Request;
use serde_json::json;

const KC: &str = "http://127.0.0.1:10000/realms/mcp";
const GW: &str = "http://127.0.0.1:10000/mcp";
const KC_ENC: &str = "http%3A%2F%2F127.0.0.1%3A10000%2Frealms%2Fmcp";
const GW_ENC: &str = "http%3A%2F%2F127.0.0.1%3A10000%2Fmcp";

fn config(prefix: &str) -> Config {
    Config::from_json(
        json!({
            "issuer": KC,
            "jwks": {"cluster": "idp"},
            "provider": {"keycloak": {"gatewayPrefix": prefix}},
            "resourceMetadata": {"resource": format!("{GW}/")},
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap()
}

fn request(path: &str) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        scheme: "http".into(),
        authority: "127.0.0.1:10000".into(),
        headers: vec![],
    }
}

/// The rewrite `decide` hands the host with a forwarded request.
fn passage_return(config: &Config, request: &Request) -> Option<PassageReturn> {
    match decide(config, request, KeyState::Missing { may_fetch: false }, 0) {
        Decision::Forward { passage, .. } => passage.map(|p| (*p).clone()),
        _ => None,
    }
}

fn rewrite() -> PassageReturn {
    passage_return(
        &config(""),
        &request("/realms/mcp/login-actions/authenticate?session_code=x"),
    )
    .unwrap()
}

#[test]
fn only_passage_requests_carry_a_rewrite() {
    let config = config("");
    assert_eq!(
        passage_return(
            &config,
            &request("/realms/mcp/protocol/openid-connect/auth?a=b")
        ),
        Some(PassageReturn::new(KC.into(), GW))
    );
    for path in [
        "/mcp",
        "/realms/other/x",
        "/.well-known/oauth-authorization-server/mcp",
    ] {
        assert_eq!(passage_return(&config, &request(path)), None, "{path}");
    }
    let direct = Config::from_json(
        json!({"issuer": KC, "jwks": {"cluster": "idp"}, "provider": {"keycloak": {}},
               "resourceMetadata": {"resource": GW}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        passage_return(&direct, &request("/realms/mcp/protocol/x")),
        None
    );
}

#[test]
fn the_providers_issuer_becomes_the_gateways() {
    let location = format!(
        "http://127.0.0.1:5555/callback?state=s%2B1&session_state=abc&iss={KC_ENC}&code=c.d.e"
    );
    assert_eq!(
        rewrite().location(302, &location).as_deref(),
        Some(
            format!(
                "http://127.0.0.1:5555/callback?state=s%2B1&session_state=abc&iss={GW_ENC}&code=c.d.e"
            )
            .as_str()
        )
    );
    // Any 3xx, any spelling of the same value, the fragment kept last.
    let plain = format!("https://app/cb?code=1&iss={KC}#top");
    assert_eq!(
        rewrite().location(303, &plain).as_deref(),
        Some(format!("https://app/cb?code=1&iss={GW_ENC}#top").as_str())
    );
    let encoded_name = format!("https://app/cb?%69ss={KC_ENC}&code=1");
    assert_eq!(
        rewrite().location(307, &encoded_name).as_deref(),
        Some(format!("https://app/cb?iss={GW_ENC}&code=1").as_str())
    );
}

#[test]
fn everything_else_passes_unchanged() {
    let r = rewrite();
    let cases = [
        // Not a redirect.
        (200, format!("https://app/cb?iss={KC_ENC}")),
        (404, format!("https://app/cb?iss={KC_ENC}")),
        // Another issuer, a near miss, an empty value: the client must see them as they are.
        (
            302,
            "https://app/cb?iss=https%3A%2F%2Fevil.example&code=1".to_string(),
        ),
        (302, format!("https://app/cb?iss={KC_ENC}%2F&code=1")),
        (302, format!("https://app/cb?iss={KC_ENC}x")),
        (302, "https://app/cb?iss=&code=1".to_string()),
        (302, "https://app/cb?iss&code=1".to_string()),
        // Repeated iss, even when one of them matches.
        (302, format!("https://app/cb?iss={KC_ENC}&iss={KC_ENC}")),
        (302, format!("https://app/cb?iss={KC_ENC}&%69ss=x")),
        // Bad escapes, no query, iss only in the fragment (not an authorization response
        // of the query response mode).
        (302, "https://app/cb?iss=%zz".to_string()),
        (302, "https://app/cb".to_string()),
        (302, format!("https://app/cb#iss={KC_ENC}")),
        // An IdP-internal redirect.
        (
            302,
            "/realms/mcp/login-actions/required-action?execution=x".to_string(),
        ),
    ];
    for (status, location) in cases {
        assert_eq!(r.location(status, &location), None, "{status} {location}");
    }
}

#[test]
fn form_decoding_is_strict() {
    assert_eq!(form_decode("a+b%20c").as_deref(), Some("a b c"));
    assert_eq!(form_decode("%e2%82%ac").as_deref(), Some("€"));
    assert_eq!(form_decode("%"), None);
    assert_eq!(form_decode("%4"), None);
    assert_eq!(form_decode("%ff"), None);
}
