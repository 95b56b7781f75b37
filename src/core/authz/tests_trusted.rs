//! Unit tests of `trustServerHeaderValidation`: which requests its trusted 2026-07-28 headers
//! forward without the body, and everything the opt-in must not loosen (older or garbage
//! versions, malformed headers, denials, step-ups, list calls).

use serde_json::{Value, json};

use super::rules::Subject;
use super::*;

const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
const V: &str = "2026-07-28";

/// echo and any prompt for everyone; delete_file for admins with both file scopes; sql
/// unless its mirrored region is eu.
fn config(trust: bool) -> McpAuthorization {
    let raw = json!({
        "rules": [
            r#"mcp.tool.name == "echo" || has(mcp.prompt)"#,
            r#"mcp.tool.name == "delete_file" && jwt.roles.contains("admin")"#,
            r#"mcp.tool.name == "sql""#,
            r#"has(mcp.resource) && mcp.resource.uri.startsWith("file:///pub/")"#,
            {"deny": r#"mcp.tool.name == "sql" && mcp.params.region == "eu""#},
        ],
        "requiredScopes": {
            "tools/call:delete_file": ["files:delete", "files:read"],
            "server/discover": ["mcp:use"],
        },
        "trustServerHeaderValidation": trust,
    });
    McpAuthorization::from_raw(serde_json::from_value(raw).expect("raw parses")).expect("valid")
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .collect()
}

/// 2026-07-28 headers for `method` (and `Mcp-Name` when given), plus `extra`.
fn modern(method: &str, name: Option<&str>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers = h(&[("mcp-protocol-version", V), ("mcp-method", method)]);
    if let Some(name) = name {
        headers.push(("mcp-name".into(), name.into()));
    }
    headers.extend(h(extra));
    headers
}

fn admin() -> Value {
    json!({"sub": "root", "scope": "files:delete files:read mcp:use", "roles": ["admin"]})
}

fn plain() -> Value {
    json!({"sub": "alice", "scope": "mcp:use"})
}

fn subject(
    authz: &McpAuthorization,
    claims: Option<Value>,
    headers: &[(String, String)],
) -> Subject {
    let claims = claims.map(|c| match c {
        Value::Object(map) => map,
        _ => panic!("claims are an object"),
    });
    authz.subject(claims.as_ref(), headers)
}

fn step(
    authz: &McpAuthorization,
    claims: Option<Value>,
    headers: &[(String, String)],
) -> HeaderStep {
    let s = subject(authz, claims, headers);
    authz.check_headers(&s, headers, PRM)
}

/// The body a 2026-07-28 client sends with `modern(method, name)`.
fn body(id: u64, method: &str, name: Option<&str>) -> String {
    let mut params = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": V}});
    match (method, name) {
        (m, Some(uri)) if m.starts_with("resources/") => params["uri"] = json!(uri),
        (_, Some(name)) => params["name"] = json!(name),
        _ => {}
    }
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn status(step: &HeaderStep) -> Option<u32> {
    match step {
        HeaderStep::Respond(reply) => Some(reply.status),
        _ => None,
    }
}

#[test]
fn the_opt_in_is_off_by_default_and_a_bool() {
    let parse =
        |raw: Value| serde_json::from_value::<RawMcpAuthorization>(raw).map_err(|e| e.to_string());
    let default = McpAuthorization::from_raw(parse(json!({"rules": ["true"]})).unwrap()).unwrap();
    assert!(!default.trust_server_header_validation);
    assert!(config(true).trust_server_header_validation);
    let Err(refused) = parse(json!({"trustServerHeaderValidation": "yes"})) else {
        panic!("a string is refused")
    };
    assert!(refused.contains("expected a boolean"), "{refused}");
    // Through the whole plugin config the error names the field.
    let plugin = json!({
        "issuer": "https://idp.example.com",
        "jwks": {"url": "https://idp.example.com/jwks", "cluster": "idp"},
        "resourceMetadata": {"resource": "https://mcp.example.com/mcp"},
        "mcpAuthorization": {"trustServerHeaderValidation": 1},
    });
    let Err(error) = crate::core::config::Config::from_json(plugin.to_string().as_bytes()) else {
        panic!("a number is refused")
    };
    let error = error.to_string();
    assert!(
        error.starts_with("mcpAuthorization.trustServerHeaderValidation"),
        "{error}"
    );
}

#[test]
fn allowed_modern_requests_are_forwarded_without_the_body() {
    let authz = config(true);
    for (claims, headers) in [
        (plain(), modern("tools/call", Some("echo"), &[])),
        (admin(), modern("tools/call", Some("delete_file"), &[])),
        (
            plain(),
            modern("tools/call", Some("sql"), &[("mcp-param-region", "us")]),
        ),
        (
            plain(),
            modern(
                "tools/call",
                Some("sql"),
                &[("mcp-param-region", "=?base64?dXM=?=")],
            ),
        ),
        (plain(), modern("prompts/get", Some("greet"), &[])),
        (
            plain(),
            modern("resources/read", Some("file:///pub/a"), &[]),
        ),
        // Methods without a target, whose scopes hold.
        (plain(), modern("server/discover", None, &[])),
        (plain(), modern("subscriptions/listen", None, &[])),
        (plain(), modern("ping", None, &[])),
        (plain(), modern("notifications/cancelled", None, &[])),
        // Removed in 2026-07-28: no target, the server refuses it.
        (
            plain(),
            modern("resources/subscribe", Some("file:///x"), &[]),
        ),
    ] {
        assert_eq!(
            step(&authz, Some(claims), &headers),
            HeaderStep::Forward,
            "{headers:?}"
        );
    }
    // A later revision than the filter knows keeps the 2026-07-28 semantics.
    let later = h(&[
        ("mcp-protocol-version", "2099-01-01"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ]);
    assert_eq!(step(&authz, Some(plain()), &later), HeaderStep::Forward);
}

#[test]
fn without_the_opt_in_an_allowed_modern_call_still_reads_the_body() {
    let authz = config(false);
    let headers = modern("tools/call", Some("echo"), &[]);
    assert!(matches!(
        step(&authz, Some(plain()), &headers),
        HeaderStep::ReadBody(Some(_))
    ));
}

#[test]
fn older_absent_repeated_or_garbage_versions_are_decided_from_the_body() {
    let authz = config(true);
    let named = [("mcp-method", "tools/call"), ("mcp-name", "echo")];
    for versions in [
        vec![],
        vec!["2025-11-25"],
        vec!["2025-06-18"],
        vec!["2026-07-27"],
        vec!["draft"],
        vec!["2026-07-28x"],
        vec!["2026-7-28"],
        vec!["2026-99-99"],
        vec![V, V],
    ] {
        let mut headers = h(&named);
        headers.extend(
            versions
                .iter()
                .map(|v| ("mcp-protocol-version".to_string(), (*v).to_string())),
        );
        assert_eq!(
            step(&authz, Some(plain()), &headers),
            HeaderStep::ReadBody(None),
            "{versions:?}"
        );
        // And the body decides: headers naming echo over a body naming delete_file.
        let s = subject(&authz, Some(plain()), &headers);
        let legacy_body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "delete_file", "arguments": {}}});
        let Verdict::Respond(reply) =
            authz.check_request(&s, None, legacy_body.to_string().as_bytes(), PRM)
        else {
            panic!("denied by the body")
        };
        assert_eq!(reply.status, 403, "{versions:?}"); // the body's tool needs scopes
    }
}

