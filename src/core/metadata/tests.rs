use super::*;
use crate::core::reply::{ErrorCode, challenge};
use crate::core::testkit::ISSUER;

fn metadata(raw: Value) -> ResourceMetadata {
    metadata_for(raw, false)
}

fn metadata_for(raw: Value, gateway: bool) -> ResourceMetadata {
    let Value::Object(raw) = raw else {
        panic!("resourceMetadata is an object")
    };
    ResourceMetadata::from_config(raw, ISSUER, gateway).expect("valid resourceMetadata")
}

fn request(scheme: &str, authority: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        scheme: scheme.into(),
        authority: authority.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn missing_token_challenge(md: &ResourceMetadata, request: &Request) -> String {
    challenge(&md.metadata_url(request), md.scope_hint(), None)
}

#[test]
fn challenge_without_a_resource_uses_the_request_origin() {
    let md = metadata(json!({}));
    let req = request("https", "example.com", "/sse", &[]);
    assert_eq!(
        missing_token_challenge(&md, &req),
        r#"Bearer resource_metadata="https://example.com/.well-known/oauth-protected-resource/sse""#
    );
}

#[test]
fn challenge_with_a_resource_uses_its_origin_and_the_request_path() {
    let md = metadata(json!({"resource": "https://gw.example.com/base?x=1"}));
    let req = request("http", "10.0.0.7:8080", "/mcp", &[]);
    assert_eq!(
        missing_token_challenge(&md, &req),
        r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp""#
    );
}

#[test]
fn challenge_paths_drop_the_query_and_a_lone_slash() {
    let md = metadata(json!({}));
    let cases = [
        (
            "/mcp?session=1",
            "https://example.com/.well-known/oauth-protected-resource/mcp",
        ),
        (
            "/",
            "https://example.com/.well-known/oauth-protected-resource",
        ),
        (
            "/?a=b",
            "https://example.com/.well-known/oauth-protected-resource",
        ),
        (
            "/a/b/",
            "https://example.com/.well-known/oauth-protected-resource/a/b/",
        ),
    ];
    for (path, url) in cases {
        let req = request("https", "example.com", path, &[]);
        assert_eq!(md.metadata_url(&req), url, "{path}");
    }
}

#[test]
fn challenge_advertises_configured_scopes() {
    let md = metadata(json!({
        "resource": "https://gw.example.com/mcp",
        "scopesSupported": ["mcp:read", "mcp:write"]
    }));
    let req = request("https", "gw.example.com", "/mcp", &[]);
    assert_eq!(
        missing_token_challenge(&md, &req),
        r#"Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:write""#
    );
    // snake_case spelling configures the same hint.
    let snake = metadata(json!({"scopes_supported": ["a", "b"]}));
    assert_eq!(snake.scope_hint(), Some("a b"));
}

#[test]
fn invalid_token_challenge_carries_error_and_description() {
    let md = metadata(json!({
        "resource": "https://gw.example.com/mcp",
        "scopesSupported": ["mcp:read", "mcp:write"]
    }));
    let req = request("https", "gw.example.com", "/mcp", &[]);
    let value = challenge(
        &md.metadata_url(&req),
        md.scope_hint(),
        Some((ErrorCode::InvalidToken, "token expired")),
    );
    assert_eq!(
        value,
        r#"Bearer error="invalid_token", error_description="token expired", resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:read mcp:write""#
    );
    let value = challenge(
        "https://x/.well-known/oauth-protected-resource",
        None,
        Some((ErrorCode::InvalidRequest, "bad \"quote\" \\ and é\r\n")),
    );
    assert_eq!(
        value,
        r#"Bearer error="invalid_request", error_description="bad quote  and ", resource_metadata="https://x/.well-known/oauth-protected-resource""#
    );
    assert_eq!(ErrorCode::InsufficientScope.as_str(), "insufficient_scope");
}

#[test]
fn forwarded_proto_is_honoured() {
    let md = metadata(json!({}));
    let req = request(
        "http",
        "example.com",
        "/mcp",
        &[("x-forwarded-proto", "https")],
    );
    assert_eq!(
        md.metadata_url(&req),
        "https://example.com/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(
        md.document(&req, "/mcp"),
        r#"{"authorization_servers":["https://idp.example.com"],"mcp_protocol_version":"2025-06-18","resource":"https://example.com/mcp","resource_type":"mcp-server"}"#
    );
    // A configured resource wins over anything the request says.
    let fixed = metadata(json!({"resource": "https://gw.example.com/mcp"}));
    let forwarded_http = request("https", "x", "/mcp", &[("x-forwarded-proto", "http")]);
    assert_eq!(
        fixed.metadata_url(&forwarded_http),
        "https://gw.example.com/.well-known/oauth-protected-resource/mcp"
    );
}

#[test]
fn unsafe_path_characters_are_percent_encoded() {
    let md = metadata(json!({}));
    let req = request("https", "example.com", r#"/a"b\c<d> e"#, &[]);
    let url = md.metadata_url(&req);
    assert_eq!(
        url,
        "https://example.com/.well-known/oauth-protected-resource/a%22b%5Cc%3Cd%3E%20e"
    );
    let header = missing_token_challenge(&md, &req);
    assert_eq!(header.matches('"').count(), 2, "{header}");
    let unicode = request("https", "example.com", "/é", &[]);
    assert_eq!(
        md.metadata_url(&unicode),
        "https://example.com/.well-known/oauth-protected-resource/%C3%A9"
    );
}

#[test]
fn an_authority_cannot_break_out_of_the_quoted_challenge() {
    let md = metadata(json!({}));
    let req = request("https", r#"evil.example", error="x"#, "/mcp", &[]);
    let header = missing_token_challenge(&md, &req);
    assert_eq!(header.matches('"').count(), 2, "{header}");
    let document: Value = serde_json::from_str(&md.document(&req, "/mcp")).unwrap();
    assert_eq!(document["authorization_servers"], json!([ISSUER]));
}

#[test]
fn computed_document_without_a_resource() {
    let md = metadata(json!({}));
    let req = request(
        "https",
        "mcp.example.com",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
    );
    assert_eq!(
        md.document(&req, "/mcp"),
        r#"{"authorization_servers":["https://idp.example.com"],"mcp_protocol_version":"2025-06-18","resource":"https://mcp.example.com/mcp","resource_type":"mcp-server"}"#
    );
    assert_eq!(
        md.document(&req, ""),
        r#"{"authorization_servers":["https://idp.example.com"],"mcp_protocol_version":"2025-06-18","resource":"https://mcp.example.com","resource_type":"mcp-server"}"#
    );
    assert_eq!(
        md.document(&req, r#"/x"y"#),
        r#"{"authorization_servers":["https://idp.example.com"],"mcp_protocol_version":"2025-06-18","resource":"https://mcp.example.com/x%22y","resource_type":"mcp-server"}"#
    );
}

#[test]
fn configured_members_are_converted_to_snake_case_and_copied_verbatim() {
    let md = metadata(json!({
        "resource": "https://mcp.example.com/mcp",
        "scopesSupported": ["mcp:read", "mcp:write"],
        "bearerMethodsSupported": ["header"],
        "resourceDocumentation": "https://docs.example.com/mcp",
        "resourcePolicyUri": "https://example.com/policy",
        "resourceName": "Demo MCP",
        "already_snake": {"nestedCamel": [1, 2]},
    }));
    let req = request(
        "http",
        "internal:9000",
        "/.well-known/oauth-protected-resource",
        &[],
    );
    let expected = concat!(
        r#"{"already_snake":{"nestedCamel":[1,2]},"#,
        r#""authorization_servers":["https://idp.example.com"],"#,
        r#""bearer_methods_supported":["header"],"#,
        r#""mcp_protocol_version":"2025-06-18","#,
        r#""resource":"https://mcp.example.com/mcp","#,
        r#""resource_documentation":"https://docs.example.com/mcp","#,
        r#""resource_name":"Demo MCP","#,
        r#""resource_policy_uri":"https://example.com/policy","#,
        r#""resource_type":"mcp-server","#,
        r#""scopes_supported":["mcp:read","mcp:write"]}"#,
    );
    assert_eq!(md.document(&req, ""), expected);
    // The configured resource makes the document request-independent.
    let other = request("https", "elsewhere", "/x", &[("x-forwarded-proto", "http")]);
    assert_eq!(md.document(&other, "/anything"), expected);
}

#[test]
fn configured_members_override_computed_ones() {
    let md = metadata(json!({
        "authorizationServers": ["https://as.example.com"],
        "mcpProtocolVersion": "2025-11-25",
        "resource_type": "custom",
    }));
    let req = request("https", "mcp.example.com", "/", &[]);
    assert_eq!(
        md.document(&req, "/mcp"),
        r#"{"authorization_servers":["https://as.example.com"],"mcp_protocol_version":"2025-11-25","resource":"https://mcp.example.com/mcp","resource_type":"custom"}"#
    );
}

#[test]
fn with_a_provider_the_gateway_is_the_authorization_server() {
    let md = metadata_for(json!({}), true);
    let req = request(
        "http",
        "gw.local:8080",
        "/",
        &[("x-forwarded-proto", "https")],
    );
    assert_eq!(
        md.document(&req, "/mcp"),
        r#"{"authorization_servers":["https://gw.local:8080/mcp"],"mcp_protocol_version":"2025-06-18","resource":"https://gw.local:8080/mcp","resource_type":"mcp-server"}"#
    );
    let with_resource = metadata_for(json!({"resource": "https://gw.example.com/mcp"}), true);
    assert_eq!(
        with_resource.document(&req, "/mcp"),
        r#"{"authorization_servers":["https://gw.example.com/mcp"],"mcp_protocol_version":"2025-06-18","resource":"https://gw.example.com/mcp","resource_type":"mcp-server"}"#
    );
}

#[test]
fn invalid_resource_metadata_names_the_field() {
    let cases = [
        (
            json!({"resource": "mcp.example.com"}),
            "resourceMetadata.resource: not an absolute http(s) URL",
        ),
        (
            json!({"resource": 1}),
            "resourceMetadata.resource: must be a string",
        ),
        (
            json!({"scopesSupported": "mcp:read"}),
            "resourceMetadata.scopesSupported: must be an array",
        ),
        (
            json!({"scopesSupported": ["a b"]}),
            "resourceMetadata.scopesSupported: must be an array",
        ),
        (
            json!({"scopesSupported": ["a\"b"]}),
            "resourceMetadata.scopesSupported: must be an array",
        ),
        (
            json!({"scopes_supported": [""]}),
            "resourceMetadata.scopes_supported: must be an array",
        ),
        (
            json!({"scopesSupported": [1]}),
            "resourceMetadata.scopesSupported: must be an array",
        ),
        (
            json!({"authorizationServers": []}),
            "resourceMetadata.authorizationServers: must list at least one",
        ),
        (
            json!({"authorization_servers": [""]}),
            "resourceMetadata.authorization_servers: must list at least one",
        ),
        (
            json!({"authorizationServers": "https://as"}),
            "resourceMetadata.authorizationServers: must list at least one",
        ),
    ];
    for (raw, expected) in cases {
        let Value::Object(map) = raw.clone() else {
            panic!("case {raw} is not an object")
        };
        let err = ResourceMetadata::from_config(map, ISSUER, false).unwrap_err();
        assert!(err.to_string().starts_with(expected), "{raw}: {err}");
    }
}

#[test]
fn offline_access_is_dropped_from_scopes_supported_with_a_warning() {
    let md = metadata(json!({
        "resource": "https://mcp.example.com/mcp",
        "scopesSupported": ["profile", "offline_access", "openid"]
    }));
    assert_eq!(md.scope_hint(), Some("profile openid"));
    let document: Value =
        serde_json::from_str(&md.document(&request("https", "x", "/", &[]), "/mcp")).unwrap();
    assert_eq!(document["scopes_supported"], json!(["profile", "openid"]));
    let warning = md.warning.as_deref().unwrap();
    assert!(warning.starts_with("resourceMetadata.scopesSupported: offline_access dropped"));
    let only = metadata(json!({"scopes_supported": ["offline_access"]}));
    assert_eq!(only.scope_hint(), None);
    assert!(
        metadata(json!({"scopesSupported": ["a"]}))
            .warning
            .is_none()
    );
}

#[test]
fn snake_case_conversion() {
    for (camel, snake) in [
        ("scopesSupported", "scopes_supported"),
        ("resourcePolicyUri", "resource_policy_uri"),
        ("already_snake", "already_snake"),
        ("jwksUri", "jwks_uri"),
        ("x", "x"),
    ] {
        assert_eq!(snake_case(camel), snake);
    }
}
