use serde_json::{Value, json};

use super::*;
use crate::core::config::KeySource;
use crate::core::decision::Denial;
use crate::core::jwks::KeySet;
use crate::core::reply::HeaderEdits;
use crate::core::testkit::{ISSUER, NOW, claims, claims_with, jwks, mint};

const OTHER_ISSUER: &str = "https://login.example.org";
const KC_ISSUER: &str = "https://kc.example.com/realms/b";
const FILES: &str = "https://mcp.example.com/files/mcp";
const SEARCH: &str = "https://mcp.example.com/search/mcp";

fn plugin(raw: &Value) -> Plugin {
    Plugin::from_json(raw.to_string().as_bytes()).expect("test config is valid")
}

fn load_error(raw: &Value) -> String {
    match Plugin::from_json(raw.to_string().as_bytes()) {
        Ok(_) => panic!("{raw} should be refused"),
        Err(err) => err.to_string(),
    }
}

/// `files` (one issuer, inline RSA keys) at /files, `search` (two issuers: ISSUER with EC keys,
/// OTHER_ISSUER with RSA keys and its own claim rules) at /search.
fn two_servers() -> Value {
    json!({
        "servers": [
            {
                "name": "files",
                "match": {"hosts": ["mcp.example.com"], "pathPrefix": "/files"},
                "issuer": ISSUER,
                "jwks": {"inline": jwks(&["rsa"])},
                "resourceMetadata": {"resource": FILES}
            },
            {
                "name": "search",
                "match": {"pathPrefix": "/search/"},
                "issuers": [
                    {"issuer": ISSUER, "jwks": {"inline": jwks(&["ec"])}},
                    {"issuer": OTHER_ISSUER, "jwks": {"inline": jwks(&["rsa"])},
                     "jwtValidationOptions": {"requiredClaims": ["exp", "tenant"]}}
                ],
                "resourceMetadata": {"resource": SEARCH},
                "mode": "strict"
            }
        ]
    })
}

