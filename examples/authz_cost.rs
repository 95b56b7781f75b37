//! The per-request cost of `mcpAuthorization`: rule evaluation and list filtering, with the
//! user's demo rules. Run with `cargo run --release --example authz_cost`. Native timings:
//! in Envoy's V8 the module runs slower (expect 1.5-3x), but the ratios hold.
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::expect_used,
    clippy::unreachable
)] // benchmark driver, not filter code

use std::hint::black_box;
use std::time::{Duration, Instant};

use mcp_authn::core::authz::listing::{self, ListCall, ListKind, SseRewriter};
use mcp_authn::core::authz::{HeaderStep, McpAuthorization, RawMcpAuthorization, Verdict};
use serde_json::{Map, Value, json};

const DEMO_RULES: [&str; 5] = [
    r#"mcp.tool.name == "echo""#,
    r#"mcp.tool.name == "get_user_info""#,
    r#"mcp.tool.name == "list_files" && jwt.scope.contains("files:read")"#,
    r#"mcp.tool.name == "delete_file" && jwt.scope.contains("files:delete") && jwt["https://mcp-demo/roles"].contains("admin")"#,
    r#"mcp.tool.name == "system_status" && jwt["https://mcp-demo/roles"].contains("admin")"#,
];
const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

fn authz(raw: Value) -> McpAuthorization {
    let raw: RawMcpAuthorization = serde_json::from_value(raw).expect("config parses");
    McpAuthorization::from_raw(raw).expect("config is valid")
}

fn claims() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "iss": "https://tenant.auth0.com/", "sub": "auth0|carol", "aud": "https://mcp-oauth-demo",
        "iat": 1_700_000_000, "exp": 1_700_003_600, "azp": "client",
        "scope": "openid profile files:read files:delete",
        "https://mcp-demo/roles": ["admin"],
    }) else {
        unreachable!()
    };
    map
}

/// Runs `f` for about `budget`, returns the mean time per call.
fn measure(mut f: impl FnMut()) -> Duration {
    for _ in 0..200 {
        f();
    }
    let budget = Duration::from_millis(400);
    let mut iterations = 0u32;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        iterations += 100;
    }
    start.elapsed() / iterations
}

fn tools_response(count: usize) -> String {
    let names = [
        "echo",
        "get_user_info",
        "list_files",
        "delete_file",
        "system_status",
    ];
    let tools: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "name": if i < names.len() { names[i].to_string() } else { format!("tool_{i}") },
                "description": "A tool with a typical description of a few words.",
                "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
            })
        })
        .collect();
    json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}).to_string()
}

fn row(what: &str, time: Duration) {
    println!("{what:<62} {:>9.2} µs", time.as_secs_f64() * 1e6);
}

/// A 2026-07-28 `tools/call`: what the headers decide alone, and the body check after them.
fn modern(claims: &Map<String, Value>) {
    let demo = authz(json!({"rules": DEMO_RULES,
        "requiredScopes": {"tools/call:delete_file": ["files:delete", "files:write"]}}));
    let headers = |tool: &str| {
        [
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .to_vec()
    };
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "hi"},
                   "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                             "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    println!();
    let (echo, delete) = (headers("echo"), headers("delete_file"));
    row(
        "2026-07-28 delete_file step-up: subject + headers, no body",
        measure(|| {
            let subject = demo.subject(Some(black_box(claims)), &delete);
            let step = demo.check_headers(&subject, &delete, PRM);
            assert!(matches!(step, HeaderStep::Respond(ref r) if r.status == 403));
        }),
    );
    row(
        "2026-07-28 echo: subject + headers (allowed, body to check)",
        measure(|| {
            let subject = demo.subject(Some(black_box(claims)), &echo);
            black_box(demo.check_headers(&subject, &echo, PRM));
        }),
    );
    let subject = demo.subject(Some(claims), &echo);
    let HeaderStep::ReadBody(mirrored) = demo.check_headers(&subject, &echo, PRM) else {
        unreachable!()
    };
    row(
        "2026-07-28 echo: the body check (parse, agree, rules)",
        measure(|| {
            let verdict =
                demo.check_request(&subject, mirrored.as_ref(), black_box(body.as_bytes()), PRM);
            assert!(matches!(verdict, Verdict::Forward { .. }));
        }),
    );
    let trusted = authz(json!({"rules": DEMO_RULES,
        "requiredScopes": {"tools/call:delete_file": ["files:delete", "files:write"]},
        "trustServerHeaderValidation": true}));
    row(
        "2026-07-28 echo, trusted headers: subject + headers + rules",
        measure(|| {
            let subject = trusted.subject(Some(black_box(claims)), &echo);
            let step = trusted.check_headers(&subject, &echo, PRM);
            assert!(matches!(step, HeaderStep::Forward));
        }),
    );
}

