//! Unit tests of MCP authorization, with the user's demo rules verbatim
//! (`mcp-oauth-demos` README, agentgateway `matchExpressions`).

use serde_json::{Map, Value, json};

use super::jsonrpc::{self, Body, BodyError};
use super::listing::{self, ListCall, ListKind, SseRewriter};
use super::rules::{Subject, Target, TargetKind};
use super::sse::{self, EventSplitter};
use super::*;
use crate::core::config::Config;
use crate::core::reply::LocalReply;
use crate::core::testkit::{AUDIENCE, ISSUER, jwks};

const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// The demo's five rules, character for character.
const DEMO_RULES: [&str; 5] = [
    r#"mcp.tool.name == "echo""#,
    r#"mcp.tool.name == "get_user_info""#,
    r#"mcp.tool.name == "list_files" && jwt.scope.contains("files:read")"#,
    r#"mcp.tool.name == "delete_file" && jwt.scope.contains("files:delete") && jwt["https://mcp-demo/roles"].contains("admin")"#,
    r#"mcp.tool.name == "system_status" && jwt["https://mcp-demo/roles"].contains("admin")"#,
];
const TOOLS: [&str; 5] = [
    "echo",
    "get_user_info",
    "list_files",
    "delete_file",
    "system_status",
];

fn authz(raw: Value) -> McpAuthorization {
    let raw: RawMcpAuthorization = serde_json::from_value(raw).expect("raw config parses");
    McpAuthorization::from_raw(raw).expect("config is valid")
}

fn authz_err(raw: Value) -> String {
    let raw: RawMcpAuthorization = serde_json::from_value(raw).expect("raw config parses");
    McpAuthorization::from_raw(raw)
        .expect_err("config must be refused")
        .to_string()
}

fn demo() -> McpAuthorization {
    authz(json!({ "rules": DEMO_RULES }))
}

fn demo_with_scopes() -> McpAuthorization {
    authz(json!({
        "rules": DEMO_RULES,
        "requiredScopes": {
            "tools/call:list_files": ["files:read"],
            "tools/call:delete_file": ["files:delete"],
        },
    }))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("claims must be an object, got {other}"),
    }
}

fn subject(authz: &McpAuthorization, claims: Value) -> Subject {
    authz.subject(Some(&object(claims)), &[])
}

/// The demo's three users, with Auth0's space-delimited `scope`.
fn alice() -> Value {
    json!({"sub": "alice", "scope": "openid profile"})
}
fn bob() -> Value {
    json!({"sub": "bob", "scope": "openid files:read"})
}
fn carol() -> Value {
    json!({
        "sub": "carol",
        "scope": "openid files:read files:delete",
        "https://mcp-demo/roles": ["admin"],
    })
}

fn tool(name: &str) -> Target<'_> {
    Target {
        kind: TargetKind::Tool,
        method: "tools/call",
        name,
        label: None,
    }
}

fn allowed_tools(authz: &McpAuthorization, subject: &Subject) -> Vec<&'static str> {
    TOOLS
        .into_iter()
        .filter(|t| authz.item_allowed(subject, &tool(t)))
        .collect()
}

fn call(id: u64, name: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": {}}})
    .to_string()
}

fn check(authz: &McpAuthorization, subject: &Subject, body: &str) -> Verdict {
    authz.check_request(subject, None, body.as_bytes(), PRM)
}

fn reply(verdict: Verdict) -> LocalReply {
    match verdict {
        Verdict::Respond(reply) => reply,
        other => panic!("expected a local reply, got {other:?}"),
    }
}

fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn body_json(reply: &LocalReply) -> Value {
    serde_json::from_str(&reply.body).expect("reply body is JSON")
}

// --- the demo's rules --------------------------------------------------------------------

#[test]
fn demo_rules_grant_each_user_exactly_the_demo_tools() {
    let authz = demo();
    assert_eq!(
        allowed_tools(&authz, &subject(&authz, alice())),
        ["echo", "get_user_info"]
    );
    assert_eq!(
        allowed_tools(&authz, &subject(&authz, bob())),
        ["echo", "get_user_info", "list_files"]
    );
    assert_eq!(allowed_tools(&authz, &subject(&authz, carol())), TOOLS);
    // files:delete without the admin role is not enough for delete_file.
    let dave = json!({"scope": "files:read files:delete"});
    assert_eq!(
        allowed_tools(&authz, &subject(&authz, dave)),
        ["echo", "get_user_info", "list_files"]
    );
    // The admin role alone gives system_status.
    let erin = json!({"https://mcp-demo/roles": ["admin"]});
    assert_eq!(
        allowed_tools(&authz, &subject(&authz, erin)),
        ["echo", "get_user_info", "system_status"]
    );
}