fn request(authority: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        scheme: "https".into(),
        authority: authority.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn at(path: &str) -> Request {
    request("mcp.example.com", path, &[])
}

fn bearer(path: &str, token: &str) -> Request {
    request(
        "mcp.example.com",
        path,
        &[("authorization", &format!("Bearer {token}"))],
    )
}

fn target(server: usize, issuer: usize) -> Target {
    Target { server, issuer }
}

fn selected(plugin: &Plugin, request: &Request) -> Option<Target> {
    plugin.select(request, None).ok()
}

/// The selection, with an answer's decision only.
fn select(plugin: &Plugin, request: &Request, route: Option<&str>) -> Result<Target, Final> {
    plugin
        .select(request, route)
        .map_err(|answered| answered.decision)
}

fn refused(plugin: &Plugin, request: &Request) -> (LocalReply, Outcome) {
    match select(plugin, request, None) {
        Err(Decision::Respond { reply, outcome }) => (reply, outcome),
        other => panic!("expected a local reply, got {other:?}"),
    }
}

fn keys_of(config: &Config) -> &KeySet {
    match &config.keys {
        KeySource::Inline(set) => set,
        KeySource::Remote(_) => panic!("inline keys expected"),
    }
}

/// Decides `request` the way the host does: select, then that issuer's keys and cache.
fn decide_with(plugin: &Plugin, caches: &mut TokenCaches, request: &Request) -> Decision {
    let chosen = match select(plugin, request, None) {
        Ok(chosen) => chosen,
        Err(answer) => return answer.into(),
    };
    let config = plugin
        .config(chosen)
        .expect("a selected target has a config");
    let state = KeyState::Ready {
        keys: keys_of(config),
        may_refetch: false,
    };
    plugin.decide(chosen, request, state, caches, NOW)
}

fn token(issuer: &str, audience: &str, key: &str) -> String {
    let mut body = claims();
    body["iss"] = json!(issuer);
    body["aud"] = json!(audience);
    mint(key, &body)
}

fn www_authenticate(reply: &LocalReply) -> &str {
    reply
        .headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .map_or("", |(_, v)| v.as_str())
}

// --- the single-server shape ---------------------------------------------------------

#[test]
fn the_single_server_shape_is_one_server_that_takes_every_request() {
    let plugin = plugin(&json!({
        "issuer": ISSUER,
        "audiences": ["https://mcp.example.com/mcp"],
        "jwks": {"inline": jwks(&["rsa"])},
    }));
    assert_eq!(plugin.servers.len(), 1);
    for path in [
        "/mcp",
        "/",
        "/a/../b",
        "/%2e%2e/x",
        "//x",
        "/.well-known/jwks.json",
    ] {
        assert_eq!(selected(&plugin, &at(path)), Some(target(0, 0)), "{path}");
    }
    assert_eq!(
        selected(&plugin, &request("anything.example", "/x", &[])),
        Some(target(0, 0))
    );
}

#[test]
fn the_single_server_shape_may_list_several_issuers() {
    let plugin = plugin(&json!({
        "issuers": [
            {"issuer": ISSUER, "jwks": {"inline": jwks(&["rsa"])}},
            {"issuer": OTHER_ISSUER, "jwks": {"inline": jwks(&["ec"])}},
        ],
        "audiences": ["https://mcp.example.com/mcp"],
    }));
    let from_other = token(OTHER_ISSUER, "https://mcp.example.com/mcp", "ec");
    assert_eq!(
        selected(&plugin, &bearer("/mcp", &from_other)),
        Some(target(0, 1))
    );
    // One server takes every path, as a single-issuer config does: nothing to normalise into.
    assert_eq!(
        selected(&plugin, &bearer("/a/../mcp", &from_other)),
        Some(target(0, 1))
    );
    let (reply, _) = refused(
        &plugin,
        &bearer("/mcp", &token("https://evil.example", "x", "ec")),
    );
    assert_eq!(reply.status, 401);
}

// --- selection by match --------------------------------------------------------------

#[test]
fn hosts_match_ignoring_case_and_an_entry_without_a_port_takes_any_port() {
    let plugin = plugin(&json!({
        "servers": [
            {"name": "a", "match": {"hosts": ["MCP.example.com"]}, "issuer": ISSUER,
             "audiences": [], "jwks": {"inline": jwks(&["rsa"])}},
            {"name": "b", "match": {"hosts": ["other.example.com:8443"]}, "issuer": ISSUER,
             "audiences": [], "jwks": {"inline": jwks(&["rsa"])}},
        ]
    }));
    for authority in ["mcp.example.com", "Mcp.Example.COM", "mcp.example.com:8080"] {
        assert_eq!(
            selected(&plugin, &request(authority, "/x", &[])),
            Some(target(0, 0)),
            "{authority}"
        );
    }
    assert_eq!(
        selected(&plugin, &request("OTHER.example.com:8443", "/x", &[])),
        Some(target(1, 0))
    );
    for authority in [
        "other.example.com",
        "other.example.com:443",
        "mcp.example.com.evil",
        "xmcp.example.com",
    ] {
        assert_eq!(
            selected(&plugin, &request(authority, "/x", &[])),
            None,
            "{authority}"
        );
    }
}

#[test]
fn path_prefixes_match_whole_segments() {
    let plugin = plugin(&two_servers());
    for path in [
        "/files",
        "/files/",
        "/files/mcp",
        "/files?q=1",
        "/files/a/b?c",
    ] {
        assert_eq!(selected(&plugin, &at(path)), Some(target(0, 0)), "{path}");
    }
    // `/search/` was configured with a trailing slash: the same segment rule.
    for path in ["/search", "/search/mcp"] {
        assert_eq!(
            selected(&plugin, &at(path)).map(|t| t.server),
            Some(1),
            "{path}"
        );
    }
    for path in ["/filesx", "/files-2/mcp", "/Files/mcp", "/", "/searching"] {
        assert_eq!(selected(&plugin, &at(path)), None, "{path}");
    }
    // files matches only its host; search any host.
    assert_eq!(
        selected(&plugin, &request("b.example", "/files/mcp", &[])),
        None
    );
    assert_eq!(
        selected(&plugin, &request("b.example", "/search/mcp", &[])).map(|t| t.server),
        Some(1)
    );
}

#[test]
fn an_unmatched_request_is_refused_with_404_by_default_and_counted() {
    let plugin = plugin(&two_servers());
    let (reply, outcome) = refused(&plugin, &bearer("/other", "whatever"));
    assert_eq!(reply.status, 404);
    let body: Value = serde_json::from_str(&reply.body).expect("a JSON body");
    assert_eq!(body["error"], "not_found");
    assert_eq!(outcome, Outcome::Unselected(Unselected::NoMatch));
    assert_eq!(
        outcome.metric(),
        Some(crate::core::metric::Metric::Unmatched)
    );
}

#[test]
fn unmatched_pass_forwards_untouched_with_the_credential() {
    let mut raw = two_servers();
    raw["unmatched"] = json!("pass");
    let plugin = plugin(&raw);
    match select(&plugin, &bearer("/other", "tok"), None) {
        Err(Decision::Forward {
            edits,
            outcome,
            passage,
        }) => {
            assert_eq!(edits, HeaderEdits::default(), "nothing removed or set");
            assert_eq!(outcome, Outcome::Unselected(Unselected::NoMatch));
            assert!(passage.is_none());
        }
        other => panic!("expected a forward, got {other:?}"),
    }
}

#[test]
fn a_path_that_is_not_plain_is_never_selected_nor_passed() {
    let mut raw = two_servers();
    raw["unmatched"] = json!("pass");
    let plugin = plugin(&raw);
    for path in [
        "/files/../search/mcp",
        "/files/./mcp",
        "/other/../files/mcp",
        "/files/%2e%2e/search/mcp",
        "/files%2Fmcp",
        "/files/%5c..%5csearch",
        "/files//mcp",
        "//files/mcp",
        "/files;x/mcp",
        "/files\\..\\search",
    ] {
        let (reply, outcome) = refused(&plugin, &at(path));
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(outcome, Outcome::Unselected(Unselected::NotPlain), "{path}");
    }
    // The query is not the path: escapes there are fine.
    assert_eq!(
        selected(&plugin, &at("/files/mcp?q=%2e%2e")),
        Some(target(0, 0))
    );
}

// --- load-time refusals ---------------------------------------------------------------

#[test]
fn overlapping_servers_are_refused_naming_both() {
    let server = |name: &str, matcher: Value| {
        json!({"name": name, "match": matcher, "issuer": ISSUER, "audiences": [],
               "jwks": {"inline": jwks(&["rsa"])}})
    };
    let cases = [
        (json!({"pathPrefix": "/a"}), json!({"pathPrefix": "/a/b"})),
        (json!({"pathPrefix": "/a/"}), json!({"pathPrefix": "/a"})),
        (json!({}), json!({"pathPrefix": "/a"})),
        (
            json!({"hosts": ["x.example"]}),
            json!({"hosts": ["X.example:8080"]}),
        ),
        (
            json!({"hosts": ["x.example"], "pathPrefix": "/a"}),
            json!({"pathPrefix": "/a"}),
        ),
    ];
    for (first, second) in cases {
        let raw = json!({"servers": [server("one", first.clone()), server("two", second.clone())]});
        let err = load_error(&raw);
        assert!(
            err.starts_with("servers[1].match: servers[1] (\"two\") and servers[0] (\"one\")"),
            "{first} / {second}: {err}"
        );
    }
    // Not overlaps: other segments, or hosts that cannot both match.
    for (first, second) in [
        (json!({"pathPrefix": "/a"}), json!({"pathPrefix": "/ab"})),
        (
            json!({"hosts": ["x.example"]}),
            json!({"hosts": ["y.example"]}),
        ),
        (
            json!({"hosts": ["x.example:1"]}),
            json!({"hosts": ["x.example:2"]}),
        ),
    ] {
        let raw = json!({"servers": [server("one", first), server("two", second)]});
        Plugin::from_json(raw.to_string().as_bytes()).expect("no overlap");
    }
}

/// A server fronting Keycloak realm `realm` through `/kc`, with the given resource.
fn fronted(name: &str, prefix: &str, realm: &str, resource: &str) -> Value {
    json!({
        "name": name,
        "match": {"pathPrefix": prefix},
        "issuer": format!("https://kc.example.com/realms/{realm}"),
        "jwks": {"inline": jwks(&["rsa"])},
        "provider": {"keycloak": {"cluster": "kc", "gatewayPrefix": "/kc"}},
        "resourceMetadata": {"resource": resource}
    })
}

#[test]
fn two_servers_cannot_own_one_path() {
    // One resource for two servers: the same metadata path.
    let raw = json!({"servers": [
        fronted("a", "/files", "a", FILES),
        {"name": "b", "match": {"pathPrefix": "/search"}, "issuer": ISSUER,
         "jwks": {"inline": jwks(&["rsa"])}, "resourceMetadata": {"resource": FILES}},
    ]});
    assert!(
        load_error(&raw).starts_with(
            "servers[1].resourceMetadata.resource: /.well-known/oauth-protected-resource/files/mcp \
             is also served for servers[0]"
        ),
        "{}",
        load_error(&raw)
    );
    // One realm fronted twice under one gatewayPrefix: the same passage.
    let raw = json!({"servers": [
        fronted("a", "/files", "a", FILES),
        fronted("b", "/search", "a", SEARCH),
    ]});
    let err = load_error(&raw);
    assert!(err.starts_with("servers[1].provider.keycloak"), "{err}");
    assert!(
        err.contains("servers[0] (servers[0].provider.keycloak"),
        "{err}"
    );
    // Two realms of one Keycloak under one prefix share only the theme files: accepted.
    let plugin = plugin(&json!({"servers": [
        fronted("a", "/files", "a", FILES),
        fronted("b", "/search", "b", SEARCH),
    ]}));
    let passage = |path: &str| {
        let mut r = at(path);
        r.method = "GET".into();
        selected(&plugin, &r)
    };
    assert_eq!(
        passage("/kc/realms/a/protocol/openid-connect/auth"),
        Some(target(0, 0))
    );
    assert_eq!(
        passage("/kc/realms/b/protocol/openid-connect/auth"),
        Some(target(1, 0))
    );
    assert_eq!(passage("/kc/resources/x/login.css"), Some(target(0, 0)));
    // Well-known documents go to the server that owns them, whatever its prefix.
    for (path, server) in [
        ("/.well-known/oauth-protected-resource/files/mcp", 0),
        ("/.well-known/oauth-protected-resource/search/mcp", 1),
        ("/.well-known/oauth-authorization-server/files/mcp", 0),
        ("/.well-known/openid-configuration/search/mcp", 1),
        (
            "/.well-known/oauth-authorization-server/search/mcp/client-registration",
            1,
        ),
        ("/realms/b/protocol/openid-connect/certs", 1),
    ] {
        assert_eq!(passage(path), Some(target(server, 0)), "{path}");
    }
}

#[test]
fn config_errors_name_the_server_and_the_field() {
    let with = |i: usize, key: &str, value: Value| {
        let mut raw = two_servers();
        raw["servers"][i][key] = value;
        raw
    };
    let cases = [
        (
            with(1, "match", json!({"pathPrefix": "search"})),
            "servers[1].match.pathPrefix: must be a plain path",
        ),
        (
            with(1, "match", json!({"pathPrefix": "/a/../search"})),
            "servers[1].match.pathPrefix: must be a plain path",
        ),
        (
            with(0, "match", json!({"hosts": []})),
            "servers[0].match.hosts: must list at least one host",
        ),
        (
            with(0, "match", json!({"hosts": ["ok.example", "bad host"]})),
            "servers[0].match.hosts[1]: must be a host name",
        ),
        (
            with(0, "match", json!({"host": ["x"]})),
            "servers[0].match.host: unknown field",
        ),
        (
            with(1, "name", json!("files")),
            "servers[1].name: \"files\" is also servers[0]'s name",
        ),
        (
            with(1, "name", json!("a b")),
            "servers[1].name: must be 1 to 64 characters",
        ),
        (
            with(1, "name", Value::Null),
            "servers[1].name: required in servers[]",
        ),
        (
            with(
                1,
                "issuers",
                json!([{"issuer": ISSUER, "jwks": {"url": "idp/certs", "cluster": "idp"}}]),
            ),
            "servers[1].issuers[0].jwks.url: not an absolute http(s) URL",
        ),
        (
            with(
                1,
                "issuers",
                json!([
                    {"issuer": ISSUER, "jwks": {"inline": jwks(&["ec"])}},
                    {"issuer": OTHER_ISSUER, "jwks": {"inline": jwks(&["rsa"])},
                     "jwtValidationOptions": {"clockSkewSeconds": 99999}},
                ]),
            ),
            "servers[1].issuers[1].jwtValidationOptions.clockSkewSeconds: must be at most",
        ),
        (
            with(
                1,
                "issuers",
                json!([
                    {"issuer": ISSUER, "jwks": {"inline": jwks(&["ec"])}},
                    {"issuer": ISSUER, "jwks": {"inline": jwks(&["rsa"])}},
                ]),
            ),
            "servers[1].issuers[1].issuer: listed twice",
        ),
        (
            with(
                1,
                "issuers",
                json!([
                    {"issuer": KC_ISSUER, "jwks": {"inline": jwks(&["ec"])},
                     "provider": {"keycloak": {"cluster": "kc"}}},
                    {"issuer": "https://kc.example.com/realms/c", "jwks": {"inline": jwks(&["rsa"])},
                     "provider": {"keycloak": {"cluster": "kc"}}},
                ]),
            ),
            "servers[1].issuers[1].provider: only one issuer per server can be fronted",
        ),
        (
            with(1, "issuers", json!([])),
            "servers[1].issuers: must list at least one issuer",
        ),
        (
            with(1, "issuer", json!(ISSUER)),
            "servers[1].issuers: not allowed together with issuer",
        ),
        (
            with(1, "jwks", json!({"inline": jwks(&["rsa"])})),
            "servers[1].jwks: set it per issuer inside issuers[]",
        ),
        (
            with(0, "verifiedTokenCache", json!({"capacity": 10})),
            "servers[0].verifiedTokenCache: set it at the top level",
        ),
        (
            with(0, "color", json!("red")),
            "servers[0].color: unknown field `color`",
        ),
        (
            with(0, "issuer", Value::Null),
            "servers[0]: missing field `issuer` (or `issuers`)",
        ),
    ];
    for (raw, expected) in cases {
        let err = load_error(&raw);
        assert!(
            err.starts_with(expected),
            "{err:?} should start with {expected:?}"
        );
    }
    let top = |key: &str, value: Value| {
        let mut raw = two_servers();
        raw[key] = value;
        load_error(&raw)
    };
    assert!(
        top("unmatched", json!("maybe")).starts_with("unmatched: must be \"reject\" or \"pass\"")
    );
    assert!(
        top("serverSelection", json!("header"))
            .starts_with("serverSelection: must be \"match\" or \"routeMetadata\"")
    );
    assert!(
        top(
            "verifiedTokenCache",
            json!({"capacity": 0, "maxAgeSeconds": 0})
        )
        .starts_with("verifiedTokenCache.maxAgeSeconds: must be between")
    );
    assert!(top("servers", json!([])).starts_with("servers: must list at least one server"));
    assert!(top("issuer", json!(ISSUER)).starts_with("issuer: unknown field"));
    assert!(top("servers", json!({})).starts_with("servers: must be an array"));
    assert!(
        top("verifiedTokenCache", json!({"size": 1}))
            .starts_with("verifiedTokenCache.size: unknown field")
    );
    let single = json!({"name": "x", "issuer": ISSUER, "audiences": [],
                        "jwks": {"inline": jwks(&["rsa"])}});
    assert!(load_error(&single).starts_with("name: only allowed inside servers[]"));
}

// --- issuers --------------------------------------------------------------------------

#[test]
fn the_tokens_iss_picks_the_issuer_and_its_keys_and_rules() {
    let plugin = plugin(&two_servers());
    let mut caches = TokenCaches::new(&plugin);
    let first = token(ISSUER, SEARCH, "ec");
    assert_eq!(
        selected(&plugin, &bearer("/search/mcp", &first)),
        Some(target(1, 0))
    );
    assert!(matches!(
        decide_with(&plugin, &mut caches, &bearer("/search/mcp", &first)),
        Decision::Forward {
            outcome: Outcome::Allowed { .. },
            ..
        }
    ));
    // OTHER_ISSUER's own rule: `tenant` is required of its tokens, not of ISSUER's.
    let mut body = claims();
    body["iss"] = json!(OTHER_ISSUER);
    body["aud"] = json!(SEARCH);
    let without_tenant = mint("rsa", &body);
    assert_eq!(
        selected(&plugin, &bearer("/search/mcp", &without_tenant)),
        Some(target(1, 1))
    );
    match decide_with(
        &plugin,
        &mut caches,
        &bearer("/search/mcp", &without_tenant),
    ) {
        Decision::Respond { outcome, .. } => assert_eq!(
            outcome,
            Outcome::Denied(Denial::Token(verify::Rejection::MissingClaim(
                "tenant".into()
            )))
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    body["tenant"] = json!("t1");
    let with_tenant = mint("rsa", &body);
    assert!(matches!(
        decide_with(&plugin, &mut caches, &bearer("/search/mcp", &with_tenant)),
        Decision::Forward {
            outcome: Outcome::Allowed { .. },
            ..
        }
    ));
    // ISSUER's token signed with OTHER_ISSUER's key: checked with ISSUER's keys, refused.
    let wrong_key = token(ISSUER, SEARCH, "rsa");
    assert!(matches!(
        decide_with(&plugin, &mut caches, &bearer("/search/mcp", &wrong_key)),
        Decision::Respond { .. }
    ));
}

#[test]
fn an_unknown_issuer_is_refused_before_any_key_work() {
    // Remote keys nobody fetched yet: any key work would be a FetchKeys wait.
    let plugin = plugin(&json!({"servers": [{
        "name": "search",
        "issuers": [
            {"issuer": ISSUER, "jwks": {"url": "https://idp.example.com/jwks", "cluster": "idp"}},
            {"issuer": OTHER_ISSUER, "jwks": {"url": "https://login.example.org/jwks", "cluster": "login"}},
        ],
        "resourceMetadata": {"resource": SEARCH},
    }]}));
    for iss in [Some(json!("https://evil.example")), Some(json!(7)), None] {
        let stranger = mint("rsa", &claims_with("iss", iss.clone()));
        let (reply, outcome) = refused(&plugin, &bearer("/search/mcp", &stranger));
        assert_eq!(reply.status, 401, "{iss:?}");
        let challenge = www_authenticate(&reply);
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(
            challenge.contains("error_description=\"unknown issuer\""),
            "{challenge}"
        );
        assert_eq!(
            outcome,
            Outcome::Denied(Denial::Token(verify::Rejection::UnknownIssuer))
        );
    }
    // A known issuer goes on to its keys (a fetch, here), and so does garbage (whose
    // structure check refuses it without one).
    let known = token(OTHER_ISSUER, SEARCH, "rsa");
    let chosen = plugin
        .select(&bearer("/search/mcp", &known), None)
        .expect("a known issuer is selected");
    assert_eq!(chosen, target(0, 1));
    let mut caches = TokenCaches::new(&plugin);
    let missing = KeyState::Missing { may_fetch: true };
    assert!(matches!(
        plugin.decide(
            chosen,
            &bearer("/search/mcp", &known),
            missing,
            &mut caches,
            NOW
        ),
        Decision::Wait(decision::Wait::FetchKeys { .. })
    ));
    assert_eq!(
        selected(&plugin, &bearer("/search/mcp", "not.a.token")),
        Some(target(0, 0))
    );
}

#[test]
fn permissive_mode_passes_an_unknown_issuer_as_any_invalid_token() {
    let mut raw = two_servers();
    raw["servers"][1]["mode"] = json!("permissive");
    let plugin = plugin(&raw);
    let stranger = token("https://evil.example", SEARCH, "rsa");
    let answered = plugin
        .select(&bearer("/search/mcp", &stranger), None)
        .expect_err("an unknown issuer is answered");
    // Made with the server's settings, so mcpAuthorization inspects what permissive mode passes.
    assert_eq!(answered.target, Some(target(1, 0)));
    match answered.decision {
        Decision::Forward { outcome, .. } => assert_eq!(
            outcome,
            Outcome::Unauthenticated {
                denial: Some(Denial::Token(verify::Rejection::UnknownIssuer))
            }
        ),
        other => panic!("expected a forward, got {other:?}"),
    }
}

#[test]
fn a_token_cached_for_one_server_is_not_an_answer_for_another() {
    // Both servers trust ISSUER with the same keys; only the audience tells them apart.
    let raw = json!({"servers": [
        {"name": "a", "match": {"pathPrefix": "/files"}, "issuer": ISSUER,
         "jwks": {"inline": jwks(&["rsa"])}, "resourceMetadata": {"resource": FILES}},
        {"name": "b", "match": {"pathPrefix": "/search"}, "issuer": ISSUER,
         "jwks": {"inline": jwks(&["rsa"])}, "resourceMetadata": {"resource": SEARCH}},
    ]});
    let plugin = plugin(&raw);
    let mut caches = TokenCaches::new(&plugin);
    let for_a = token(ISSUER, FILES, "rsa");
    for _ in 0..2 {
        assert!(matches!(
            decide_with(&plugin, &mut caches, &bearer("/files/mcp", &for_a)),
            Decision::Forward {
                outcome: Outcome::Allowed { .. },
                ..
            }
        ));
    }
    assert_eq!(caches.hits(), 1, "the second use came from a's cache");
    match decide_with(&plugin, &mut caches, &bearer("/search/mcp", &for_a)) {
        Decision::Respond { reply, outcome } => {
            assert_eq!(reply.status, 401);
            assert!(matches!(
                outcome,
                Outcome::Denied(Denial::Token(verify::Rejection::AudienceMismatch { .. }))
            ));
        }
        other => panic!("a's token reached b: {other:?}"),
    }
    assert_eq!(caches.hits(), 1, "b's answer did not come from a cache");
}

// --- per-server documents ---------------------------------------------------------------

fn document(plugin: &Plugin, path: &str) -> Value {
    let mut request = at(path);
    request.method = "GET".into();
    let chosen = plugin.select(&request, None).expect("selected");
    let mut caches = TokenCaches::new(plugin);
    let missing = KeyState::Missing { may_fetch: false };
    match plugin.decide(chosen, &request, missing, &mut caches, NOW) {
        Decision::Respond { reply, .. } => {
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            serde_json::from_str(&reply.body).expect("JSON")
        }
        other => panic!("{path}: {other:?}"),
    }
}

#[test]
fn each_server_serves_its_own_resource_metadata_listing_its_issuers_in_order() {
    let mut raw = two_servers();
    raw["servers"][1]["issuers"] = json!([
        {"issuer": OTHER_ISSUER, "jwks": {"inline": jwks(&["rsa"])}},
        {"issuer": KC_ISSUER, "jwks": {"inline": jwks(&["ec"])},
         "provider": {"keycloak": {"cluster": "kc"}}},
        {"issuer": ISSUER, "jwks": {"inline": jwks(&["ec"])}},
    ]);
    let plugin = plugin(&raw);
    let files = document(&plugin, "/.well-known/oauth-protected-resource/files/mcp");
    assert_eq!(files["resource"], FILES);
    assert_eq!(files["authorization_servers"], json!([ISSUER]));
    let search = document(&plugin, "/.well-known/oauth-protected-resource/search/mcp");
    assert_eq!(search["resource"], SEARCH);
    // The fronted issuer appears as the gateway, in its place.
    assert_eq!(
        search["authorization_servers"],
        json!([OTHER_ISSUER, SEARCH, ISSUER])
    );
    // The fronted issuer's paths go to it, not to the first issuer.
    let mut get = at("/.well-known/oauth-authorization-server/search/mcp");
    get.method = "GET".into();
    assert_eq!(selected(&plugin, &get), Some(target(1, 1)));
    assert_eq!(
        selected(&plugin, &at("/realms/b/protocol/openid-connect/certs")),
        Some(target(1, 1))
    );
    // No server's document at another path: the unmatched answer.
    let (reply, _) = refused(&plugin, &at("/.well-known/oauth-protected-resource/other"));
    assert_eq!(reply.status, 404);
}

// --- route metadata -----------------------------------------------------------------------

#[test]
fn route_metadata_selects_by_name_and_fails_closed_without_one() {
    let mut raw = two_servers();
    raw["serverSelection"] = json!("routeMetadata");
    // Overlaps are the routes' business here, not the filter's.
    raw["servers"][1]["match"] = json!({"pathPrefix": "/files"});
    let plugin = plugin(&raw);
    let request = at("/anything/../at/all");
    assert_eq!(select(&plugin, &request, Some("files")), Ok(target(0, 0)));
    let from_other = {
        let mut body = claims();
        body["iss"] = json!(OTHER_ISSUER);
        mint("rsa", &body)
    };
    assert_eq!(
        select(&plugin, &bearer("/x", &from_other), Some("search")),
        Ok(target(1, 1))
    );
    for name in [None, Some("nope"), Some(""), Some("FILES")] {
        match select(&plugin, &request, name) {
            Err(Decision::Respond { reply, outcome }) => {
                assert_eq!(reply.status, 500, "{name:?}");
                assert_eq!(outcome, Outcome::Unselected(Unselected::NoRouteServer));
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }
}

#[test]
fn one_resource_path_on_two_hosts_is_two_documents() {
    let server = |name: &str, host: &str| {
        json!({"name": name, "match": {"hosts": [host]}, "issuer": ISSUER,
               "jwks": {"inline": jwks(&["rsa"])},
               "resourceMetadata": {"resource": format!("https://{host}/mcp")}})
    };
    let plugin = plugin(&json!({"servers": [server("a", "a.example"), server("b", "b.example")]}));
    let document_at = |host: &str| {
        let mut request = request(host, "/.well-known/oauth-protected-resource/mcp", &[]);
        request.method = "GET".into();
        selected(&plugin, &request)
    };
    assert_eq!(document_at("a.example"), Some(target(0, 0)));
    assert_eq!(document_at("B.example:443"), Some(target(1, 0)));
    assert_eq!(document_at("c.example"), None);
    // Without hosts to tell them apart, the same document path is a clash.
    let mut first = server("a", "a.example");
    first["match"]["pathPrefix"] = json!("/mcp");
    let raw = json!({"servers": [
        first,
        {"name": "b", "match": {"pathPrefix": "/other"}, "issuer": ISSUER,
         "jwks": {"inline": jwks(&["rsa"])}, "resourceMetadata": {"resource": "https://b.example/mcp"}},
    ]});
    let err = load_error(&raw);
    assert!(
        err.starts_with("servers[1].resourceMetadata.resource"),
        "{err}"
    );
}

#[test]
fn caches_that_could_outgrow_the_vm_are_warned_about_at_load() {
    let cache_warning = |p: &Plugin| {
        p.warnings
            .iter()
            .any(|w| w.starts_with("verifiedTokenCache:"))
    };
    // The defaults: 2 servers x 1024 tokens x 8 KiB x 2 is 32 MiB, no warning.
    assert!(!cache_warning(&plugin(&two_servers())));
    let mut big = two_servers();
    big["verifiedTokenCache"] = json!({"capacity": 65536});
    big["servers"][0]["jwtValidationOptions"] = json!({"maxTokenBytes": 65536});
    let loaded = plugin(&big);
    let warning = loaded
        .warnings
        .iter()
        .find(|w| w.starts_with("verifiedTokenCache:"))
        .expect("warned");
    // (64 KiB + 8 KiB) x 2 x 65536 = 9216 MiB.
    assert!(warning.contains("9216 MiB"), "{warning}");
    assert!(
        warning.contains("2 server(s) x capacity 65536"),
        "{warning}"
    );
}
