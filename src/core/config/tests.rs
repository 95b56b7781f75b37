use super::*;
use serde_json::json;

fn parse(value: Value) -> Result<Config, String> {
    Config::from_json(value.to_string().as_bytes()).map_err(|e| e.to_string())
}

fn base() -> Value {
    json!({
        "issuer": "https://idp.example.com",
        "jwks": {"url": "https://idp.example.com/jwks", "cluster": "idp"},
        "resourceMetadata": {"resource": "https://mcp.example.com/mcp"}
    })
}

fn with(mut value: Value, pointer: &str, field: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut value
    } else {
        value.pointer_mut(parent).unwrap()
    };
    target[key] = field;
    value
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let config = parse(base()).unwrap();
    assert_eq!(config.mode, Mode::Strict);
    assert_eq!(config.claims.audiences, ["https://mcp.example.com/mcp"]);
    assert_eq!(config.claims.required, ["exp"]);
    assert_eq!(config.claims.clock_skew_secs, 60);
    assert_eq!(config.max_token_bytes, 8192);
    assert_eq!(config.key_policy.max_rsa_bits, 4096);
    assert_eq!(config.key_policy.verifier, Verifier::Fast);
    assert_eq!(
        config.token_cache,
        CachePolicy {
            capacity: 1024,
            max_age_secs: 300
        }
    );
    assert_eq!(
        config.location,
        TokenLocation::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into()
        }
    );
    let KeySource::Remote(remote) = config.keys else {
        panic!("expected remote keys")
    };
    assert_eq!(remote.cluster, "idp");
    assert_eq!(remote.location.describe(), "https://idp.example.com/jwks");
    assert_eq!(remote.timeout_ms, 5000);
    assert_eq!(remote.cache_duration_secs, 600);
    assert_eq!(remote.min_refresh_interval_secs, 30);
    assert!(config.warnings.is_empty());
}

#[test]
fn errors_name_the_field_and_the_problem() {
    let cases = [
        (
            with(base(), "/jwks/url", json!("idp/jwks")),
            "jwks.url: not an absolute http(s) URL",
        ),
        (
            with(base(), "/bogus", json!(1)),
            "bogus: unknown field `bogus`",
        ),
        (
            with(base(), "/jwks/bogus", json!(1)),
            "jwks.bogus: unknown field `bogus`",
        ),
        (
            with(base(), "/mode", json!("lenient")),
            "mode: unknown variant `lenient`",
        ),
        (
            with(base(), "/mode", json!("mode")),
            "mode: unknown variant `mode`",
        ),
        (
            with(
                base(),
                "/claimsToHeaders",
                json!([{"claim": "sub", "header": "x-sub"}, {"claim": "email", "header": 7}]),
            ),
            "claimsToHeaders[1].header: invalid type: integer `7`",
        ),
        (
            with(base(), "/jwks/timeoutMs", json!("soon")),
            "jwks.timeoutMs: invalid type: string \"soon\"",
        ),
        (
            with(base(), "/jwks/timeoutMs", json!(5)),
            "jwks.timeoutMs: must be between 100 and 60000",
        ),
        (
            with(
                base(),
                "/jwtValidationOptions",
                json!({"clockSkewSeconds": -1}),
            ),
            "jwtValidationOptions.clockSkewSeconds: invalid value",
        ),
        (
            with(
                base(),
                "/jwtValidationOptions",
                json!({"maxRsaKeyBits": 16384}),
            ),
            "jwtValidationOptions.maxRsaKeyBits: must be between 2048 and 8192",
        ),
        (
            with(
                base(),
                "/jwtValidationOptions",
                json!({"maxRsaKeyBits": 1024}),
            ),
            "jwtValidationOptions.maxRsaKeyBits: must be between 2048 and 8192",
        ),
        (
            with(
                base(),
                "/jwtValidationOptions",
                json!({"maxRsaKeyBits": "8192"}),
            ),
            "jwtValidationOptions.maxRsaKeyBits: invalid type",
        ),
        (
            with(
                base(),
                "/jwtValidationOptions",
                json!({"verifier": "audited"}),
            ),
            "jwtValidationOptions.verifier: unknown variant `audited`, expected `fast` or `reference`",
        ),
        (
            with(base(), "/resourceMetadata/resource", json!("mcp")),
            "resourceMetadata.resource: not an absolute http(s) URL",
        ),
        (
            with(base(), "/jwks", json!({"url": "https://idp/jwks"})),
            "jwks.cluster: required",
        ),
        (
            with(
                base(),
                "/jwks",
                json!({"inline": {"keys": []}, "cluster": "idp"}),
            ),
            "jwks.cluster: not allowed together with jwks.inline",
        ),
        (
            with(base(), "/jwks", json!({"inline": {"keys": []}})),
            "jwks.inline: no usable key",
        ),
        (
            with(base(), "/provider", json!({"okta": {}})),
            "provider: unknown variant `okta`",
        ),
        (
            with(
                base(),
                "/claimsToHeaders",
                json!([{"claim": "sub", "header": "Authorization"}]),
            ),
            "claimsToHeaders[0].header: must not name a reserved header",
        ),
        (
            with(
                base(),
                "/authorizationLocation",
                json!({"header": {"name": "bad header"}}),
            ),
            "authorizationLocation.header.name: not a valid HTTP header name",
        ),
        (
            json!({"jwks": {"cluster": "idp"}}),
            "missing field `issuer`",
        ),
        (json!("config"), "invalid type"),
    ];
    for (config, expected) in cases {
        let err = parse(config.clone()).expect_err(&config.to_string());
        assert!(
            err.starts_with(expected),
            "{err:?} should start with {expected:?}"
        );
    }
}