#[test]
fn scope_as_string_and_as_array_work_alike_with_contains() {
    let authz = demo();
    for claims in [
        json!({"scope": "files:read files:delete", "https://mcp-demo/roles": ["admin"]}),
        json!({"scope": ["files:read", "files:delete"], "https://mcp-demo/roles": ["admin"]}),
        json!({"scope": "  files:read\tfiles:delete ", "https://mcp-demo/roles": ["admin"]}),
    ] {
        let s = subject(&authz, claims.clone());
        assert_eq!(allowed_tools(&authz, &s), TOOLS, "{claims}");
        assert!(s.has_scope("files:read") && s.has_scope("files:delete"));
    }
    // Whole tokens only: a longer scope does not contain a shorter one.
    for claims in [
        json!({"scope": "files:readonly files:deleted"}),
        json!({"scope": ["files:readonly"]}),
        json!({"scope": "xfiles:read"}),
    ] {
        let s = subject(&authz, claims.clone());
        assert_eq!(
            allowed_tools(&authz, &s),
            ["echo", "get_user_info"],
            "{claims}"
        );
    }
    // `in` works on both forms too, and `scp` is normalised like `scope`.
    let authz = authz_rules(&[r#""a" in jwt.scope && jwt.scp.contains("b")"#]);
    for claims in [
        json!({"scope": "a", "scp": "b c"}),
        json!({"scope": ["a"], "scp": ["b"]}),
    ] {
        assert!(
            authz.rules_allow(&subject(&authz, claims.clone()), &tool("x")),
            "{claims}"
        );
    }
    assert_eq!(
        subject(&authz, json!({"scope": "a b", "scp": ["b", "c"]})).scopes(),
        ["a", "b", "c"]
    );
}

fn authz_rules(rules: &[&str]) -> McpAuthorization {
    authz(json!({ "rules": rules }))
}

#[test]
fn nested_and_bracket_claims_are_reachable() {
    let claims = json!({
        "realm_access": {"roles": ["admin", "dev"]},
        "https://mcp-demo/roles": ["admin"],
        "org": {"team": {"name": "core", "size": 7}},
        "groups": ["a/b"],
        "email_verified": true,
        "n": 3,
    });
    let yes = [
        r#"jwt.realm_access.roles.contains("admin")"#,
        r#"jwt["realm_access"]["roles"].contains("dev")"#,
        r#"jwt["https://mcp-demo/roles"].contains("admin")"#,
        r#"jwt.org.team.name == "core" && jwt.org.team.size > 5"#,
        r#"jwt["org"].team["name"].startsWith("co")"#,
        r#"jwt.groups.exists(g, g.startsWith("a/"))"#,
        r#"has(jwt.org.team) && !has(jwt.org.missing)"#,
        "jwt.email_verified",
        "jwt.n == 3",
        r#"size(jwt.realm_access.roles) == 2"#,
    ];
    let no = [
        r#"jwt.realm_access.roles.contains("root")"#,
        r#"jwt["https://mcp-demo/roles"].contains("adm")"#,
        r#"jwt.org.team.name == "other""#,
        // Errors count as false: a missing claim, a wrong type.
        r#"jwt.missing.contains("admin")"#,
        r#"jwt["https://other/roles"].contains("admin")"#,
        r#"jwt.n.contains("3")"#,
        "jwt.org.team.size + 'x' == 1",
    ];
    for rule in yes {
        let authz = authz_rules(&[rule]);
        assert!(
            authz.rules_allow(&subject(&authz, claims.clone()), &tool("t")),
            "{rule}"
        );
    }
    for rule in no {
        let authz = authz_rules(&[rule]);
        assert!(
            !authz.rules_allow(&subject(&authz, claims.clone()), &tool("t")),
            "{rule}"
        );
    }
}

#[test]
fn mcp_and_request_variables() {
    let prompt = Target {
        kind: TargetKind::Prompt,
        method: "prompts/get",
        name: "greet",
        label: None,
    };
    let resource = Target {
        kind: TargetKind::Resource,
        method: "resources/read",
        name: "file:///etc/motd",
        label: Some("motd"),
    };
    let cases: [(&str, Target<'_>, bool); 10] = [
        (r#"mcp.method == "tools/call""#, tool("x"), true),
        (r#"mcp.tool.name == "x""#, tool("x"), true),
        (r#"mcp.prompt.name == "greet""#, prompt, true),
        (r#"mcp.tool.name == "greet""#, prompt, false),
        (r#"mcp.method == "prompts/get""#, prompt, true),
        (
            r#"mcp.resource.uri.startsWith("file:///etc/")"#,
            resource,
            true,
        ),
        (r#"mcp.resource.name == "motd""#, resource, true),
        (r#"has(mcp.tool)"#, resource, false),
        (r#"request.headers["x-team"] == "blue""#, tool("x"), true),
        (r#"request.headers["x-absent"] == "blue""#, tool("x"), false),
    ];
    for (rule, target, expected) in cases {
        let authz = authz_rules(&[rule]);
        let headers = vec![("x-team".to_string(), "blue".to_string())];
        let s = authz.subject(Some(&object(json!({}))), &headers);
        assert_eq!(authz.rules_allow(&s, &target), expected, "{rule}");
    }
    // Repeated headers are joined with commas.
    let authz = authz_rules(&[r#"request.headers["x-a"] == "1,2""#]);
    let headers = vec![("x-a".into(), "1".into()), ("x-a".into(), "2".into())];
    assert!(authz.rules_allow(&authz.subject(None, &headers), &tool("x")));
}

// --- evaluation order: every combination ----------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    True,
    False,
    Error,
}

fn expression(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::True => r#"mcp.tool.name == "t""#,
        Outcome::False => r#"mcp.tool.name == "other""#,
        Outcome::Error => r#"jwt.absent.contains("x")"#,
    }
}

/// The spec's order, written independently: deny wins, failing require denies, allow allows,
/// otherwise allowed only without allow rules; errors are false.
fn expected(rules: &[(RuleKind, Outcome)]) -> bool {
    if rules.is_empty() {
        return true;
    }
    let hit = |o: Outcome| o == Outcome::True;
    if rules.iter().any(|(k, o)| *k == RuleKind::Deny && hit(*o)) {
        return false;
    }
    if rules
        .iter()
        .any(|(k, o)| *k == RuleKind::Require && !hit(*o))
    {
        return false;
    }
    if rules.iter().any(|(k, o)| *k == RuleKind::Allow && hit(*o)) {
        return true;
    }
    !rules.iter().any(|(k, _)| *k == RuleKind::Allow)
}

use super::rules::RuleKind;

#[test]
fn every_combination_of_up_to_three_rules_follows_the_evaluation_order() {
    let atoms: Vec<(RuleKind, Outcome)> = [RuleKind::Allow, RuleKind::Deny, RuleKind::Require]
        .into_iter()
        .flat_map(|k| {
            [Outcome::True, Outcome::False, Outcome::Error]
                .into_iter()
                .map(move |o| (k, o))
        })
        .collect();
    let mut combinations: Vec<Vec<(RuleKind, Outcome)>> = vec![vec![]];
    for _ in 0..3 {
        let longer: Vec<_> = combinations
            .iter()
            .filter(|c| c.len() == combinations.last().map_or(0, Vec::len))
            .flat_map(|c| {
                atoms.iter().map(move |a| {
                    let mut next = c.clone();
                    next.push(*a);
                    next
                })
            })
            .collect();
        combinations.extend(longer);
    }
    assert_eq!(combinations.len(), 1 + 9 + 81 + 729);
    for rules in &combinations {
        let raw: Vec<Value> = rules
            .iter()
            .enumerate()
            .map(|(i, (kind, outcome))| {
                let expr = expression(*outcome);
                match (kind, i % 2) {
                    // Allow rules alternate between the string and the object form.
                    (RuleKind::Allow, 0) => json!(expr),
                    (RuleKind::Allow, _) => json!({"allow": expr}),
                    (RuleKind::Deny, _) => json!({"deny": expr}),
                    (RuleKind::Require, _) => json!({"require": expr}),
                }
            })
            .collect();
        let authz = authz(json!({ "rules": raw }));
        let s = subject(&authz, json!({}));
        assert_eq!(
            authz.rules_allow(&s, &tool("t")),
            expected(rules),
            "{rules:?}"
        );
    }
}

#[test]
fn results_that_are_not_true_count_as_false() {
    for rule in ["1", "'true'", "null", "[true]", "{'a': true}", "1 / 0 == 1"] {
        let authz = authz_rules(&[rule]);
        assert!(
            !authz.rules_allow(&subject(&authz, json!({})), &tool("t")),
            "{rule}"
        );
        // As a deny rule, the same non-true result does not deny.
        let authz = authz_of(json!({ "rules": [{"deny": rule}] }));
        assert!(
            authz.rules_allow(&subject(&authz, json!({})), &tool("t")),
            "{rule}"
        );
    }
}

// --- configuration -----------------------------------------------------------------------------

#[test]
fn syntax_errors_fail_the_load_and_name_the_rule() {
    let message = authz_err(json!({"rules": [
        "true", r#"mcp.tool.name == "x""#, "mcp.tool.name ==", "true"
    ]}));
    assert!(
        message.starts_with("mcpAuthorization.rules[2]: invalid CEL: 1:17: Syntax error"),
        "{message}"
    );
    for (rules, needle) in [
        (
            json!([{"deny": "foo("}]),
            "mcpAuthorization.rules[0]: invalid CEL",
        ),
        (
            json!(["ok", {"allow": "a", "deny": "b"}]),
            "rules[1]: an object rule has exactly one member",
        ),
        (
            json!([{}]),
            "rules[0]: an object rule has exactly one member",
        ),
        (json!([{"permit": "true"}]), "rules[0]: an object rule is"),
        (
            json!([{"allow": 1}]),
            "rules[0]: the rule's expression must be a string",
        ),
        (json!([42]), "rules[0]: a rule is a CEL string"),
        (json!(["  "]), "rules[0]: the expression must not be empty"),
    ] {
        let message = authz_err(json!({ "rules": rules }));
        assert!(message.contains(needle), "{rules}: {message}");
    }
}

fn full_config(authorization: Value) -> Result<Config, String> {
    let raw = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": {"inline": jwks(&["rsa"])},
        "mcpAuthorization": authorization,
    });
    Config::from_json(raw.to_string().as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn the_plugin_config_carries_mcp_authorization() {
    let config = full_config(json!({"rules": DEMO_RULES})).expect("demo config loads");
    let authz = config.mcp_authorization.expect("present");
    assert!(authz.is_active());
    assert_eq!(authz.max_request_body_bytes, 1024 * 1024);
    assert_eq!(authz.max_list_response_bytes, 4 * 1024 * 1024);
    assert_eq!(authz.on_insufficient_scope, ScopeAnswer::StepUp);
    assert_eq!(
        full_config(json!({"rules": ["true", "1 +"]}))
            .err()
            .as_deref()
            .map(|m| m.split(": invalid").next()),
        Some(Some("mcpAuthorization.rules[1]"))
    );
    let unknown = full_config(json!({"rulez": []})).unwrap_err();
    assert!(
        unknown.starts_with("mcpAuthorization.rulez: unknown field `rulez`"),
        "{unknown}"
    );
    assert!(
        full_config(json!({"onInsufficientScope": "deny"}))
            .unwrap_err()
            .starts_with("mcpAuthorization.onInsufficientScope")
    );
    assert!(!authz_of(json!({})).is_active());
}

fn authz_of(raw: Value) -> McpAuthorization {
    authz(raw)
}

#[test]
fn required_scopes_and_bounds_are_validated() {
    for (raw, needle) in [
        (
            json!({"requiredScopes": {"tools/call:x": []}}),
            "requiredScopes.tools/call:x: must list at least one scope",
        ),
        (
            json!({"requiredScopes": {"tools/call:x": "files:read"}}),
            "must be an array of scopes",
        ),
        (
            json!({"requiredScopes": {"tools/call:x": ["a b"]}}),
            "printable ASCII without spaces",
        ),
        (
            json!({"requiredScopes": {"tools/call:x": ["a\"b"]}}),
            "printable ASCII",
        ),
        (
            json!({"requiredScopes": {"tools/call:x": [""]}}),
            "printable ASCII",
        ),
        (
            json!({"requiredScopes": {"tools/call:": ["a"]}}),
            "the name after `:` must not be empty",
        ),
        (
            json!({"requiredScopes": {":x": ["a"]}}),
            "the key is a method",
        ),
        (
            json!({"requiredScopes": {"tools/list:x": ["a"]}}),
            "only tools/call, prompts/get",
        ),
        (
            json!({"maxRequestBodyBytes": 10}),
            "mcpAuthorization.maxRequestBodyBytes: must be between 1024",
        ),
        (
            json!({"maxListResponseBytes": 0}),
            "mcpAuthorization.maxListResponseBytes: must be between",
        ),
    ] {
        let message = authz_err(raw.clone());
        assert!(message.contains(needle), "{raw}: {message}");
    }
    // A resource URI keeps its own colons.
    let a = authz(json!({"requiredScopes": {"resources/read:file:///x": ["r"]}}));
    let s = subject(&a, json!({}));
    let body =
        json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}});
    let r = reply(check(&a, &s, &body.to_string()));
    assert_eq!(r.status, 403);
    assert!(
        header(&r, "www-authenticate")
            .unwrap()
            .ends_with("scope=\"r\"")
    );
    let other =
        json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///y"}});
    assert!(matches!(
        check(&a, &s, &other.to_string()),
        Verdict::Forward { .. }
    ));
}

// --- request bodies ------------------------------------------------------------------------------

#[test]
fn calls_are_decided_per_user_with_the_hide_answer() {
    let authz = demo();
    for (user, tool_name, allowed) in [
        (alice(), "echo", true),
        (alice(), "list_files", false),
        (alice(), "delete_file", false),
        (bob(), "list_files", true),
        (bob(), "delete_file", false),
        (bob(), "system_status", false),
        (carol(), "delete_file", true),
        (carol(), "system_status", true),
        (carol(), "no_such_tool", false),
    ] {
        let s = subject(&authz, user.clone());
        let verdict = check(&authz, &s, &call(7, tool_name));
        if allowed {
            assert_eq!(
                verdict,
                Verdict::Forward { lists: vec![] },
                "{user} {tool_name}"
            );
            continue;
        }
        let reply = reply(verdict);
        assert_eq!(reply.status, 200, "{tool_name}");
        assert_eq!(
            body_json(&reply),
            json!({"jsonrpc": "2.0", "id": 7,
                   "error": {"code": -32602, "message": format!("Unknown tool: {tool_name}")}})
        );
        assert_eq!(header(&reply, "content-type"), Some("application/json"));
    }
}

#[test]
fn a_failed_scope_requirement_steps_up_with_the_needed_scopes() {
    let authz = demo_with_scopes();
    let s = subject(&authz, alice());
    let reply = reply(check(&authz, &s, &call(1, "delete_file")));
    assert_eq!(reply.status, 403);
    assert_eq!(
        header(&reply, "www-authenticate"),
        Some(
            "Bearer error=\"insufficient_scope\", error_description=\"the token lacks a scope \
             this call requires\", resource_metadata=\"https://mcp.example.com/.well-known/\
             oauth-protected-resource/mcp\", scope=\"files:delete\""
        )
    );
    assert_eq!(body_json(&reply)["error"], "insufficient_scope");
    // list_files for a user without files:read: step-up to files:read.
    let reply2 = super::tests::reply(check(&authz, &s, &call(2, "list_files")));
    assert!(
        header(&reply2, "www-authenticate")
            .unwrap()
            .ends_with("scope=\"files:read\"")
    );
    // bob has files:read: list_files passes; delete_file asks for files:delete.
    let s = subject(&authz, bob());
    assert_eq!(
        check(&authz, &s, &call(3, "list_files")),
        Verdict::Forward { lists: vec![] }
    );
    let r = super::tests::reply(check(&authz, &s, &call(4, "delete_file")));
    assert_eq!(r.status, 403);
    // With the scope but without the admin role, the rules hide delete_file.
    let dave = subject(&authz, json!({"scope": "files:delete"}));
    let r = super::tests::reply(check(&authz, &dave, &call(5, "delete_file")));
    assert_eq!(r.status, 200);
    assert_eq!(
        body_json(&r)["error"]["message"],
        "Unknown tool: delete_file"
    );
    // Unconstrained tools are not affected.
    assert_eq!(
        check(&authz, &s, &call(6, "echo")),
        Verdict::Forward { lists: vec![] }
    );
}

#[test]
fn scope_requirements_by_method_and_the_hide_option() {
    let authz = authz(json!({"requiredScopes": {
        "tools/call": ["mcp:tools"],
        "tools/call:delete_file": ["files:delete"],
        "tools/list": ["mcp:tools"],
    }}));
    let none = subject(&authz, json!({"scope": ""}));
    let tools = subject(&authz, json!({"scope": "mcp:tools"}));
    let all = subject(&authz, json!({"scope": ["mcp:tools", "files:delete"]}));
    // Every scope of every matching entry is named.
    let r = reply(check(&authz, &tools, &call(1, "delete_file")));
    assert!(
        header(&r, "www-authenticate")
            .unwrap()
            .ends_with("scope=\"mcp:tools files:delete\"")
    );
    let r = reply(check(&authz, &none, &call(1, "echo")));
    assert!(
        header(&r, "www-authenticate")
            .unwrap()
            .ends_with("scope=\"mcp:tools\"")
    );
    let list = r#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#;
    assert_eq!(reply(check(&authz, &none, list)).status, 403);
    assert!(matches!(
        check(&authz, &tools, list),
        Verdict::Forward { .. }
    ));
    assert!(matches!(
        check(&authz, &all, &call(1, "delete_file")),
        Verdict::Forward { .. }
    ));
    // Methods without requirements pass.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;
    assert!(matches!(
        check(&authz, &none, init),
        Verdict::Forward { .. }
    ));
    // Without a token, the challenge is a 401 with the scope and no error.
    let anonymous = authz.subject(None, &[]);
    let r = reply(check(&authz, &anonymous, &call(1, "echo")));
    assert_eq!(r.status, 401);
    assert_eq!(
        header(&r, "www-authenticate"),
        Some(&*format!(
            "Bearer resource_metadata=\"{PRM}\", scope=\"mcp:tools\""
        ))
    );
    // "hide": a failed requirement on a call looks like a rule denial; a method-level one on a
    // non-call method still steps up.
    let hide = super::tests::authz(json!({
        "requiredScopes": {"tools/call:delete_file": ["files:delete"], "tools/list": ["mcp:tools"]},
        "onInsufficientScope": "hide",
    }));
    let s = subject(&hide, json!({}));
    let r = reply(check(&hide, &s, &call(9, "delete_file")));
    assert_eq!(
        (r.status, body_json(&r)["error"]["code"].clone()),
        (200, json!(-32602))
    );
    assert_eq!(reply(check(&hide, &s, list)).status, 403);
}

#[test]
fn prompts_and_resources_are_decided_too() {
    let authz = authz_rules(&[
        r#"mcp.prompt.name == "greet""#,
        r#"has(mcp.resource) && mcp.resource.uri.startsWith("file:///pub/")"#,
    ]);
    let s = subject(&authz, json!({}));
    let get = |name: &str| {
        json!({"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":name}}).to_string()
    };
    let read = |uri: &str| {
        json!({"jsonrpc":"2.0","id":"r","method":"resources/read","params":{"uri":uri}}).to_string()
    };
    assert!(matches!(
        check(&authz, &s, &get("greet")),
        Verdict::Forward { .. }
    ));
    let r = reply(check(&authz, &s, &get("secret")));
    assert_eq!(body_json(&r)["error"]["message"], "Unknown prompt: secret");
    assert!(matches!(
        check(&authz, &s, &read("file:///pub/a")),
        Verdict::Forward { .. }
    ));
    let r = reply(check(&authz, &s, &read("file:///etc/passwd")));
    assert_eq!(
        body_json(&r),
        json!({"jsonrpc":"2.0","id":"r","error":{"code":-32602,"message":"Unknown resource: file:///etc/passwd"}})
    );
    let sub = json!({"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"file:///etc/x"}});
    assert_eq!(reply(check(&authz, &s, &sub.to_string())).status, 200);
    // Methods that name no target are not subject to rules (the demo's rules would deny them).
    let demo = demo();
    let s = subject(&demo, alice());
    for method in [
        "initialize",
        "ping",
        "tools/list",
        "notifications/initialized",
        "logging/setLevel",
    ] {
        let body = json!({"jsonrpc":"2.0","id":1,"method":method,"params":{}});
        assert!(
            matches!(check(&demo, &s, &body.to_string()), Verdict::Forward { .. }),
            "{method}"
        );
    }
}

#[test]
fn list_requests_are_remembered_for_filtering() {
    let authz = demo();
    let s = subject(&authz, alice());
    let body = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},
                   {"jsonrpc":"2.0","id":"p","method":"prompts/list","params":{"cursor":"x"}},
                   {"jsonrpc":"2.0","id":3,"method":"resources/list"},
                   {"jsonrpc":"2.0","id":4,"method":"resources/templates/list"},
                   {"jsonrpc":"2.0","method":"notifications/initialized"},
                   {"jsonrpc":"2.0","id":5,"result":{}}]"#;
    assert_eq!(
        check(&authz, &s, body),
        Verdict::Forward {
            lists: vec![
                ListCall {
                    id: json!(1),
                    kind: ListKind::Tools
                },
                ListCall {
                    id: json!("p"),
                    kind: ListKind::Prompts
                },
                ListCall {
                    id: json!(3),
                    kind: ListKind::Resources
                },
                ListCall {
                    id: json!(4),
                    kind: ListKind::ResourceTemplates
                },
            ]
        }
    );
}

#[test]
fn batches_with_a_denied_call_are_answered_whole() {
    let authz = demo();
    let s = subject(&authz, bob());
    let body = format!(
        "[{},{},{},{}]",
        call(1, "echo"),
        call(2, "delete_file"),
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#
    );
    let r = reply(check(&authz, &s, &body));
    assert_eq!(r.status, 200);
    assert_eq!(
        body_json(&r),
        json!([
            {"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Not executed: the batch contains a denied request"}},
            {"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"Unknown tool: delete_file"}},
            {"jsonrpc":"2.0","id":4,"error":{"code":-32000,"message":"Not executed: the batch contains a denied request"}},
        ])
    );
    // All allowed: forwarded.
    let body = format!("[{},{}]", call(1, "echo"), call(2, "list_files"));
    assert!(matches!(check(&authz, &s, &body), Verdict::Forward { .. }));
    // A step-up requirement anywhere in the batch answers 403 for all of it.
    let stepping = demo_with_scopes();
    let body = format!("[{},{}]", call(1, "echo"), call(2, "delete_file"));
    assert_eq!(
        reply(check(&stepping, &subject(&stepping, bob()), &body)).status,
        403
    );
    // A denied notification gets nothing: 202.
    let note = r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_file"}}"#;
    let r = reply(check(&authz, &s, note));
    assert_eq!((r.status, r.body.as_str()), (202, ""));
}

#[test]
fn malformed_bodies_are_refused_with_400() {
    let authz = demo();
    let s = subject(&authz, carol());
    let parse_error =
        json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}});
    let invalid =
        json!({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"}});
    let deep = "[".repeat(10_000);
    let deep_object = format!("{{\"params\":{}", "{\"a\":".repeat(5_000));
    for (body, expected) in [
        ("", &parse_error),
        ("   ", &parse_error),
        ("{", &parse_error),
        ("{\"id\":1,", &parse_error),
        ("not json", &parse_error),
        (
            r#"{"id":1,"method":"tools/call","params":{"name":"echo"}} trailing"#,
            &parse_error,
        ),
        ("\u{feff}{}", &parse_error),
        (
            r#"{"id":NaN,"method":"tools/call","params":{"name":"echo"}}"#,
            &parse_error,
        ),
        (&deep, &parse_error),
        (&deep_object, &parse_error),
        ("[]", &invalid),
        ("1", &invalid),
        ("\"x\"", &invalid),
        ("null", &invalid),
        ("[1]", &invalid),
        (r#"{"method":1}"#, &invalid),
        // Duplicate members: the filter and the server could read different targets.
        (
            r#"{"id":1,"method":"tools/call","params":{"name":"echo","name":"delete_file"}}"#,
            &invalid,
        ),
        (
            r#"{"id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#,
            &invalid,
        ),
        (r#"{"id":1,"id":2,"method":"ping"}"#, &invalid),
        // A call without a string name.
        (r#"{"id":1,"method":"tools/call","params":{}}"#, &invalid),
        (r#"{"id":1,"method":"tools/call"}"#, &invalid),
        (
            r#"{"id":1,"method":"tools/call","params":{"name":5}}"#,
            &invalid,
        ),
        (
            r#"{"id":1,"method":"tools/call","params":["echo"]}"#,
            &invalid,
        ),
        (
            r#"{"id":1,"method":"resources/read","params":{"name":"x"}}"#,
            &invalid,
        ),
    ] {
        let r = reply(check(&authz, &s, body));
        assert_eq!(r.status, 400, "{body:.60}");
        assert_eq!(&body_json(&r), expected, "{body:.60}");
    }
    // Escaped member names are the same member.
    let r = reply(check(
        &authz,
        &s,
        r#"{"id":1,"method":"tools/call","params":{"name":"echo","n\u0061me":"x"}}"#,
    ));
    assert_eq!(r.status, 400);
    // Arbitrary bytes never panic.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2000 {
        let len = usize::try_from(seed % 64).unwrap();
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b"{}[]\",:0123 namemethodtools/call\\u"[usize::try_from(seed % 34).unwrap()]
            })
            .collect();
        let _ = authz.check_request(&s, None, &bytes, PRM);
    }
}

#[test]
fn bodies_over_the_bound_get_413() {
    let authz = authz(json!({"rules": DEMO_RULES, "maxRequestBodyBytes": 1024}));
    let s = subject(&authz, carol());
    let args = "x".repeat(2000);
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"m":args}}});
    let r = reply(check(&authz, &s, &body.to_string()));
    assert_eq!(r.status, 413);
    assert_eq!(body_json(&r)["error"], "request_too_large");
    // Large bodies under the bound are read normally.
    let big = authz_of(json!({"rules": DEMO_RULES}));
    let args = "x".repeat(900_000);
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"m":args}}});
    assert!(matches!(
        check(&big, &subject(&big, carol()), &body.to_string()),
        Verdict::Forward { .. }
    ));
}

