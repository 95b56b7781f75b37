//! Unit tests of the MCP 2026-07-28 behaviour: header-first decisions, header/body
//! agreement (no bypass in either direction, single or batch), `mcp.params`, private
//! filtered lists and implied scopes.

use serde_json::{Value, json};

use super::headers::{self, Era, Mismatch};
use super::listing::{self, ListCall, ListKind};
use super::rules::Subject;
use super::*;
use crate::core::reply::LocalReply;

const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
const V: &str = "2026-07-28";

fn authz(raw: Value) -> McpAuthorization {
    McpAuthorization::from_raw(serde_json::from_value(raw).expect("raw parses")).expect("valid")
}

fn refused(raw: Value) -> String {
    McpAuthorization::from_raw(serde_json::from_value(raw).expect("raw parses"))
        .expect_err("must be refused")
        .to_string()
}

/// echo for everyone, delete_file only for admins; delete_file needs files:delete.
fn demo() -> McpAuthorization {
    authz(json!({
        "rules": [
            r#"mcp.tool.name == "echo""#,
            r#"mcp.tool.name == "delete_file" && jwt.roles.contains("admin")"#,
        ],
        "requiredScopes": {"tools/call:delete_file": ["files:delete", "files:read"]},
    }))
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .collect()
}

fn modern_call(tool: &str) -> Vec<(String, String)> {
    h(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ])
}

fn body(id: u64, tool: &str, version: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": version}}})
    .to_string()
}

fn user(authz: &McpAuthorization, claims: Value, headers: &[(String, String)]) -> Subject {
    let Value::Object(claims) = claims else {
        panic!("claims are an object")
    };
    authz.subject(Some(&claims), headers)
}

fn step(authz: &McpAuthorization, s: &Subject, headers: &[(String, String)]) -> HeaderStep {
    authz.check_headers(s, headers, PRM)
}

/// The headers step then the body, as the host runs them.
fn run(
    authz: &McpAuthorization,
    claims: Value,
    headers: &[(String, String)],
    body: &str,
) -> Verdict {
    let s = user(authz, claims, headers);
    match step(authz, &s, headers) {
        HeaderStep::Respond(reply) => Verdict::Respond(reply),
        HeaderStep::ReadBody(mirrored) => {
            authz.check_request(&s, mirrored.as_ref(), body.as_bytes(), PRM)
        }
        HeaderStep::Forward => panic!("these configs never trust the headers alone"),
    }
}

fn reply(verdict: Verdict) -> LocalReply {
    match verdict {
        Verdict::Respond(reply) => reply,
        other => panic!("expected a local reply, got {other:?}"),
    }
}

fn json_of(reply: &LocalReply) -> Value {
    serde_json::from_str(&reply.body).expect("JSON body")
}

fn assert_mismatch(verdict: Verdict, id: Value) {
    let reply = reply(verdict);
    assert_eq!(reply.status, 400);
    let body = json_of(&reply);
    assert_eq!(body["error"]["code"], -32020, "{body}");
    assert_eq!(body["id"], id, "{body}");
}

fn admin() -> Value {
    json!({"sub": "root", "scope": "files:delete files:read", "roles": ["admin"]})
}

fn plain() -> Value {
    json!({"sub": "alice", "scope": "openid"})
}

#[test]
fn versions_from_2026_07_28_on_are_modern() {
    for v in [
        "2026-07-28",
        "2026-12-01",
        "2026-12-31",
        "2027-01-01",
        "2099-01-01",
    ] {
        assert!(headers::is_modern(v), "{v}");
    }
    for v in [
        "2025-11-25",
        "2026-07-27",
        "",
        "2026-7-28",
        "draft",
        "2026-07-28 ",
        "ab26-07-28",
        "2026-13-01",
        "2026-00-10",
        "2026-12-32",
        "2026-12-00",
    ] {
        assert!(!headers::is_modern(v), "{v}");
    }
}