#[test]
fn audiences_default_to_the_resource_and_are_required_without_one() {
    let no_resource = with(base(), "/resourceMetadata", json!({}));
    let err = parse(no_resource.clone()).unwrap_err();
    assert!(err.starts_with("audiences: required"), "{err}");
    let explicit = with(no_resource, "/audiences", json!(["api://mcp"]));
    assert_eq!(parse(explicit).unwrap().claims.audiences, ["api://mcp"]);
}

#[test]
fn verifier_and_rsa_size_reach_inline_and_fetched_keys() {
    let options = json!({"verifier": "reference", "maxRsaKeyBits": 8192});
    let remote = parse(with(base(), "/jwtValidationOptions", options.clone())).unwrap();
    assert_eq!(
        remote.key_policy,
        KeyPolicy {
            max_rsa_bits: 8192,
            verifier: Verifier::Reference
        }
    );
    let inline = with(
        with(base(), "/jwtValidationOptions", options),
        "/jwks",
        json!({"inline": crate::core::testkit::jwks(&["rsa"])}),
    );
    let KeySource::Inline(set) = parse(inline).unwrap().keys else {
        panic!("expected inline keys")
    };
    assert_eq!(set.verifier(), Verifier::Reference);
}

#[test]
fn an_empty_audience_list_is_accepted_with_a_warning() {
    let config = parse(with(base(), "/audiences", json!([]))).unwrap();
    assert!(config.claims.audiences.is_empty());
    assert_eq!(config.warnings.len(), 1);
}

#[test]
fn mcp_authorization_warns_that_a_buffer_filter_must_follow() {
    let rules = json!({"rules": ["mcp.tool.name == \"echo\""]});
    let config = parse(with(base(), "/mcpAuthorization", rules)).unwrap();
    assert_eq!(config.warnings, [MCP_AUTHORIZATION_NEEDS_BUFFER]);
    // Without rules or scopes the body is never read, so there is nothing to warn about.
    let inactive = parse(with(base(), "/mcpAuthorization", json!({}))).unwrap();
    assert!(inactive.warnings.is_empty());
}

fn jwks_location(config: Value) -> JwksLocation {
    let KeySource::Remote(remote) = parse(config).unwrap().keys else {
        panic!("expected remote keys")
    };
    remote.location
}