#[test]
fn jsonrpc_parse_keeps_ids_and_targets() {
    let parsed = jsonrpc::parse(br#"[{"id":null,"method":"tools/call","params":{"name":"a","arguments":{"name":"inner"}}},{"method":"n"}]"#).unwrap();
    let Body::Batch(messages) = parsed else {
        panic!("a batch")
    };
    assert_eq!(messages[0].id, Some(Value::Null));
    assert_eq!(messages[0].name.as_deref(), Some("a"));
    assert_eq!(messages[1].id, None);
    assert_eq!(
        jsonrpc::parse(b"{\"params\":null,\"method\":\"ping\"}").map(|b| b.messages().len()),
        Ok(1)
    );
    assert_eq!(jsonrpc::parse(b"").unwrap_err(), BodyError::Parse);
}

// --- list filtering ---------------------------------------------------------------------------

fn tools_result(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "tools": TOOLS.iter().map(|t| json!({"name": t, "inputSchema": {"type": "object"}})).collect::<Vec<_>>(),
        "nextCursor": "c2",
    }})
}

fn names(message: &Value, member: &str, key: &str) -> Vec<String> {
    message["result"][member]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].as_str().unwrap().to_string())
        .collect()
}

fn pending_tools(id: Value) -> Vec<ListCall> {
    vec![ListCall {
        id,
        kind: ListKind::Tools,
    }]
}

