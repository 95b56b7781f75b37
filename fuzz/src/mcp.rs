//! Shared pieces of the `mcpAuthorization` targets: a fixed rule set, two callers, and a
//! model of who may use what, written from the rules rather than read from the filter.

use std::sync::{Arc, OnceLock};

use mcp_authn::core::authz::McpAuthorization;
use mcp_authn::core::authz::rules::Subject;
use mcp_authn::core::config::Config;
use serde_json::{Map, Value, json};

use crate::base_config;

/// Allow-only rules about tools and one prompt, and a scope requirement.
fn authz_config() -> Value {
    let mut config = base_config();
    config["mcpAuthorization"] = json!({
        "rules": [
            "mcp.tool.name == \"echo\"",
            "mcp.tool.name == \"list_files\" && jwt.scope.contains(\"files:read\")",
            "mcp.tool.name == \"delete_file\"",
            "has(mcp.prompt) && mcp.prompt.name == \"greet\""
        ],
        "requiredScopes": {"tools/call:delete_file": ["files:delete"]},
        "maxRequestBodyBytes": 4096,
        "maxListResponseBytes": 1024
    });
    config
}

/// The rule set, parsed once.
pub fn authz() -> &'static Arc<McpAuthorization> {
    static AUTHZ: OnceLock<Arc<McpAuthorization>> = OnceLock::new();
    AUTHZ.get_or_init(|| {
        let config =
            Config::from_json(authz_config().to_string().as_bytes()).expect("authz config");
        config.mcp_authorization.expect("mcpAuthorization set")
    })
}

/// The callers: no file scopes; `files:read`; `files:read files:delete`.
pub const CALLERS: [&str; 3] = ["openid", "openid files:read", "files:read files:delete"];

pub fn subject(caller: usize) -> Subject {
    let claims: Map<String, Value> = json!({"sub": "u", "scope": CALLERS[caller % CALLERS.len()]})
        .as_object()
        .expect("object")
        .clone();
    authz().subject(Some(&claims), &[])
}

/// Whether the model lets `caller` use the target of `method` named `name`.
pub fn model_allows(caller: usize, method: &str, name: &str) -> bool {
    let scopes: Vec<&str> = CALLERS[caller % CALLERS.len()].split(' ').collect();
    match method {
        "tools/call" => {
            name == "echo"
                || (name == "list_files" && scopes.contains(&"files:read"))
                || (name == "delete_file" && scopes.contains(&"files:delete"))
        }
        "prompts/get" => name == "greet",
        "resources/read" | "resources/subscribe" => false,
        _ => true,
    }
}

/// The method that uses an item of a list result member, and the item's identifying key.
pub fn list_member(member: &str) -> Option<(&'static str, &'static str)> {
    match member {
        "tools" => Some(("tools/call", "name")),
        "prompts" => Some(("prompts/get", "name")),
        "resources" => Some(("resources/read", "uri")),
        "resourceTemplates" => Some(("resources/read", "uriTemplate")),
        _ => None,
    }
}

/// Asserts that `message`'s list result (if it answers `id`) holds only items the caller may use.
/// Returns whether it was that answer.
pub fn check_list_answer(caller: usize, message: &Value, id: &Value, member: &str) -> bool {
    if message.get("id") != Some(id) || message.get("method").is_some() {
        return false;
    }
    let Some(items) = message.get("result").and_then(|r| r.get(member)) else {
        return true;
    };
    let (method, key) = list_member(member).expect("known member");
    for item in items.as_array().map(Vec::as_slice).unwrap_or_default() {
        let name = item.get(key).and_then(Value::as_str);
        assert!(
            name.is_some_and(|n| model_allows(caller, method, n)),
            "a denied or unnamed {member} item reached the client: {item}"
        );
    }
    true
}