#[test]
fn base64_sentinel_values_are_decoded_and_bad_ones_refused() {
    assert_eq!(headers::decode("us-west1", "h").unwrap(), "us-west1");
    assert_eq!(headers::decode(" \tus-west1  ", "h").unwrap(), "us-west1");
    assert_eq!(
        headers::decode("=?base64?SGVsbG8sIOS4lueVjA==?=", "h").unwrap(),
        "Hello, 世界"
    );
    assert_eq!(
        headers::decode("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=", "h").unwrap(),
        "=?base64?literal?="
    );
    // Only the exact lower-case markers are the sentinel.
    assert_eq!(
        headers::decode("=?BASE64?eA==?=", "h").unwrap(),
        "=?BASE64?eA==?="
    );
    for bad in [
        "=?base64?***?=",
        "=?base64?/w==?=",
        "=?base64?SGVsbG8?=",
        "a\u{7f}b",
        "x\ny",
        "",
        "  ",
    ] {
        assert!(headers::decode(bad, "h").is_err(), "{bad:?}");
    }
}

#[test]
fn headers_are_read_only_for_a_modern_version() {
    // No version, an older one, or two: legacy, whatever else the headers say.
    for headers in [
        h(&[("mcp-method", "tools/call"), ("mcp-name", "echo")]),
        h(&[("mcp-protocol-version", "2025-11-25"), ("mcp-method", "x")]),
        h(&[("mcp-protocol-version", V), ("mcp-protocol-version", V)]),
    ] {
        assert_eq!(headers::read(&headers), Ok(Era::Legacy), "{headers:?}");
    }
    let Ok(Era::Modern(m)) = headers::read(&h(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?ZWNobw==?="),
        ("mcp-param-region", "us"),
        ("Mcp-Param-Tenant", "=?base64?IGFjbWUg?="),
    ])) else {
        panic!("modern")
    };
    assert_eq!(
        (m.method.as_str(), m.name.as_deref()),
        ("tools/call", Some("echo"))
    );
    assert_eq!(
        m.params,
        [
            ("region".into(), "us".into()),
            ("tenant".into(), " acme ".into())
        ]
    );
    let missing = |pairs: &[(&str, &str)]| matches!(headers::read(&h(pairs)), Err(Mismatch(_)));
    assert!(missing(&[("mcp-protocol-version", V)]));
    assert!(missing(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call")
    ]));
    assert!(missing(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "resources/read")
    ]));
    assert!(missing(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "a"),
        ("mcp-name", "b"),
    ]));
    assert!(missing(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/list"),
        ("mcp-param-x", "=?base64?!!?="),
    ]));
    assert!(missing(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/list"),
        ("mcp-param-x", "1"),
        ("mcp-param-X", "2"),
    ]));
    // tools/list needs no Mcp-Name.
    assert!(!missing(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/list")
    ]));
}

#[test]
fn malformed_modern_headers_are_answered_400_before_the_body() {
    let authz = demo();
    let headers = h(&[("mcp-protocol-version", V), ("mcp-method", "tools/call")]);
    let s = user(&authz, admin(), &headers);
    let HeaderStep::Respond(reply) = step(&authz, &s, &headers) else {
        panic!("answered from the headers")
    };
    assert_eq!(reply.status, 400);
    assert_eq!(json_of(&reply)["error"]["code"], -32020);
    assert_eq!(json_of(&reply)["id"], Value::Null);
}

#[test]
fn a_modern_step_up_is_decided_from_the_headers_with_every_needed_scope() {
    let authz = demo();
    let headers = modern_call("delete_file");
    let s = user(&authz, plain(), &headers);
    let HeaderStep::Respond(reply) = step(&authz, &s, &headers) else {
        panic!("answered from the headers")
    };
    assert_eq!(reply.status, 403);
    let challenge = &reply.headers[0].1;
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.ends_with("scope=\"files:delete files:read\""),
        "{challenge}"
    );
    // A legacy request with the same headers: nothing is decided before the body.
    let legacy = h(&[("mcp-method", "tools/call"), ("mcp-name", "delete_file")]);
    let s = user(&authz, plain(), &legacy);
    assert_eq!(step(&authz, &s, &legacy), HeaderStep::ReadBody(None));
}