#[test]
fn json_list_responses_show_exactly_the_allowed_tools() {
    let authz = demo();
    for (user, expected) in [
        (alice(), vec!["echo", "get_user_info"]),
        (bob(), vec!["echo", "get_user_info", "list_files"]),
        (carol(), TOOLS.to_vec()),
    ] {
        let s = subject(&authz, user);
        let mut pending = pending_tools(json!(1));
        let body = tools_result(json!(1)).to_string();
        let out = listing::filter_json(&authz, &s, &mut pending, body.as_bytes());
        assert!(pending.is_empty());
        let message: Value = match out {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap(),
            None => serde_json::from_str(&body).unwrap(),
        };
        assert_eq!(names(&message, "tools", "name"), expected);
        assert_eq!(message["result"]["nextCursor"], "c2");
        assert_eq!(
            message["result"]["tools"][0]["inputSchema"],
            json!({"type":"object"})
        );
    }
}

#[test]
fn only_the_matching_response_is_filtered() {
    let authz = demo();
    let s = subject(&authz, alice());
    // Another id, a request from the server, an error: untouched.
    for (body, left) in [
        (tools_result(json!(2)), 1),
        (tools_result(json!("1")), 1),
        (
            json!({"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{"tools":[{"name":"x"}]}}),
            1,
        ),
        (
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}),
            0,
        ),
    ] {
        let mut pending = pending_tools(json!(1));
        let out = listing::filter_json(&authz, &s, &mut pending, body.to_string().as_bytes());
        assert_eq!(out, None, "{body}");
        assert_eq!(pending.len(), left, "{body}");
    }
    // Not JSON: passed as is.
    let mut pending = pending_tools(json!(1));
    assert_eq!(
        listing::filter_json(&authz, &s, &mut pending, b"<html>"),
        None
    );
    // Items without a name are dropped.
    let body = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"title":"x"},{"name":7}]}});
    let out = listing::filter_json(
        &authz,
        &s,
        &mut pending_tools(json!(1)),
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap()["result"]["tools"],
        json!([{"name":"echo"}])
    );
    // A batch response: each element matched by id.
    let batch = json!([tools_result(json!(1)), tools_result(json!(2))]);
    let mut pending = pending_tools(json!(2));
    let out = listing::filter_json(&authz, &s, &mut pending, batch.to_string().as_bytes()).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(names(&out[0], "tools", "name").len(), 5);
    assert_eq!(names(&out[1], "tools", "name"), ["echo", "get_user_info"]);
}