#[test]
fn malformed_modern_headers_stay_400_header_mismatch() {
    let authz = config(true);
    for headers in [
        h(&[("mcp-protocol-version", V)]), // Mcp-Method absent
        modern("tools/call", None, &[]),   // Mcp-Name absent
        modern("resources/read", None, &[]),
        modern("tools/call", Some("=?base64?***?="), &[]),
        modern(
            "tools/call",
            Some("echo"),
            &[("mcp-param-region", "=?base64?/w==?=")],
        ),
        modern("tools/call", Some("echo"), &[("mcp-method", "tools/call")]), // repeated
    ] {
        let HeaderStep::Respond(reply) = step(&authz, Some(plain()), &headers) else {
            panic!("answered at the headers: {headers:?}")
        };
        assert_eq!(reply.status, 400);
        let answer: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(answer["error"]["code"], -32020);
    }
}

#[test]
fn step_ups_are_answered_at_the_headers_as_before() {
    let authz = config(true);
    let no_scopes = json!({"sub": "eve", "scope": "openid", "roles": ["admin"]});
    assert_eq!(
        status(&step(
            &authz,
            Some(no_scopes.clone()),
            &modern("tools/call", Some("delete_file"), &[])
        )),
        Some(403)
    );
    assert_eq!(
        status(&step(
            &authz,
            Some(no_scopes),
            &modern("server/discover", None, &[])
        )),
        Some(403)
    );
    // Without a token (optional / permissive modes): the 401 challenge with the scopes.
    assert_eq!(
        status(&step(
            &authz,
            None,
            &modern("tools/call", Some("delete_file"), &[])
        )),
        Some(401)
    );
}