#[test]
fn an_allowed_modern_call_reads_the_body_only_to_check_agreement() {
    let authz = demo();
    let headers = modern_call("echo");
    let s = user(&authz, plain(), &headers);
    let HeaderStep::ReadBody(Some(mirrored)) = step(&authz, &s, &headers) else {
        panic!("the body is checked")
    };
    assert_eq!(
        authz.check_request(&s, Some(&mirrored), body(1, "echo", V).as_bytes(), PRM),
        Verdict::Forward { lists: vec![] }
    );
}

#[test]
fn no_bypass_headers_allowed_body_denied_in_every_era_single_and_batch() {
    let authz = demo();
    // Modern: the body disagrees with the headers -> 400 -32020, never forwarded.
    assert_mismatch(
        run(
            &authz,
            plain(),
            &modern_call("echo"),
            &body(7, "delete_file", V),
        ),
        json!(7),
    );
    let batch = format!("[{},{}]", body(1, "echo", V), body(2, "delete_file", V));
    assert_mismatch(
        run(&authz, plain(), &modern_call("echo"), &batch),
        Value::Null,
    );
    // Legacy (no version, or an older one): the headers are ignored, the body decides.
    for version in [None, Some("2025-11-25")] {
        let mut headers = h(&[("mcp-method", "tools/call"), ("mcp-name", "echo")]);
        if let Some(v) = version {
            headers.push(("mcp-protocol-version".into(), v.into()));
        }
        let single = reply(run(
            &authz,
            admin_without_role(),
            &headers,
            &body(3, "delete_file", "x"),
        ));
        assert_eq!(
            json_of(&single)["error"]["message"],
            "Unknown tool: delete_file"
        );
        let batch = format!("[{},{}]", body(4, "echo", "x"), body(5, "delete_file", "x"));
        let answer = json_of(&reply(run(&authz, admin_without_role(), &headers, &batch)));
        assert_eq!(answer[1]["error"]["message"], "Unknown tool: delete_file");
        assert_eq!(answer[0]["error"]["code"], NOT_EXECUTED_CODE);
    }
}

/// Has the scopes but not the role: the rules hide delete_file.
fn admin_without_role() -> Value {
    json!({"sub": "bob", "scope": "files:delete files:read"})
}

#[test]
fn no_bypass_headers_denied_body_allowed() {
    let authz = demo();
    // Modern: the headers deny (hidden for this user): the body is read for the id only and
    // disagrees -> 400; a matching body gets the hide answer.
    let headers = modern_call("delete_file");
    assert_mismatch(
        run(&authz, admin_without_role(), &headers, &body(8, "echo", V)),
        json!(8),
    );
    let hidden = reply(run(
        &authz,
        admin_without_role(),
        &headers,
        &body(9, "delete_file", V),
    ));
    assert_eq!(
        json_of(&hidden)["error"]["message"],
        "Unknown tool: delete_file"
    );
    assert_eq!(json_of(&hidden)["id"], 9);
    // And the header-decided step-up never looks at the body at all.
    let step_up = reply(run(&authz, plain(), &headers, "not even JSON"));
    assert_eq!(step_up.status, 403);
}

#[test]
fn the_modern_body_must_not_carry_another_protocol_version() {
    let authz = demo();
    assert_mismatch(
        run(
            &authz,
            plain(),
            &modern_call("echo"),
            &body(1, "echo", "2025-11-25"),
        ),
        json!(1),
    );
    // No version in the body: the server refuses that itself (-32602); nothing is bypassed.
    let bare =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}});
    assert_eq!(
        run(&authz, plain(), &modern_call("echo"), &bare.to_string()),
        Verdict::Forward { lists: vec![] }
    );
    // resources/subscribe is gone in 2026-07-28: passed for the server's 404, not refused
    // as a target without a URI; in a legacy request it is still a target.
    let subscribe = json!({"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": V}}})
    .to_string();
    let modern = h(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "resources/subscribe"),
    ]);
    assert_eq!(
        run(&authz, plain(), &modern, &subscribe),
        Verdict::Forward { lists: vec![] }
    );
    assert_eq!(reply(run(&authz, plain(), &[], &subscribe)).status, 400);
    // A method that disagrees, and a name header on a list call whose body has none.
    let list = h(&[
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/list"),
        ("mcp-name", "x"),
    ]);
    let list_body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": V}}})
    .to_string();
    assert_mismatch(run(&authz, plain(), &list, &list_body), json!(2));
    let list = h(&[("mcp-protocol-version", V), ("mcp-method", "tools/list")]);
    assert_eq!(
        run(&authz, plain(), &list, &list_body),
        Verdict::Forward {
            lists: vec![ListCall {
                id: json!(2),
                kind: ListKind::Tools
            }]
        }
    );
    assert_mismatch(run(&authz, plain(), &list, &body(3, "echo", V)), json!(3));
    // A duplicated _meta version is refused as invalid, like any duplicate member.
    let dup = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}"#;
    assert_eq!(
        reply(run(&authz, plain(), &modern_call("echo"), dup)).status,
        400
    );
}