fn main() {
    let demo = authz(json!({"rules": DEMO_RULES}));
    let none = authz(json!({"requiredScopes": {"tools/call:delete_file": ["files:delete"]}}));
    let claims = claims();
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "accept".to_string(),
            "application/json, text/event-stream".to_string(),
        ),
        ("mcp-protocol-version".to_string(), "2025-06-18".to_string()),
    ];
    let call = |name: &str| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": name, "arguments": {"name": "a.txt"}}})
        .to_string()
    };
    let delete = call("delete_file");
    let echo = call("echo");

    println!("mcpAuthorization cost per request (native, release; demo rules, 5 CEL rules)\n");
    row(
        "subject: claims + headers to CEL (once per request)",
        measure(|| {
            black_box(demo.subject(Some(black_box(&claims)), &headers));
        }),
    );
    let subject = demo.subject(Some(&claims), &headers);
    row(
        "tools/call echo: parse body + rules (1st rule matches)",
        measure(|| {
            let verdict = demo.check_request(&subject, None, black_box(echo.as_bytes()), PRM);
            assert!(matches!(verdict, Verdict::Forward { .. }));
        }),
    );
    row(
        "tools/call delete_file: parse body + all 5 rules",
        measure(|| {
            black_box(demo.check_request(&subject, None, black_box(delete.as_bytes()), PRM));
        }),
    );
    row(
        "whole request: subject + tools/call delete_file",
        measure(|| {
            let subject = demo.subject(Some(black_box(&claims)), &headers);
            black_box(demo.check_request(&subject, None, black_box(delete.as_bytes()), PRM));
        }),
    );
    let scoped = none.subject(Some(&claims), &headers);
    row(
        "requiredScopes only (no CEL): subject + tools/call",
        measure(|| {
            let subject = none.subject(Some(black_box(&claims)), &headers);
            black_box(none.check_request(&subject, None, black_box(delete.as_bytes()), PRM));
        }),
    );
    black_box(scoped);
    modern(&claims);
    println!();
    for count in [5, 50, 200] {
        let body = tools_response(count);
        row(
            &format!(
                "tools/list JSON filter, {count} tools ({} bytes)",
                body.len()
            ),
            measure(|| {
                let mut pending = vec![ListCall {
                    id: json!(1),
                    kind: ListKind::Tools,
                }];
                black_box(listing::filter_json(
                    &demo,
                    &subject,
                    &mut pending,
                    black_box(body.as_bytes()),
                ));
            }),
        );
        let event = format!("event: message\ndata: {body}\n\n");
        row(
            &format!("tools/list SSE filter, {count} tools, 1 chunk"),
            measure(|| {
                let mut rewriter = SseRewriter::new(
                    vec![ListCall {
                        id: json!(1),
                        kind: ListKind::Tools,
                    }],
                    1 << 22,
                );
                black_box(rewriter.push(&demo, &subject, black_box(event.as_bytes()), false));
            }),
        );
        row(
            &format!("tools/list SSE filter, {count} tools, 1 KiB chunks"),
            measure(|| {
                let mut rewriter = SseRewriter::new(
                    vec![ListCall {
                        id: json!(1),
                        kind: ListKind::Tools,
                    }],
                    1 << 22,
                );
                for chunk in event.as_bytes().chunks(1024) {
                    black_box(rewriter.push(&demo, &subject, chunk, false));
                }
            }),
        );
    }
    let mut passthrough = SseRewriter::new(Vec::new(), 1 << 22);
    let chunk = vec![b'x'; 16 * 1024];
    row(
        "SSE chunk after the list answer (16 KiB, passed through)",
        measure(|| {
            black_box(passthrough.push(&demo, &subject, black_box(&chunk), false));
        }),
    );
}