#[test]
fn prompts_resources_and_templates_are_filtered() {
    let authz = authz_rules(&[
        r#"has(mcp.prompt) && mcp.prompt.name == "greet""#,
        r#"has(mcp.resource) && mcp.resource.uri.startsWith("file:///pub/")"#,
        r#"has(mcp.resource) && mcp.resource.name == "open""#,
    ]);
    let s = subject(&authz, json!({}));
    let cases = [
        (
            ListKind::Prompts,
            json!({"prompts": [{"name":"greet"},{"name":"secret"}]}),
            "prompts",
            "name",
            vec!["greet"],
        ),
        (
            ListKind::Resources,
            json!({"resources": [{"uri":"file:///pub/a","name":"a"},{"uri":"file:///etc/b","name":"b"},{"uri":"db://x","name":"open"}]}),
            "resources",
            "uri",
            vec!["file:///pub/a", "db://x"],
        ),
        (
            ListKind::ResourceTemplates,
            json!({"resourceTemplates": [{"uriTemplate":"file:///pub/{p}","name":"t"},{"uriTemplate":"file:///etc/{p}","name":"u"}]}),
            "resourceTemplates",
            "uriTemplate",
            vec!["file:///pub/{p}"],
        ),
    ];
    for (kind, result, member, key, expected) in cases {
        let body = json!({"jsonrpc":"2.0","id":9,"result":result});
        let mut pending = vec![ListCall { id: json!(9), kind }];
        let out =
            listing::filter_json(&authz, &s, &mut pending, body.to_string().as_bytes()).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(names(&out, member, key), expected, "{kind:?}");
    }
}