fn sql_rules() -> McpAuthorization {
    authz(json!({"rules": [
        {"deny": r#"mcp.tool.name == "sql" && mcp.params.region == "eu""#},
        {"require": r#"mcp.tool.name != "report" || has(mcp.params.tenant)"#},
    ]}))
}

fn sql_call(id: u64, tool: &str, params: &[(&str, &str)], modern: bool) -> Verdict {
    let authz = sql_rules();
    let mut headers = if modern {
        modern_call(tool)
    } else {
        Vec::new()
    };
    headers.extend(h(params));
    let version = if modern { V } else { "2025-11-25" };
    run(&authz, plain(), &headers, &body(id, tool, version))
}

#[test]
fn rules_see_mcp_params_only_when_the_version_makes_the_server_validate_them() {
    let forward = Verdict::Forward { lists: vec![] };
    assert_eq!(
        sql_call(1, "sql", &[("mcp-param-region", "us")], true),
        forward
    );
    assert_eq!(
        sql_call(2, "sql", &[("mcp-param-region", "=?base64?dXM=?=")], true),
        forward
    );
    let hidden = reply(sql_call(3, "sql", &[("mcp-param-region", "eu")], true));
    assert_eq!(json_of(&hidden)["error"]["message"], "Unknown tool: sql");
    assert_eq!(
        sql_call(4, "report", &[("mcp-param-tenant", "acme")], true),
        forward
    );
    assert_eq!(reply(sql_call(5, "report", &[], true)).status, 200);
    // Legacy: Mcp-Param headers are not trusted; rules on params fail closed for the
    // targets they concern, and other targets are untouched.
    assert_eq!(
        reply(sql_call(6, "sql", &[("mcp-param-region", "us")], false)).status,
        200
    );
    assert_eq!(
        reply(sql_call(
            7,
            "report",
            &[("mcp-param-tenant", "acme")],
            false
        ))
        .status,
        200
    );
    assert_eq!(sql_call(8, "echo", &[], false), forward);
    // `has()` on untrusted params is an error too, so a guarded deny still fails closed.
    let guarded = authz(json!({"rules": [
        {"deny": r#"mcp.tool.name == "sql" && has(mcp.params.region) && mcp.params.region == "eu""#},
    ]}));
    let legacy = run(&guarded, plain(), &[], &body(9, "sql", "2025-11-25"));
    assert_eq!(reply(legacy).status, 200);
    let modern = run(&guarded, plain(), &modern_call("sql"), &body(10, "sql", V));
    assert_eq!(modern, forward);
    // In a list there are no arguments yet: the items stay visible.
    let authz = sql_rules();
    let s = user(&authz, plain(), &[]);
    for tool in ["sql", "report", "echo"] {
        let target = rules::Target {
            kind: rules::TargetKind::Tool,
            method: "tools/call",
            name: tool,
            label: None,
        };
        assert!(authz.item_allowed(&s, &target), "{tool}");
    }
}

#[test]
fn filtered_lists_are_private_and_keep_their_ttl() {
    let authz = demo();
    let s = user(&authz, plain(), &[]);
    let result = json!({"jsonrpc": "2.0", "id": 1, "result": {
        "tools": [{"name": "echo"}, {"name": "delete_file"}],
        "ttlMs": 60000, "cacheScope": "public"}});
    let mut pending = vec![ListCall {
        id: json!(1),
        kind: ListKind::Tools,
    }];
    let out = listing::filter_json(&authz, &s, &mut pending, result.to_string().as_bytes())
        .expect("changed");
    let out: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(out["result"]["cacheScope"], "private");
    assert_eq!(out["result"]["ttlMs"], 60000);
    assert_eq!(out["result"]["tools"], json!([{"name": "echo"}]));
    // Nothing removed for this caller, but filtered per caller all the same: private.
    let all = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "echo"}],
        "ttlMs": 5, "cacheScope": "public"}});
    let mut pending = vec![ListCall {
        id: json!(2),
        kind: ListKind::Tools,
    }];
    let out =
        listing::filter_json(&authz, &s, &mut pending, all.to_string().as_bytes()).expect("marked");
    let out: Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(out["result"]["cacheScope"], "private");
    assert_eq!(out["result"]["ttlMs"], 5);
    // Already private and nothing removed: passed as it is.
    let private = json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [{"name": "echo"}],
        "cacheScope": "private"}});
    let mut pending = vec![ListCall {
        id: json!(3),
        kind: ListKind::Tools,
    }];
    assert_eq!(
        listing::filter_json(&authz, &s, &mut pending, private.to_string().as_bytes()),
        None
    );
    // A result that is not a pending list call is not touched.
    let mut pending = vec![ListCall {
        id: json!(9),
        kind: ListKind::Tools,
    }];
    assert_eq!(
        listing::filter_json(&authz, &s, &mut pending, result.to_string().as_bytes()),
        None
    );
}