#[test]
fn jwks_url_is_derived_from_issuer_and_provider() {
    let keycloak = json!({
        "issuer": "https://kc.example.com/realms/mcp",
        "provider": {"keycloak": {}},
        "jwks": {"cluster": "kc"},
        "audiences": ["mcp"]
    });
    assert_eq!(
        jwks_location(keycloak).describe(),
        "https://kc.example.com/realms/mcp/protocol/openid-connect/certs"
    );
    let plain = with(base(), "/jwks", json!({"cluster": "idp"}));
    assert_eq!(
        jwks_location(plain).describe(),
        "https://idp.example.com/.well-known/jwks.json"
    );
}

#[test]
fn jwks_omitted_is_discovered_from_the_providers_metadata() {
    let config = |provider: Value| {
        json!({
            "issuer": "https://idp.example.com/realms/mcp",
            "provider": provider,
            "audiences": ["mcp"]
        })
    };
    for (provider, metadata) in [
        (
            json!({"keycloak": {"cluster": "kc"}}),
            "/realms/mcp/.well-known/openid-configuration",
        ),
        (
            json!({"auth0": {"cluster": "kc"}}),
            "/realms/mcp/.well-known/openid-configuration",
        ),
        (
            json!({"oidc": {"cluster": "kc"}}),
            "/.well-known/oauth-authorization-server/realms/mcp",
        ),
    ] {
        let parsed = parse(config(provider)).unwrap();
        let KeySource::Remote(remote) = &parsed.keys else {
            panic!("expected remote keys")
        };
        let JwksLocation::Discovered { metadata: url } = &remote.location else {
            panic!("expected discovery")
        };
        assert_eq!(url.origin(), "https://idp.example.com");
        assert_eq!(url.path_and_query, metadata);
        assert_eq!(remote.cluster, "kc");
        assert_eq!(remote.fetch_budget_ms(), 2 * remote.timeout_ms);
        assert_eq!(parsed.provider.unwrap().cluster, "kc");
    }
    let errors = [
        (
            json!({"issuer": "https://idp", "audiences": ["mcp"]}),
            "jwks: required",
        ),
        (
            config(json!({"keycloak": {}})),
            "provider.keycloak.cluster: required when jwks is omitted",
        ),
        (
            config(json!({"auth0": {"cluster": ""}})),
            "provider.auth0.cluster: must not be empty",
        ),
        (
            with(
                config(json!({"oidc": {"cluster": "kc"}})),
                "/issuer",
                json!("idp"),
            ),
            "issuer: not an absolute http(s) URL",
        ),
    ];
    for (config, expected) in errors {
        let err = parse(config).unwrap_err();
        assert!(
            err.starts_with(expected),
            "{err:?} should start with {expected:?}"
        );
    }
}

#[test]
fn modes_accept_agentgateway_spelling() {
    for (given, mode) in [
        ("strict", Mode::Strict),
        ("Optional", Mode::Optional),
        ("permissive", Mode::Permissive),
    ] {
        assert_eq!(
            parse(with(base(), "/mode", json!(given))).unwrap().mode,
            mode
        );
    }
}

#[test]
fn alternative_token_locations_parse() {
    let query = with(
        base(),
        "/authorizationLocation",
        json!({"queryParameter": {"name": "token"}}),
    );
    assert_eq!(
        parse(query).unwrap().location,
        TokenLocation::QueryParameter {
            name: "token".into()
        }
    );
    let cookie = with(
        base(),
        "/authorizationLocation",
        json!({"cookie": {"name": "session"}}),
    );
    assert_eq!(
        parse(cookie).unwrap().location,
        TokenLocation::Cookie {
            name: "session".into()
        }
    );
    let header = with(
        base(),
        "/authorizationLocation",
        json!({"header": {"name": "X-Token"}}),
    );
    assert_eq!(
        parse(header).unwrap().location,
        TokenLocation::Header {
            name: "x-token".into(),
            prefix: String::new()
        }
    );
}