#[test]
fn list_items_also_need_their_required_scopes() {
    let authz = demo_with_scopes();
    // files:read but the rules also need it: same answer; files:delete + admin, but the
    // requirement is on the scope the token lacks.
    let frank = subject(
        &authz,
        json!({"scope": "files:read", "https://mcp-demo/roles": ["admin"]}),
    );
    assert_eq!(
        allowed_tools(&authz, &frank),
        ["echo", "get_user_info", "list_files", "system_status"]
    );
    let only_scopes = super::tests::authz(
        json!({"requiredScopes": {"tools/call:delete_file": ["files:delete"], "tools/call": ["mcp"]}}),
    );
    assert_eq!(
        allowed_tools(
            &only_scopes,
            &subject(&only_scopes, json!({"scope": "files:delete"}))
        ),
        Vec::<&str>::new()
    );
    assert_eq!(
        allowed_tools(
            &only_scopes,
            &subject(&only_scopes, json!({"scope": "mcp"}))
        ),
        ["echo", "get_user_info", "list_files", "system_status"]
    );
}

// --- SSE --------------------------------------------------------------------------------------

fn sse_event(message: &Value) -> String {
    format!("event: message\ndata: {message}\n\n")
}

fn stream() -> String {
    let mut s = String::new();
    s.push_str(": keep-alive comment\n\n");
    s.push_str(&sse_event(
        &json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}),
    ));
    s.push_str(&sse_event(&tools_result(json!(2))));
    s.push_str(&format!(
        "id: ev-3\r\nevent: message\r\ndata: {}\r\n\r\n",
        tools_result(json!(1))
    ));
    s.push_str(&sse_event(&tools_result(json!(1))));
    s
}

