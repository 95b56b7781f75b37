//! The JSON-RPC request check and the JSON list filter of `mcpAuthorization`, against the
//! model in `src/mcp.rs`. Input: `[caller]` then a request body, optionally followed by
//! `0xFF` and a JSON response body. Invariants: a forwarded body is well-formed JSON-RPC in
//! which every targeted call is one the model allows; a local answer is JSON (or an empty
//! 202); after filtering, the first answer to each list call holds only allowed items.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::authz::Verdict;
use mcp_authn::core::authz::listing::filter_json;
use mcp_authn_fuzz::mcp::{authz, check_list_answer, model_allows, subject};
use serde_json::Value;

fn messages(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(list) => list.iter().collect(),
        other => vec![other],
    }
}

fuzz_target!(|data: &[u8]| {
    let [caller, rest @ ..] = data else { return };
    let caller = usize::from(*caller);
    let (body, response) = match rest.iter().position(|b| *b == 0xFF) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let subject = subject(caller);
    match authz().check_request(
        &subject,
        None,
        body,
        "https://mcp.example.com/.well-known/x",
    ) {
        Verdict::Respond(reply) => {
            assert!(
                [200, 202, 400, 403, 413].contains(&reply.status),
                "status {}",
                reply.status
            );
            if reply.status == 202 {
                assert!(reply.body.is_empty());
            } else {
                serde_json::from_str::<Value>(&reply.body).expect("a local answer is JSON");
            }
        }
        Verdict::Forward { lists } => {
            let parsed: Value = match serde_json::from_slice(body) {
                Ok(parsed) => parsed,
                // RFC 8259 allows lone surrogate escapes (8.2) and numbers of any size (6);
                // serde_json's Value refuses both.
                Err(e)
                    if ["surrogate", "number out of range"]
                        .iter()
                        .any(|m| e.to_string().contains(m)) =>
                {
                    return;
                }
                Err(e) => panic!("forwarded a body that is not JSON: {e}"),
            };
            let all = messages(&parsed);
            assert!(!all.is_empty(), "forwarded an empty batch");
            for message in all {
                let object = message.as_object().expect("forwarded a non-object message");
                let Some(method) = object.get("method").and_then(Value::as_str) else {
                    continue;
                };
                let key = if method.starts_with("resources/") {
                    "uri"
                } else {
                    "name"
                };
                if matches!(
                    method,
                    "tools/call" | "prompts/get" | "resources/read" | "resources/subscribe"
                ) {
                    let name = object
                        .get("params")
                        .and_then(|p| p.get(key))
                        .and_then(Value::as_str);
                    let name = name.unwrap_or_else(|| panic!("forwarded {method} without a {key}"));
                    assert!(
                        model_allows(caller, method, name),
                        "forwarded a denied {method} {name:?}"
                    );
                }
            }
            let Some(response) = response else { return };
            let filtered = filter_json(authz().as_ref(), &subject, &mut lists.clone(), response);
            let out = filtered.as_deref().unwrap_or(response);
            let Ok(parsed) = serde_json::from_slice::<Value>(out) else {
                assert!(filtered.is_none(), "the filter produced invalid JSON");
                return;
            };
            for call in &lists {
                let member = match call.kind {
                    mcp_authn::core::authz::listing::ListKind::Tools => "tools",
                    mcp_authn::core::authz::listing::ListKind::Prompts => "prompts",
                    mcp_authn::core::authz::listing::ListKind::Resources => "resources",
                    mcp_authn::core::authz::listing::ListKind::ResourceTemplates => {
                        "resourceTemplates"
                    }
                };
                // The first answer to each call is the one the filter rewrites.
                let _ = messages(&parsed)
                    .into_iter()
                    .any(|m| check_list_answer(caller, m, &call.id, member));
            }
        }
    }
});