#[test]
fn denials_and_list_calls_still_read_the_body() {
    let authz = config(true);
    let hidden =
        |claims: Option<Value>, method: &str, name: Option<&str>, extra: &[(&str, &str)]| {
            let headers = modern(method, name, extra);
            let s = subject(&authz, claims, &headers);
            let HeaderStep::ReadBody(Some(mirrored)) = authz.check_headers(&s, &headers, PRM)
            else {
                panic!("the body is read: {headers:?}")
            };
            // The hide answer carries the body's id, which no header has.
            let verdict =
                authz.check_request(&s, Some(&mirrored), body(41, method, name).as_bytes(), PRM);
            let Verdict::Respond(reply) = verdict else {
                panic!("denied: {headers:?}")
            };
            let answer: Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!((reply.status, &answer["id"]), (200, &json!(41)), "{answer}");
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
    // Rule denials: by name, by a mirrored argument, by the role; and without a token.
    assert_eq!(
        hidden(Some(plain()), "tools/call", Some("system_status"), &[]),
        "Unknown tool: system_status"
    );
    assert_eq!(
        hidden(
            Some(plain()),
            "tools/call",
            Some("sql"),
            &[("mcp-param-region", "eu")]
        ),
        "Unknown tool: sql"
    );
    let no_role = json!({"sub": "bob", "scope": "files:delete files:read"});
    assert_eq!(
        hidden(Some(no_role), "tools/call", Some("delete_file"), &[]),
        "Unknown tool: delete_file"
    );
    assert_eq!(
        hidden(None, "resources/read", Some("file:///etc/passwd"), &[]),
        "Unknown resource: file:///etc/passwd"
    );
    // A scope failure with `onInsufficientScope: hide` is a denial too.
    let mut hide = config(true);
    hide.on_insufficient_scope = ScopeAnswer::Hide;
    let headers = modern("tools/call", Some("delete_file"), &[]);
    let s = subject(&hide, Some(plain()), &headers);
    assert!(matches!(
        hide.check_headers(&s, &headers, PRM),
        HeaderStep::ReadBody(Some(_))
    ));
    // List calls: the response is filtered by the request's id.
    for method in [
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
    ] {
        let headers = modern(method, None, &[]);
        let s = subject(&authz, Some(plain()), &headers);
        let HeaderStep::ReadBody(Some(mirrored)) = authz.check_headers(&s, &headers, PRM) else {
            panic!("{method}: the body is read")
        };
        let Verdict::Forward { lists } =
            authz.check_request(&s, Some(&mirrored), body(7, method, None).as_bytes(), PRM)
        else {
            panic!("{method}: forwarded")
        };
        assert_eq!(lists.len(), 1, "{method}");
        assert_eq!(lists[0].id, json!(7));
    }
}

/// What the opt-in trusts the server with: a body that disagrees with headers that allow the
/// call. Without the opt-in the filter refuses it; with it the request goes on unread, and the
/// 2026-07-28 server must answer it `-32020`.
#[test]
fn the_opt_in_hands_a_disagreeing_body_to_the_server_and_only_then() {
    let headers = modern("tools/call", Some("echo"), &[]);
    let denied = body(5, "tools/call", Some("delete_file"));
    let batch = format!("[{},{denied}]", body(4, "tools/call", Some("echo")));
    let off = config(false);
    for text in [&denied, &batch] {
        let s = subject(&off, Some(plain()), &headers);
        let HeaderStep::ReadBody(Some(mirrored)) = off.check_headers(&s, &headers, PRM) else {
            panic!("the body is read")
        };
        let Verdict::Respond(reply) = off.check_request(&s, Some(&mirrored), text.as_bytes(), PRM)
        else {
            panic!("refused")
        };
        assert_eq!(reply.status, 400);
    }
    assert_eq!(
        step(&config(true), Some(plain()), &headers),
        HeaderStep::Forward
    );
}

/// A method, its `Mcp-Name` and other headers.
type Request = (
    &'static str,
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
);

/// For every 2026-07-28 request whose body agrees with its headers, the opt-in forwards at
/// the headers exactly what reading the body would forward without list filtering, and never
/// anything the body path answers locally.
#[test]
fn a_header_decision_equals_the_body_decision_for_agreeing_bodies() {
    let (on, off) = (config(true), config(false));
    let users = [
        Some(admin()),
        Some(plain()),
        Some(json!({"sub": "x", "roles": ["admin"]})),
        None,
    ];
    let requests: [Request; 12] = [
        ("tools/call", Some("echo"), &[]),
        ("tools/call", Some("delete_file"), &[]),
        ("tools/call", Some("sql"), &[]),
        ("tools/call", Some("sql"), &[("mcp-param-region", "us")]),
        ("tools/call", Some("sql"), &[("mcp-param-region", "eu")]),
        ("tools/call", Some("other"), &[]),
        ("prompts/get", Some("greet"), &[]),
        ("resources/read", Some("file:///pub/a"), &[]),
        ("resources/read", Some("file:///etc/a"), &[]),
        ("server/discover", None, &[]),
        ("tools/list", None, &[]),
        ("ping", None, &[]),
    ];
    let mut forwarded = 0;
    for claims in &users {
        for (method, name, extra) in requests {
            let headers = modern(method, name, extra);
            let text = body(9, method, name);
            let s = subject(&off, claims.clone(), &headers);
            let by_body = match off.check_headers(&s, &headers, PRM) {
                HeaderStep::ReadBody(mirrored) => {
                    off.check_request(&s, mirrored.as_ref(), text.as_bytes(), PRM)
                }
                HeaderStep::Respond(reply) => Verdict::Respond(reply),
                HeaderStep::Forward => panic!("never without the opt-in"),
            };
            let trusted = step(&on, claims.clone(), &headers);
            let unfiltered = by_body == Verdict::Forward { lists: vec![] };
            assert_eq!(
                trusted == HeaderStep::Forward,
                unfiltered,
                "{claims:?} {headers:?}"
            );
            forwarded += usize::from(unfiltered);
        }
    }
    assert!(
        forwarded >= 15,
        "the table exercises forwarding ({forwarded})"
    );
}