fn run(
    rewriter: &mut SseRewriter,
    authz: &McpAuthorization,
    s: &Subject,
    chunks: &[&[u8]],
) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        out.extend(rewriter.push(authz, s, chunk, i == chunks.len().saturating_sub(1)));
    }
    out
}

fn parse_events(bytes: &[u8]) -> Vec<Option<Value>> {
    let text = String::from_utf8(bytes.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| sse::event_data(e.as_bytes()).map(|d| serde_json::from_str(&d).unwrap()))
        .collect()
}

#[test]
fn sse_rewrites_only_the_matching_response_event() {
    let authz = demo();
    let s = subject(&authz, alice());
    let input = stream();
    let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1 << 20);
    let out = run(&mut rewriter, &authz, &s, &[input.as_bytes()]);
    let events = parse_events(&out);
    assert_eq!(events.len(), 5);
    assert_eq!(events[0], None);
    assert_eq!(
        events[1].as_ref().unwrap()["method"],
        "notifications/progress"
    );
    assert_eq!(
        names(events[2].as_ref().unwrap(), "tools", "name").len(),
        5,
        "id 2 untouched"
    );
    assert_eq!(
        names(events[3].as_ref().unwrap(), "tools", "name"),
        ["echo", "get_user_info"]
    );
    // The call is answered: a later response with the same id passes unchanged.
    assert_eq!(names(events[4].as_ref().unwrap(), "tools", "name").len(), 5);
    assert!(rewriter.pending().is_empty());
    // The events before and after the rewritten one are byte for byte the input's.
    let text = String::from_utf8(out).unwrap();
    let original_prefix = input.split("id: ev-3").next().unwrap();
    assert!(text.starts_with(original_prefix));
    // The rewritten event keeps its other fields; its lines now end with `\n`.
    assert!(text.contains("id: ev-3\nevent: message\ndata: {"));
    assert!(text.ends_with(&sse_event(&tools_result(json!(1)))));
}

#[test]
fn sse_events_split_across_chunks_at_every_byte_give_the_same_output() {
    let authz = demo();
    let s = subject(&authz, bob());
    let input = stream();
    let bytes = input.as_bytes();
    let whole = run(
        &mut SseRewriter::new(pending_tools(json!(1)), 1 << 20),
        &authz,
        &s,
        &[bytes],
    );
    for cut in 0..=bytes.len() {
        let (a, b) = bytes.split_at(cut);
        let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1 << 20);
        let out = run(&mut rewriter, &authz, &s, &[a, b, b""]);
        assert_eq!(out, whole, "cut at {cut}");
    }
    // One byte at a time.
    let chunks: Vec<&[u8]> = bytes.chunks(1).chain([&b""[..]]).collect();
    let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1 << 20);
    assert_eq!(run(&mut rewriter, &authz, &s, &chunks), whole);
}

#[test]
fn sse_events_pass_as_soon_as_they_are_complete() {
    let authz = demo();
    let s = subject(&authz, alice());
    let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1 << 20);
    let progress =
        sse_event(&json!({"jsonrpc":"2.0","method":"notifications/progress","params":{}}));
    // A complete event passes at once; a partial one is held until its blank line.
    assert_eq!(
        rewriter.push(&authz, &s, progress.as_bytes(), false),
        progress.as_bytes()
    );
    let response = sse_event(&tools_result(json!(1)));
    let (head, tail) = response.split_at(40);
    assert!(rewriter.push(&authz, &s, head.as_bytes(), false).is_empty());
    let out = rewriter.push(&authz, &s, tail.as_bytes(), false);
    assert_eq!(
        names(&parse_events(&out)[0].clone().unwrap(), "tools", "name"),
        ["echo", "get_user_info"]
    );
    // Nothing pending any more: chunks pass through untouched, even partial events.
    assert_eq!(
        rewriter.push(&authz, &s, b"data: {partial", false),
        b"data: {partial"
    );
}

#[test]
fn sse_multiline_data_and_line_endings() {
    let data = "{\"jsonrpc\":\"2.0\",\n\"id\":1,\n\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"delete_file\"}]}}";
    let event = format!("retry: 10\rdata:{}\r\r", data.replace('\n', "\rdata:"));
    assert_eq!(sse::event_data(event.as_bytes()).as_deref(), Some(data));
    let authz = demo();
    let s = subject(&authz, alice());
    let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1 << 20);
    // The final `\r` could still be the first half of `\r\n`: the event completes at the end.
    assert!(
        rewriter
            .push(&authz, &s, event.as_bytes(), false)
            .is_empty()
    );
    let out = rewriter.push(&authz, &s, b"", true);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "retry: 10\ndata: {\"id\":1,\"jsonrpc\":\"2.0\",\"result\":{\"cacheScope\":\"private\",\"tools\":[{\"name\":\"echo\"}]}}\n\n"
    );
    assert_eq!(sse::event_data(b"data\n\n").as_deref(), Some(""));
    assert_eq!(sse::event_data(b"event: x\n\n"), None);
    assert_eq!(sse::event_data(b"datum: x\n\n"), None);
}

#[test]
fn sse_an_event_over_the_bound_is_dropped_and_the_stream_goes_on() {
    let authz = demo();
    let s = subject(&authz, alice());
    let big = sse_event(
        &json!({"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x".repeat(5000)}}),
    );
    let small = sse_event(&tools_result(json!(1)));
    let input = format!("{big}{small}");
    for chunk_size in [1, 7, 100, 4096, input.len()] {
        let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1024);
        let mut out = Vec::new();
        for chunk in input.as_bytes().chunks(chunk_size) {
            out.extend(rewriter.push(&authz, &s, chunk, false));
        }
        out.extend(rewriter.push(&authz, &s, b"", true));
        let events = parse_events(&out);
        if chunk_size == input.len() {
            // Arrived whole: nothing had to be held, so nothing was dropped.
            assert_eq!(events.len(), 2);
            continue;
        }
        assert_eq!(rewriter.dropped(), 1, "chunk {chunk_size}");
        assert_eq!(events.len(), 1, "chunk {chunk_size}");
        assert_eq!(
            names(events[0].as_ref().unwrap(), "tools", "name"),
            ["echo", "get_user_info"]
        );
    }
}

