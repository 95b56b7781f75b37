use crate::core::config::Config;

/// The calls as the host makes them, from the whole config.
fn adapt_metadata(
    config: &Config,
    upstream: &[u8],
    gateway: &GatewayUrls,
) -> Result<String, &'static str> {
    super::adapt_metadata(config.provider.as_ref(), upstream, gateway)
}

fn finish(config: &Config, kind: &IdpCallKind, answer: IdpAnswer<'_>) -> LocalReply {
    super::finish(config.provider.as_ref(), kind, answer)
}

fn upstream_metadata_path(kind: Provider, issuer: &HttpUrl) -> String {
    kind.metadata_path(issuer)
}
use super::*;
use crate::core::config::KeySource;
use crate::core::decision::{Decision, KeyState, Outcome, Wait, decide};
use crate::core::testkit::{AUDIENCE, jwks, private_jwk};
use serde_json::json;

const RESOURCE: &str = "https://mcp.example.com/mcp";

fn config(provider: Value, extra: Value) -> Config {
    let mut raw = json!({
        "issuer": "https://kc.example.com/realms/mcp",
        "audiences": [AUDIENCE, "api://second"],
        "jwks": {"cluster": "idp"},
        "provider": provider,
        "resourceMetadata": {"resource": RESOURCE},
    });
    for (key, value) in extra.as_object().unwrap() {
        raw[key] = value.clone();
    }
    Config::from_json(raw.to_string().as_bytes()).unwrap()
}

fn keycloak() -> Config {
    config(json!({"keycloak": {}}), json!({}))
}

fn gateway() -> GatewayUrls {
    GatewayUrls {
        origin: "https://gw".into(),
        issuer: RESOURCE.into(),
        registration: "https://gw/reg".into(),
    }
}

fn request(method: &str, path: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        scheme: "https".into(),
        authority: "mcp.example.com".into(),
        headers: vec![],
    }
}

fn ask(config: &Config, method: &str, path: &str) -> Decision {
    decide(
        config,
        &request(method, path),
        KeyState::Missing { may_fetch: false },
        0,
    )
}

#[test]
fn gateway_issuer_is_the_resource_without_query_or_trailing_slash() {
    assert_eq!(gateway_issuer("https://gw/mcp?x=1"), "https://gw/mcp");
    assert_eq!(gateway_issuer("https://gw/mcp/"), "https://gw/mcp");
    assert_eq!(gateway_issuer("https://gw"), "https://gw");
}

#[test]
fn upstream_metadata_location_follows_the_provider() {
    let kc = keycloak();
    let kc = kc.provider.as_ref().unwrap();
    assert_eq!(
        upstream_metadata_path(kc.kind, &kc.issuer),
        "/realms/mcp/.well-known/openid-configuration"
    );
    let oidc = config(json!({"oidc": {}}), json!({}));
    let oidc = oidc.provider.as_ref().unwrap();
    assert_eq!(
        upstream_metadata_path(oidc.kind, &oidc.issuer),
        "/.well-known/oauth-authorization-server/realms/mcp"
    );
}

#[test]
fn metadata_requests_ask_the_provider_through_its_cluster() {
    let config = config(json!({"keycloak": {"cluster": "kc"}}), json!({}));
    for path in [
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/openid-configuration/mcp",
    ] {
        let Decision::Wait(Wait::AskIdp(call)) = ask(&config, "GET", path) else {
            panic!("{path} should ask the provider");
        };
        assert_eq!(call.cluster, "kc");
        assert_eq!(call.authority, "kc.example.com");
        assert_eq!(call.path, "/realms/mcp/.well-known/openid-configuration");
        assert_eq!(
            call.kind,
            IdpCallKind::Metadata(GatewayUrls {
                origin: "https://mcp.example.com".into(),
                issuer: RESOURCE.into(),
                registration:
                    "https://mcp.example.com/.well-known/oauth-authorization-server/mcp/client-registration"
                        .into(),
            })
        );
    }
    let Decision::Respond { reply, .. } = ask(&config, "POST", "/.well-known/openid-configuration")
    else {
        panic!("POST to metadata is refused locally");
    };
    assert_eq!(reply.status, 405);
}