#[test]
fn implied_scopes_satisfy_requirements_and_rules_transitively() {
    let authz = authz(json!({
        "rules": [r#"mcp.tool.name != "list_files" || jwt.scope.contains("files:read")"#],
        "requiredScopes": {"tools/call:delete_file": ["files:delete"]},
        "impliedScopes": {"admin": ["files:write"], "files:write": ["files:delete", "files:read"]},
    }));
    let s = user(&authz, json!({"scope": "admin"}), &[]);
    assert!(s.has_scope("files:delete") && s.has_scope("files:read"));
    let call =
        |s: &Subject, tool: &str| authz.check_request(s, None, body(1, tool, "x").as_bytes(), PRM);
    assert_eq!(call(&s, "delete_file"), Verdict::Forward { lists: vec![] });
    assert_eq!(call(&s, "list_files"), Verdict::Forward { lists: vec![] });
    // Narrower never implies broader.
    let narrow = user(&authz, json!({"scope": "files:read"}), &[]);
    assert!(!narrow.has_scope("files:write"));
    assert_eq!(reply(call(&narrow, "delete_file")).status, 403);
    // Cycles end.
    let cyclic = authz_cycle();
    let s = user(&cyclic, json!({"scope": "a"}), &[]);
    assert!(s.has_scope("b") && s.has_scope("a"));
}

fn authz_cycle() -> McpAuthorization {
    authz(
        json!({"requiredScopes": {"tools/list": ["b"]}, "impliedScopes": {"a": ["b"], "b": ["a"]}}),
    )
}

#[test]
fn offline_access_is_never_required_and_implied_scopes_are_validated() {
    let err = refused(json!({"requiredScopes": {"tools/call": ["mcp", "offline_access"]}}));
    assert!(
        err.starts_with("mcpAuthorization.requiredScopes.tools/call: offline_access"),
        "{err}"
    );
    let err = refused(json!({"impliedScopes": {"a": "b"}}));
    assert!(
        err.starts_with("mcpAuthorization.impliedScopes.a: must be an array"),
        "{err}"
    );
    let err = refused(json!({"impliedScopes": {"a b": ["c"]}}));
    assert!(
        err.starts_with("mcpAuthorization.impliedScopes.a b:"),
        "{err}"
    );
    let err = refused(json!({"impliedScopes": {"a": []}}));
    assert!(err.contains("at least one"), "{err}");
}