#[test]
fn a_dropped_event_is_reported_by_the_push_that_dropped_it_only() {
    // The host warns when a push dropped an event. The chunks after one oversized event (the
    // rest of it, the list answer, later notifications) must not warn again.
    let authz = demo();
    let s = subject(&authz, alice());
    let big = sse_event(
        &json!({"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x".repeat(5000)}}),
    );
    let answer = sse_event(&tools_result(json!(1)));
    let ping = sse_event(&json!({"jsonrpc":"2.0","method":"ping"}));
    let chunks: [&[u8]; 4] = [
        &big.as_bytes()[..2000],
        &big.as_bytes()[2000..],
        answer.as_bytes(),
        ping.as_bytes(),
    ];
    let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1024);
    let mut reported = Vec::new();
    for chunk in chunks {
        rewriter.push(&authz, &s, chunk, false);
        reported.push(rewriter.dropped_by_last_push());
    }
    assert_eq!(reported, [1, 0, 0, 0]);
    assert_eq!(rewriter.dropped(), 1);
    assert!(rewriter.done());
}

#[test]
fn splitter_handles_cr_at_chunk_edges_and_the_end_of_stream() {
    let mut events: Vec<Vec<u8>> = Vec::new();
    let mut splitter = EventSplitter::new(1024);
    splitter.push(b"data: a\r", false, |e| events.push(e.to_vec()));
    splitter.push(b"\n\r", false, |e| events.push(e.to_vec()));
    assert!(events.is_empty(), "\\r may still be followed by \\n");
    splitter.push(b"\ndata: b", false, |e| events.push(e.to_vec()));
    assert_eq!(events, [b"data: a\r\n\r\n".to_vec()]);
    splitter.push(b"", true, |e| events.push(e.to_vec()));
    assert_eq!(events[1], b"data: b".to_vec());
    assert_eq!(splitter.held(), 0);
}

#[test]
fn too_large_list_bodies_become_errors() {
    let body: Value =
        serde_json::from_slice(&listing::too_large_body(&pending_tools(json!(4)))).unwrap();
    assert_eq!(body["id"], 4);
    assert_eq!(body["error"]["code"], -32603);
    let two = vec![
        ListCall {
            id: json!(1),
            kind: ListKind::Tools,
        },
        ListCall {
            id: json!(2),
            kind: ListKind::Prompts,
        },
    ];
    let body: Value = serde_json::from_slice(&listing::too_large_body(&two)).unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(2));
}

#[test]
fn without_a_token_rules_see_an_empty_jwt() {
    let authz = demo();
    let anonymous = authz.subject(None, &[]);
    assert!(!anonymous.authenticated());
    assert_eq!(allowed_tools(&authz, &anonymous), ["echo", "get_user_info"]);
    let r = reply(check(&authz, &anonymous, &call(1, "list_files")));
    assert_eq!(
        body_json(&r)["error"]["message"],
        "Unknown tool: list_files"
    );
}

/// A list answer carrying one invalid UTF-8 byte (in a description), as an upstream might.
fn answer_with_a_stray_byte() -> Vec<u8> {
    let text = tools_result(json!(1)).to_string();
    let (head, tail) = text.split_at(text.find("\"inputSchema\"").unwrap());
    [
        head.as_bytes(),
        b"\"description\":\"\xff\",",
        tail.as_bytes(),
    ]
    .concat()
}

#[test]
fn a_list_answer_with_invalid_utf8_is_filtered_not_passed_whole() {
    // Found by the `sse` fuzz target's oracle: such an answer used to pass unfiltered.
    let authz = demo();
    let s = subject(&authz, alice());
    let mut pending = pending_tools(json!(1));
    let out = listing::filter_json(&authz, &s, &mut pending, &answer_with_a_stray_byte()).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(names(&out, "tools", "name"), ["echo", "get_user_info"]);

    let event = [b"data: ".as_slice(), &answer_with_a_stray_byte(), b"\n\n"].concat();
    let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1 << 20);
    let out = run(&mut rewriter, &authz, &s, &[&event]);
    let events = parse_events(&out);
    assert_eq!(
        names(events[0].as_ref().unwrap(), "tools", "name"),
        ["echo", "get_user_info"]
    );
}

#[test]
fn a_request_body_with_invalid_utf8_is_a_parse_error() {
    // Found by the `jsonrpc` fuzz target: serde skips an ignored member without checking it.
    let body = b"{\"jsonrpc\":\"2.0\",\"x\":\"\xc9\",\"id\":1,\"method\":\"ping\"}";
    assert_eq!(jsonrpc::parse(body), Err(jsonrpc::BodyError::Parse));
}

#[test]
fn a_batch_element_must_be_an_object() {
    // Found by the `jsonrpc` fuzz target: a derived struct also reads an array by position.
    for body in ["[[]]", r#"[[1, "tools/call", {"name": "echo"}]]"#] {
        assert_eq!(
            jsonrpc::parse(body.as_bytes()),
            Err(jsonrpc::BodyError::Invalid),
            "{body}"
        );
    }
}

#[test]
fn the_rest_of_a_dropped_event_is_dropped_after_the_answer_too() {
    // Found by the `sse` fuzz target: once the list call was answered, the fast path passed
    // the tail of an oversized event being dropped as if it were an event of its own.
    let authz = demo();
    let s = subject(&authz, alice());
    let mut rewriter = SseRewriter::new(pending_tools(json!(1)), 1024);
    let answer = sse_event(&tools_result(json!(1)));
    let big = format!("data: {}\n", "Z".repeat(1500));
    // The answer and the start of an oversized event arrive together: the event is dropped
    // while the call is still pending, and the call is answered in the same chunk.
    let first = [answer.as_bytes(), &big.as_bytes()[..1100]].concat();
    let chunks: [&[u8]; 3] = [
        &first,
        &big.as_bytes()[1100..],
        b"\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n\n",
    ];
    let out = run(&mut rewriter, &authz, &s, &chunks);
    assert!(!out.contains(&b'Z'), "{}", String::from_utf8_lossy(&out));
    let events = parse_events(&out);
    assert_eq!(events.len(), 2, "{}", String::from_utf8_lossy(&out));
    assert_eq!(events[1].as_ref().unwrap()["method"], "ping");
    assert_eq!(rewriter.dropped(), 1);
}