#[test]
fn without_a_provider_discovery_passes_through() {
    let plain = Config::from_json(
        json!({"issuer": "https://idp", "jwks": {"inline": jwks(&["rsa"])},
               "resourceMetadata": {"resource": RESOURCE}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert!(matches!(
        ask(&plain, "GET", "/.well-known/oauth-authorization-server/mcp"),
        Decision::Forward { .. }
    ));
}

#[test]
fn registration_is_forwarded_for_keycloak_local_with_client_id_and_absent_otherwise() {
    let path = "/.well-known/oauth-authorization-server/mcp/client-registration";
    let Decision::Wait(Wait::AskIdp(call)) = ask(&keycloak(), "POST", path) else {
        panic!("keycloak forwards registration");
    };
    assert_eq!(call.kind, IdpCallKind::Registration);
    assert_eq!(
        call.path,
        "/realms/mcp/clients-registrations/openid-connect"
    );
    assert!(call.needs_body);
    let local = config(json!({"auth0": {}}), json!({"clientId": "pre-registered"}));
    assert_eq!(
        ask(&local, "POST", path),
        Decision::Wait(Wait::RegisterLocally {
            client_id: "pre-registered".into()
        }),
        "clientId answers registration"
    );
    let Decision::Respond { reply, .. } = ask(&keycloak(), "GET", path) else {
        panic!("GET registration is refused");
    };
    assert_eq!(reply.status, 405);
    let none = config(json!({"oidc": {}}), json!({}));
    let Decision::Respond { reply, .. } = ask(&none, "POST", path) else {
        panic!("no registration without keycloak or clientId");
    };
    assert_eq!(reply.status, 404);
}

#[test]
fn keycloak_metadata_names_the_gateway_as_issuer_and_registrar() {
    let upstream = json!({
        "issuer": "https://kc.example.com/realms/mcp",
        "authorization_endpoint": "https://kc.example.com/realms/mcp/protocol/openid-connect/auth",
        "registration_endpoint": "https://kc.example.com/realms/mcp/clients-registrations/openid-connect",
        "jwks_uri": "https://kc.example.com/realms/mcp/protocol/openid-connect/certs",
    });
    let doc = adapt_metadata(&keycloak(), upstream.to_string().as_bytes(), &gateway()).unwrap();
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["issuer"], RESOURCE);
    assert_eq!(doc["registration_endpoint"], "https://gw/reg");
    assert_eq!(
        doc["authorization_endpoint"],
        upstream["authorization_endpoint"]
    );
    assert_eq!(doc["jwks_uri"], upstream["jwks_uri"]);
}

#[test]
fn rfc9207_iss_without_a_passage_is_refused_never_advertised() {
    let upstream = json!({
        "issuer": "https://kc.example.com/realms/mcp",
        "authorization_endpoint": "https://kc.example.com/realms/mcp/protocol/openid-connect/auth",
        "authorization_response_iss_parameter_supported": true,
    });
    let body = upstream.to_string();
    assert_eq!(
        adapt_metadata(&keycloak(), body.as_bytes(), &gateway()),
        Err(ISS_WITHOUT_PASSAGE)
    );
    let reply = finish(
        &keycloak(),
        &IdpCallKind::Metadata(gateway()),
        IdpAnswer::Response {
            status: 200,
            content_type: None,
            body: body.as_bytes(),
        },
    );
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("gatewayPrefix"), "{}", reply.body);
    // Through a passage the login's redirect is rewritten, so the flag stays as it is.
    let doc = adapt_metadata(&passage(), body.as_bytes(), &gateway()).unwrap();
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["issuer"], RESOURCE);
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    // A provider that does not send iss (false or absent) is fronted as before.
    for flag in [json!(false), Value::Null] {
        let mut doc = upstream.clone();
        doc["authorization_response_iss_parameter_supported"] = flag;
        assert!(adapt_metadata(&keycloak(), doc.to_string().as_bytes(), &gateway()).is_ok());
    }
}

#[test]
fn auth0_authorization_endpoint_gets_exactly_one_encoded_audience() {
    let auth0 = config(
        json!({"auth0": {}}),
        json!({"audiences": ["https://api.example.com/mcp tools&x"]}),
    );
    for (endpoint, expected) in [
        (
            "https://t.auth0.com/authorize",
            "https://t.auth0.com/authorize?audience=https%3A%2F%2Fapi.example.com%2Fmcp%20tools%26x",
        ),
        (
            "https://t.auth0.com/authorize?connection=gh&audience=old",
            "https://t.auth0.com/authorize?connection=gh&audience=https%3A%2F%2Fapi.example.com%2Fmcp%20tools%26x",
        ),
    ] {
        let upstream =
            json!({"issuer": "https://t.auth0.com/", "authorization_endpoint": endpoint});
        let doc = adapt_metadata(&auth0, upstream.to_string().as_bytes(), &gateway()).unwrap();
        let doc: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(doc["authorization_endpoint"], expected);
        // No clientId and not Keycloak: the provider's own registration stays advertised.
        assert!(doc.get("registration_endpoint").is_none());
    }
    assert_eq!(
        with_query_param("https://h/a?b=1#frag", "audience", "x"),
        "https://h/a?b=1&audience=x#frag"
    );
}

#[test]
fn bad_upstream_answers_become_gateway_errors() {
    let config = keycloak();
    let kind = IdpCallKind::Metadata(gateway());
    let cases = [
        (
            IdpAnswer::Response {
                status: 200,
                content_type: None,
                body: b"not json",
            },
            502,
        ),
        (
            IdpAnswer::Response {
                status: 200,
                content_type: None,
                body: b"[1]",
            },
            502,
        ),
        (
            IdpAnswer::Response {
                status: 404,
                content_type: None,
                body: b"{}",
            },
            502,
        ),
        (IdpAnswer::Unavailable("timeout"), 503),
        // Envoy's own answers for an unreachable or timed-out provider.
        (
            IdpAnswer::Response {
                status: 503,
                content_type: Some("text/plain"),
                body: b"upstream connect error or disconnect/reset before headers",
            },
            503,
        ),
        (
            IdpAnswer::Response {
                status: 504,
                content_type: Some("text/plain"),
                body: b"upstream request timeout",
            },
            503,
        ),
    ];
    for (answer, status) in cases {
        let reply = finish(&config, &kind, answer);
        assert_eq!(reply.status, status);
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    let huge = vec![b' '; MAX_METADATA_BYTES + 1];
    assert!(adapt_metadata(&config, &huge, &gateway()).is_err());
}

#[test]
fn forwarded_registration_keeps_the_providers_status_and_body() {
    let answer = IdpAnswer::Response {
        status: 201,
        content_type: Some("application/json"),
        body: br#"{"client_id":"abc"}"#,
    };
    let reply = finish(&keycloak(), &IdpCallKind::Registration, answer);
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, r#"{"client_id":"abc"}"#);
    let down = finish(
        &keycloak(),
        &IdpCallKind::Registration,
        IdpAnswer::Unavailable("x"),
    );
    assert_eq!(down.status, 503);
    let envoy_text = IdpAnswer::Response {
        status: 503,
        content_type: Some("text/plain"),
        body: b"upstream connect error or disconnect/reset before headers",
    };
    let down = finish(&keycloak(), &IdpCallKind::Registration, envoy_text);
    assert_eq!(down.status, 503);
    let body: Value = serde_json::from_str(&down.body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[test]
fn local_registration_echoes_redirect_uris_per_rfc_7591() {
    let body =
        br#"{"redirect_uris":["http://127.0.0.1:6274/oauth/callback"],"client_name":"Inspector"}"#;
    let reply = local_registration("pre", body, 1_700_000_000);
    assert_eq!(reply.status, 201);
    let doc: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(doc["client_id"], "pre");
    assert_eq!(
        doc["redirect_uris"],
        json!(["http://127.0.0.1:6274/oauth/callback"])
    );
    assert_eq!(doc["client_name"], "Inspector");
    assert_eq!(doc["client_id_issued_at"], 1_700_000_000);
    for bad in [
        &b"{}"[..],
        b"nope",
        br#"{"redirect_uris":[]}"#,
        br#"{"redirect_uris":[1]}"#,
    ] {
        let reply = local_registration("pre", bad, 0);
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn the_gateway_serves_public_keys_only() {
    let mut with_private = jwks(&["rsa"]);
    with_private["keys"][0] = private_jwk("rsa");
    let config = config(
        json!({"keycloak": {"cluster": "kc"}}),
        json!({"jwks": {"inline": with_private}}),
    );
    let KeySource::Inline(keys) = &config.keys else {
        panic!("inline keys")
    };
    for path in [
        "/.well-known/jwks.json",
        "/realms/mcp/protocol/openid-connect/certs",
    ] {
        let decision = decide(
            &config,
            &request("GET", path),
            KeyState::Ready {
                keys,
                may_refetch: false,
            },
            0,
        );
        let Decision::Respond { reply, .. } = decision else {
            panic!("{path} is served by the gateway");
        };
        assert_eq!(reply.status, 200);
        let doc: Value = serde_json::from_str(&reply.body).unwrap();
        let key = &doc["keys"][0];
        assert_eq!(key["kid"], "rsa-1");
        assert!(key.get("n").is_some() && key.get("e").is_some());
        for private in ["d", "p", "q"] {
            assert!(key.get(private).is_none(), "{private} must never be served");
        }
    }
    let Decision::Wait(Wait::FetchKeys { .. }) = decide(
        &config,
        &request("GET", "/.well-known/jwks.json"),
        KeyState::Missing { may_fetch: true },
        0,
    ) else {
        panic!("missing keys are fetched first");
    };
}

#[test]
fn a_post_to_the_key_set_is_refused_without_fetching_keys() {
    let config = config(json!({"keycloak": {"cluster": "kc"}}), json!({}));
    for keys in [
        KeyState::Missing { may_fetch: true },
        KeyState::Missing { may_fetch: false },
    ] {
        let decision = decide(&config, &request("POST", "/.well-known/jwks.json"), keys, 0);
        let Decision::Respond { reply, .. } = decision else {
            panic!("a POST to the key set is answered at once: {decision:?}");
        };
        assert_eq!(reply.status, 405);
    }
}

fn passage() -> Config {
    config(json!({"keycloak": {"gatewayPrefix": "/idp/"}}), json!({}))
}

#[test]
fn passage_paths_go_to_the_provider_with_its_own_path() {
    let config = passage();
    let Decision::Forward { edits, outcome, .. } = ask(
        &config,
        "POST",
        "/idp/realms/mcp/protocol/openid-connect/token?a=b",
    ) else {
        panic!("a passage request is forwarded");
    };
    assert_eq!(outcome, Outcome::Public);
    assert_eq!(
        edits.set,
        [
            (
                ":path".to_string(),
                "/realms/mcp/protocol/openid-connect/token?a=b".to_string()
            ),
            (ROUTE_HEADER.to_string(), ROUTE_TO_PROVIDER.to_string()),
        ]
    );
    assert_eq!(edits.remove, [ROUTE_HEADER]);
}

#[test]
fn keycloaks_theme_files_pass_for_get_only() {
    let config = passage();
    let Decision::Forward { edits, .. } = ask(
        &config,
        "GET",
        "/idp/resources/bn3j4/login/keycloak.v2/css/styles.css",
    ) else {
        panic!("a theme file is forwarded");
    };
    assert_eq!(
        edits.set[0].1,
        "/resources/bn3j4/login/keycloak.v2/css/styles.css"
    );
    for (method, path) in [
        ("POST", "/idp/resources/bn3j4/login/x.css"),
        ("GET", "/idp/resources/"),
        ("GET", "/idp/resources/../admin/master/console"),
        ("GET", "/idp/resourcesx/a.css"),
        ("GET", "/resources/bn3j4/login/x.css"),
    ] {
        let Decision::Respond { reply, .. } = ask(&config, method, path) else {
            panic!("{method} {path} must stay protected");
        };
        assert_eq!(reply.status, 401, "{method} {path}");
    }
    // Not for other providers.
    let oidc = config_with(json!({"oidc": {"gatewayPrefix": "/idp/"}}));
    let Decision::Respond { reply, .. } = ask(&oidc, "GET", "/idp/resources/a/b.css") else {
        panic!("no theme passage for oidc");
    };
    assert_eq!(reply.status, 401);
}

fn config_with(provider: Value) -> Config {
    config(provider, json!({}))
}

#[test]
fn nothing_outside_the_issuers_subtree_passes() {
    let config = passage();
    for path in [
        "/idp/realms/mcp",
        "/idp/realms/mcp/",
        "/idp/realms/mcpx/protocol",
        "/idp/realms/other/protocol/openid-connect/token",
        "/idp/admin/master/console",
        "/idp/realms/mcp/../../admin/master/console",
        "/idp/realms/mcp/%2e%2e/%2e%2e/admin",
        "/idp/realms/mcp//x",
        "/idp/realms/mcp/x;/../../admin",
        "/realms/mcp/protocol/openid-connect/token",
        "/idpx/realms/mcp/protocol/openid-connect/token",
    ] {
        let Decision::Respond { reply, .. } = ask(&config, "GET", path) else {
            panic!("{path} must stay protected");
        };
        assert_eq!(reply.status, 401, "{path}");
    }
}

#[test]
fn only_the_filter_sets_the_route_header() {
    let optional = config(
        json!({"keycloak": {"gatewayPrefix": ""}}),
        json!({"mode": "optional"}),
    );
    let mut sneaky = request("GET", "/mcp");
    sneaky
        .headers
        .push((ROUTE_HEADER.into(), ROUTE_TO_PROVIDER.into()));
    let Decision::Forward { edits, .. } = decide(
        &optional,
        &sneaky,
        KeyState::Missing { may_fetch: false },
        0,
    ) else {
        panic!("optional mode forwards a request without a token");
    };
    assert_eq!(edits.remove, [ROUTE_HEADER]);
    assert!(edits.set.is_empty());
    // Without a passage, the header means nothing and costs no edit.
    let plain = config(json!({"keycloak": {}}), json!({"mode": "optional"}));
    let Decision::Forward { edits, .. } =
        decide(&plain, &sneaky, KeyState::Missing { may_fetch: false }, 0)
    else {
        panic!("optional mode forwards a request without a token");
    };
    assert!(edits.remove.is_empty());
}

#[test]
fn metadata_endpoints_under_the_issuer_move_into_the_passage() {
    let upstream = json!({
        "issuer": "https://kc.example.com/realms/mcp",
        "authorization_endpoint": "https://kc.example.com/realms/mcp/protocol/openid-connect/auth",
        "token_endpoint": "https://kc.example.com/realms/mcp/protocol/openid-connect/token",
        "jwks_uri": "https://kc.example.com/realms/mcp/protocol/openid-connect/certs",
        "end_session_endpoint": "https://other.example.com/realms/mcp/logout",
        "service_documentation": "https://kc.example.com/realms/mcp/docs",
        "introspection_endpoint": "https://kc.example.com/realms/mcpx/introspect",
    });
    let doc = adapt_metadata(&passage(), upstream.to_string().as_bytes(), &gateway()).unwrap();
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let base = "https://gw/idp/realms/mcp/protocol/openid-connect";
    assert_eq!(doc["authorization_endpoint"], format!("{base}/auth"));
    assert_eq!(doc["token_endpoint"], format!("{base}/token"));
    assert_eq!(doc["jwks_uri"], format!("{base}/certs"));
    assert_eq!(doc["registration_endpoint"], "https://gw/reg");
    for untouched in [
        "end_session_endpoint",
        "service_documentation",
        "introspection_endpoint",
    ] {
        assert_eq!(doc[untouched], upstream[untouched], "{untouched}");
    }
}

#[test]
fn gateway_prefix_errors_name_the_field() {
    let cases = [
        (
            json!({"keycloak": {"gatewayPrefix": "idp"}}),
            "must be a path starting with /",
        ),
        (
            json!({"keycloak": {"gatewayPrefix": "/a/../b"}}),
            "must not contain empty or dot segments",
        ),
        (
            json!({"keycloak": {"gatewayPrefix": "/a%2fb"}}),
            "must be a plain path (no escapes, query, fragment or parameters)",
        ),
        (
            json!({"keycloak": {"gatewayPrefix": "/.well-known"}}),
            "must not open paths under /.well-known/",
        ),
    ];
    for (provider, expected) in cases {
        let raw = json!({
            "issuer": "https://kc.example.com/realms/mcp",
            "jwks": {"cluster": "idp"},
            "provider": provider,
            "resourceMetadata": {"resource": RESOURCE},
        });
        let err = Config::from_json(raw.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("provider.keycloak.gatewayPrefix: {expected}"));
    }
    let root_issuer = json!({
        "issuer": "https://idp.example.com",
        "jwks": {"cluster": "idp"},
        "provider": {"oidc": {"gatewayPrefix": "/"}},
        "resourceMetadata": {"resource": RESOURCE},
    });
    let err = Config::from_json(root_issuer.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("provider.oidc.gatewayPrefix: must not be empty"),
        "{err}"
    );
    let no_resource = json!({
        "issuer": "https://idp.example.com/realms/mcp",
        "audiences": ["api"],
        "jwks": {"cluster": "idp"},
        "provider": {"keycloak": {"gatewayPrefix": ""}},
    });
    let err = Config::from_json(no_resource.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "provider.keycloak.gatewayPrefix: needs resourceMetadata.resource, which names the gateway's issuer"
    );
    let covers_resource = json!({
        "issuer": "https://idp.example.com",
        "jwks": {"cluster": "idp"},
        "provider": {"oidc": {"gatewayPrefix": "/mcp"}},
        "resourceMetadata": {"resource": "https://mcp.example.com/mcp/v1"},
    });
    let err = Config::from_json(covers_resource.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "provider.oidc.gatewayPrefix: opens the MCP resource's own path to the provider"
    );
}
