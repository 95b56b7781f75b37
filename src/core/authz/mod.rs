//! MCP-aware authorization (`mcpAuthorization`): which tools, prompts and resources a caller
//! may use, decided from the request headers (2026-07-28) and the JSON-RPC body, and list
//! responses filtered to match.
//!
//! - [`headers`]: the 2026-07-28 mirrored headers, decoded, and their agreement with the body.
//! - [`rules`]: the CEL rules (agentgateway's form), compiled at load.
//! - [`jsonrpc`]: the request body, strictly parsed (single message or batch).
//! - [`listing`]: `tools/list`, `prompts/list`, `resources/list` and
//!   `resources/templates/list` results filtered, in a JSON body or an SSE stream.
//! - [`sse`]: incremental splitting of a `text/event-stream` into events.
//!
//! Everything here is pure: the host buffers bodies and splices the results.

pub mod headers;
pub mod jsonrpc;
pub mod listing;
pub mod rules;
pub mod sse;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ConfigError, bounded_size};
use super::reply::{
    ErrorCode, LocalReply, NO_STORE, OFFLINE_ACCESS, challenge_reply, error_body, is_scope_token,
};
use headers::{Era, HEADER_MISMATCH, Mirrored, Mismatch};
use jsonrpc::{Body, BodyError, Message};
use listing::{ItemPolicy, ListCall, ListKind};
use rules::{RuleSet, Subject, Target, TargetKind, Use};

/// Default and bounds of `mcpAuthorization.maxRequestBodyBytes`.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 1024 * 1024;
const MAX_REQUEST_BODY_RANGE: (u64, u64) = (1024, 16 * 1024 * 1024);
/// Default and bounds of `mcpAuthorization.maxListResponseBytes`.
pub const DEFAULT_MAX_LIST_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;
const MAX_LIST_RESPONSE_RANGE: (u64, u64) = (1024, 64 * 1024 * 1024);

/// JSON-RPC code of agentgateway's "hide" answer (`Unknown tool: <name>`).
pub const HIDDEN_CODE: i64 = -32602;
/// JSON-RPC code for the other requests of a batch that was not forwarded.
pub const NOT_EXECUTED_CODE: i64 = -32000;

const PATH: &str = "mcpAuthorization";

/// Logged at load (and printed by `mcp-authn check-config`) when the opt-in is on: what the
/// filter then leaves to the MCP server.
pub const TRUSTS_SERVER_HEADER_VALIDATION: &str = "mcpAuthorization.trustServerHeaderValidation: \
     a 2026-07-28 call that its headers allow is forwarded without reading its body; the MCP \
     server must refuse a body that disagrees with Mcp-Method, Mcp-Name or Mcp-Param-* (400, \
     -32020), or a tool the rules deny can run";

/// What a denied call gets when a `requiredScopes` entry is what failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScopeAnswer {
    /// `403` with `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`
    /// (`401` with `scope=` when there is no token), so the client can step up.
    #[default]
    StepUp,
    /// The same JSON-RPC answer as a rule denial.
    Hide,
}

/// `mcpAuthorization` as written.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawMcpAuthorization {
    #[serde(default)]
    rules: Vec<Value>,
    #[serde(default)]
    required_scopes: Map<String, Value>,
    #[serde(default)]
    implied_scopes: Map<String, Value>,
    #[serde(default)]
    on_insufficient_scope: ScopeAnswer,
    #[serde(default)]
    max_request_body_bytes: Option<u64>,
    #[serde(default)]
    max_list_response_bytes: Option<u64>,
    #[serde(default)]
    trust_server_header_validation: bool,
}

/// One `requiredScopes` entry: `method` or `method:name`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScopeRequirement {
    method: String,
    name: Option<String>,
    scopes: Vec<String>,
}

/// `mcpAuthorization`, validated and compiled.
#[derive(Debug)]
pub struct McpAuthorization {
    rules: RuleSet,
    required_scopes: Vec<ScopeRequirement>,
    /// A broader scope and every narrower scope it implies, transitively.
    implied_scopes: Vec<(String, Vec<String>)>,
    pub on_insufficient_scope: ScopeAnswer,
    pub max_request_body_bytes: usize,
    pub max_list_response_bytes: usize,
    /// `trustServerHeaderValidation`: a 2026-07-28 (or later) request its headers allow is
    /// forwarded without reading its body, trusting the server to refuse a body that
    /// disagrees with them (the revision makes that a server MUST). Off by default: then no
    /// body that disagrees with its headers is ever forwarded.
    pub trust_server_header_validation: bool,
}

/// What the host does with an inspected request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Forward it; filter the responses to these list calls.
    Forward { lists: Vec<ListCall> },
    /// Answer locally.
    Respond(LocalReply),
}

/// What the headers of a POST lead to, before its body is read.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderStep {
    /// Answer now, without the body: malformed 2026-07-28 headers, or a step-up.
    Respond(LocalReply),
    /// Read the body; for a 2026-07-28 request it must agree with these headers.
    ReadBody(Option<Mirrored>),
    /// Forward without reading the body (`trustServerHeaderValidation`): the trusted
    /// 2026-07-28 headers allow the request, and no list response needs filtering.
    Forward,
}

/// How one message fared.
enum Check {
    Allowed,
    /// A `requiredScopes` entry failed; these are all the scopes the call needs.
    NeedsScopes(Vec<String>),
    Hidden(TargetKind, String),
    Invalid,
}

/// Methods whose target authorization decides. 2026-07-28 removed `resources/subscribe`: a
/// modern request for it is the server's to refuse (404).
fn target_kind(method: &str, modern: bool) -> Option<TargetKind> {
    match method {
        "tools/call" => Some(TargetKind::Tool),
        "prompts/get" => Some(TargetKind::Prompt),
        "resources/read" => Some(TargetKind::Resource),
        "resources/subscribe" if !modern => Some(TargetKind::Resource),
        _ => None,
    }
}

/// The target of a body message, when its method has one: `Some(None)` when the message
/// lacks the name or URI.
fn target_of<'a>(
    method: &'a str,
    message: &'a Message,
    modern: bool,
) -> Option<Option<Target<'a>>> {
    let kind = target_kind(method, modern)?;
    let name = match kind {
        TargetKind::Resource => message.uri.as_deref(),
        TargetKind::Tool | TargetKind::Prompt => message.name.as_deref(),
    };
    Some(name.map(|name| Target {
        kind,
        method,
        name,
        label: None,
    }))
}

fn takes_name(method: &str) -> bool {
    matches!(
        method,
        "tools/call" | "prompts/get" | "resources/read" | "resources/subscribe"
    )
}

impl McpAuthorization {
    pub fn from_raw(raw: RawMcpAuthorization) -> Result<Self, ConfigError> {
        let rules = RuleSet::compile(&raw.rules, &format!("{PATH}.rules"))?;
        let mut required_scopes = Vec::new();
        for (key, value) in raw.required_scopes {
            let path = format!("{PATH}.requiredScopes.{key}");
            let error = |message: &str| ConfigError {
                path: path.clone(),
                message: message.into(),
            };
            let (method, name) = match key.split_once(':') {
                Some((method, name)) => (method, Some(name)),
                None => (key.as_str(), None),
            };
            if method.is_empty() || method.contains(char::is_whitespace) {
                return Err(error("the key is a method (`tools/call`) or method:name"));
            }
            if let Some(name) = name {
                if name.is_empty() {
                    return Err(error("the name after `:` must not be empty"));
                }
                if !takes_name(method) {
                    return Err(error(
                        "only tools/call, prompts/get, resources/read and resources/subscribe \
                         take a name",
                    ));
                }
            }
            let scopes = scope_list(value, &path)?;
            if scopes.iter().any(|s| s == OFFLINE_ACCESS) {
                return Err(error(
                    "offline_access is not a resource requirement and never goes into a \
                     challenge (MCP 2026-07-28); remove it",
                ));
            }
            required_scopes.push(ScopeRequirement {
                method: method.to_string(),
                name: name.map(str::to_string),
                scopes,
            });
        }
        let implied_scopes = implied_scopes(raw.implied_scopes)?;
        Ok(Self {
            rules,
            required_scopes,
            implied_scopes,
            on_insufficient_scope: raw.on_insufficient_scope,
            trust_server_header_validation: raw.trust_server_header_validation,
            max_request_body_bytes: bounded_size(
                raw.max_request_body_bytes,
                DEFAULT_MAX_REQUEST_BODY_BYTES,
                MAX_REQUEST_BODY_RANGE,
                &format!("{PATH}.maxRequestBodyBytes"),
            )?,
            max_list_response_bytes: bounded_size(
                raw.max_list_response_bytes,
                DEFAULT_MAX_LIST_RESPONSE_BYTES,
                MAX_LIST_RESPONSE_RANGE,
                &format!("{PATH}.maxListResponseBytes"),
            )?,
        })
    }

    /// Whether request bodies need reading at all (some rule or scope requirement exists).
    pub fn is_active(&self) -> bool {
        !self.rules.is_empty() || !self.required_scopes.is_empty()
    }

    /// The caller, converted once per request. `claims` is `None` without a valid token.
    /// `mcp.params` holds the `Mcp-Param-*` headers only for a well-formed 2026-07-28 request.
    pub fn subject(
        &self,
        claims: Option<&Map<String, Value>>,
        headers: &[(String, String)],
    ) -> Subject {
        let era = headers::read(headers);
        let params = match &era {
            Ok(Era::Modern(mirrored)) => Some(mirrored.params.as_slice()),
            _ => None,
        };
        self.rules
            .subject(claims, headers, params, &|scopes| self.expand(scopes))
    }

    /// Every scope `scopes` hold, with the narrower ones they imply.
    fn expand(&self, mut scopes: Vec<String>) -> Vec<String> {
        for (broad, narrower) in &self.implied_scopes {
            if scopes.contains(broad) {
                for scope in narrower {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
            }
        }
        scopes
    }

    /// Decides what a POST's headers allow before its body arrives. From 2026-07-28 on, the
    /// mirrored headers are validated and decide a step-up at once; the body is still read
    /// (to check that it says the same, and for the JSON-RPC id of any other answer), unless
    /// `trustServerHeaderValidation` lets headers that allow the call forward it unread.
    /// Older requests: the headers are not trusted, the body decides.
    pub fn check_headers(
        &self,
        subject: &Subject,
        headers: &[(String, String)],
        metadata_url: &str,
    ) -> HeaderStep {
        let mirrored = match headers::read(headers) {
            Err(mismatch) => return HeaderStep::Respond(mismatch_reply(&Value::Null, &mismatch)),
            Ok(Era::Legacy) => return HeaderStep::ReadBody(None),
            Ok(Era::Modern(mirrored)) => mirrored,
        };
        // Only the scope step-up is answered here; the rules run once, on the agreeing body
        // (their hide answer needs its id anyway).
        let method = mirrored.method.as_str();
        let step_up = self.on_insufficient_scope == ScopeAnswer::StepUp || !takes_name(method);
        match self.missing_scopes(subject, method, mirrored.name.as_deref()) {
            Some(scopes) if step_up => {
                HeaderStep::Respond(step_up_reply(subject, &scopes, metadata_url))
            }
            None if self.trust_server_header_validation
                && self.headers_allow(subject, &mirrored) =>
            {
                HeaderStep::Forward
            }
            _ => HeaderStep::ReadBody(Some(mirrored)),
        }
    }

    /// Whether trusted 2026-07-28 headers alone allow the request (its scopes already hold).
    /// A list call is never decided here: its response is filtered by the JSON-RPC id, which
    /// only the body has. A denial is not either: its answer needs that id too.
    fn headers_allow(&self, subject: &Subject, mirrored: &Mirrored) -> bool {
        let method = mirrored.method.as_str();
        if ListKind::from_method(method).is_some() {
            return false;
        }
        let Some(kind) = target_kind(method, true) else {
            return true;
        };
        mirrored.name.as_deref().is_some_and(|name| {
            let target = Target {
                kind,
                method,
                name,
                label: None,
            };
            self.rules.allows(subject, &target, Use::Call)
        })
    }

    /// Decides an MCP POST body. `mirrored` (from [`Self::check_headers`]) must agree with
    /// it. `metadata_url` goes into step-up challenges.
    pub fn check_request(
        &self,
        subject: &Subject,
        mirrored: Option<&Mirrored>,
        body: &[u8],
        metadata_url: &str,
    ) -> Verdict {
        if body.len() > self.max_request_body_bytes {
            return Verdict::Respond(too_large_reply());
        }
        let parsed = match jsonrpc::parse(body) {
            Ok(parsed) => parsed,
            Err(error) => return Verdict::Respond(invalid_reply(error)),
        };
        if let Some(mirrored) = mirrored
            && let Err(mismatch) = headers::agree(mirrored, &parsed)
        {
            let id = match &parsed {
                Body::Single(message) => message.id.clone().unwrap_or(Value::Null),
                Body::Batch(_) => Value::Null,
            };
            return Verdict::Respond(mismatch_reply(&id, &mismatch));
        }
        let mut lists = Vec::new();
        let mut needed: Vec<String> = Vec::new();
        let mut hidden: Vec<Option<Value>> = Vec::new();
        let checks: Vec<Check> = parsed
            .messages()
            .iter()
            .map(|message| self.check_message(subject, message, mirrored.is_some()))
            .collect();
        for (message, check) in parsed.messages().iter().zip(&checks) {
            match check {
                Check::Allowed => {
                    if let (Some(kind), Some(id)) = (
                        message.method.as_deref().and_then(ListKind::from_method),
                        &message.id,
                    ) {
                        lists.push(ListCall {
                            id: id.clone(),
                            kind,
                        });
                    }
                }
                Check::NeedsScopes(scopes) => {
                    for scope in scopes {
                        if !needed.contains(scope) {
                            needed.push(scope.clone());
                        }
                    }
                }
                Check::Hidden(..) => hidden.push(message.id.clone()),
                Check::Invalid => return Verdict::Respond(invalid_reply(BodyError::Invalid)),
            }
        }
        if !needed.is_empty() {
            return Verdict::Respond(step_up_reply(subject, &needed, metadata_url));
        }
        if hidden.is_empty() {
            return Verdict::Forward { lists };
        }
        Verdict::Respond(hidden_reply(&parsed, &checks))
    }

    fn check_message(&self, subject: &Subject, message: &Message, modern: bool) -> Check {
        let Some(method) = message.method.as_deref() else {
            return Check::Allowed; // a response to a server request
        };
        let target = match target_of(method, message, modern) {
            None => None,
            Some(None) => return Check::Invalid,
            Some(Some(target)) => Some(target),
        };
        let name = target.map(|t| t.name);
        if let Some(scopes) = self.missing_scopes(subject, method, name) {
            let step_up = self.on_insufficient_scope == ScopeAnswer::StepUp || target.is_none();
            return match target {
                Some(target) if !step_up => Check::Hidden(target.kind, target.name.to_string()),
                _ => Check::NeedsScopes(scopes),
            };
        }
        match target {
            Some(target) if !self.rules.allows(subject, &target, Use::Call) => {
                Check::Hidden(target.kind, target.name.to_string())
            }
            _ => Check::Allowed,
        }
    }

    /// `Some(all scopes the call needs)` when the caller lacks one of them.
    fn missing_scopes(
        &self,
        subject: &Subject,
        method: &str,
        name: Option<&str>,
    ) -> Option<Vec<String>> {
        let mut needed: Vec<String> = Vec::new();
        let mut missing = false;
        for requirement in self
            .required_scopes
            .iter()
            .filter(|r| r.method == method && (r.name.is_none() || r.name.as_deref() == name))
        {
            for scope in &requirement.scopes {
                missing |= !subject.has_scope(scope);
                if !needed.contains(scope) {
                    needed.push(scope.clone());
                }
            }
        }
        missing.then_some(needed)
    }

    /// Whether a list item stays visible: its scope requirements hold and the rules allow it.
    pub fn item_allowed(&self, subject: &Subject, target: &Target<'_>) -> bool {
        self.missing_scopes(subject, target.method, Some(target.name))
            .is_none()
            && self.rules.allows(subject, target, Use::Listing)
    }

    /// Whether the rules alone allow calling `target`.
    #[cfg(test)]
    pub fn rules_allow(&self, subject: &Subject, target: &Target<'_>) -> bool {
        self.rules.allows(subject, target, Use::Call)
    }
}

impl ItemPolicy for McpAuthorization {
    fn item_allowed(&self, subject: &Subject, target: &Target<'_>) -> bool {
        McpAuthorization::item_allowed(self, subject, target)
    }
}

/// A non-empty array of scope tokens at `path`.
fn scope_list(value: Value, path: &str) -> Result<Vec<String>, ConfigError> {
    let error = |message: &str| ConfigError {
        path: path.to_string(),
        message: message.into(),
    };
    let Value::Array(items) = value else {
        return Err(error("must be an array of scopes"));
    };
    let mut scopes = Vec::with_capacity(items.len());
    for item in items {
        let scope = item.as_str().filter(|s| is_scope_token(s)).ok_or_else(|| {
            error(
                "each scope is a non-empty string of printable ASCII without spaces, `\"` or `\\`",
            )
        })?;
        scopes.push(scope.to_string());
    }
    if scopes.is_empty() {
        return Err(error("must list at least one scope"));
    }
    Ok(scopes)
}

/// `impliedScopes`: `{"broad": ["narrow", ...]}`, closed transitively at load so that one
/// pass over a token's scopes finds everything they imply.
fn implied_scopes(raw: Map<String, Value>) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let mut direct: Vec<(String, Vec<String>)> = Vec::new();
    for (broad, value) in raw {
        let path = format!("{PATH}.impliedScopes.{broad}");
        if !is_scope_token(&broad) {
            return Err(ConfigError {
                path,
                message: "the key is a scope token".into(),
            });
        }
        direct.push((broad, scope_list(value, &path)?));
    }
    let mut closed = Vec::with_capacity(direct.len());
    for (broad, _) in &direct {
        let mut reached: Vec<String> = Vec::new();
        let mut frontier = vec![broad.clone()];
        while let Some(scope) = frontier.pop() {
            let narrower = direct
                .iter()
                .filter(|(b, _)| *b == scope)
                .flat_map(|(_, n)| n);
            for next in narrower {
                if next != broad && !reached.contains(next) {
                    reached.push(next.clone());
                    frontier.push(next.clone());
                }
            }
        }
        closed.push((broad.clone(), reached));
    }
    Ok(closed)
}

fn json_reply(status: u32, body: String) -> LocalReply {
    LocalReply::json(status, body).with("cache-control", NO_STORE)
}

/// 413: the body is larger than `maxRequestBodyBytes`.
pub fn too_large_reply() -> LocalReply {
    json_reply(
        413,
        error_body(
            "request_too_large",
            "the request body exceeds mcpAuthorization.maxRequestBodyBytes",
        ),
    )
}

/// 400 with a JSON-RPC error and `id: null`: the body could not be authorized.
fn invalid_reply(error: BodyError) -> LocalReply {
    json_reply(
        400,
        jsonrpc::error(&Value::Null, error.code(), error.message()).to_string(),
    )
}

/// 400 with JSON-RPC `HeaderMismatch` (`-32020`), as a 2026-07-28 server answers it.
fn mismatch_reply(id: &Value, mismatch: &Mismatch) -> LocalReply {
    json_reply(
        400,
        jsonrpc::error(
            id,
            HEADER_MISMATCH,
            &format!("Header mismatch: {}", mismatch.0),
        )
        .to_string(),
    )
}

/// 403 `insufficient_scope` (401 with `scope=` when the caller has no token).
fn step_up_reply(subject: &Subject, needed: &[String], metadata_url: &str) -> LocalReply {
    let error = subject.authenticated().then_some((
        ErrorCode::InsufficientScope,
        "the token lacks a scope this call requires",
    ));
    challenge_reply(metadata_url, Some(&needed.join(" ")), error)
}

/// agentgateway's "hide" answer, HTTP 200: `-32602 Unknown tool: <name>` for each denied
/// request. A batch is not forwarded when any of it is denied; its other requests get
/// `-32000`. Notifications get nothing (202 when nothing is left to say).
fn hidden_reply(body: &Body, checks: &[Check]) -> LocalReply {
    let mut answers = Vec::new();
    for (message, check) in body.messages().iter().zip(checks) {
        let (Some(id), Some(_)) = (&message.id, &message.method) else {
            continue;
        };
        let answer = match check {
            Check::Hidden(kind, name) => {
                jsonrpc::error(id, HIDDEN_CODE, &format!("Unknown {}: {name}", kind.noun()))
            }
            _ => jsonrpc::error(
                id,
                NOT_EXECUTED_CODE,
                "Not executed: the batch contains a denied request",
            ),
        };
        answers.push(answer);
    }
    let text = match (body, answers.len()) {
        (_, 0) => {
            return LocalReply {
                status: 202,
                headers: Vec::new(),
                body: String::new(),
            };
        }
        (Body::Single(_), _) => answers
            .into_iter()
            .next()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        (Body::Batch(_), _) => Value::Array(answers).to_string(),
    };
    json_reply(200, text)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_modern;
#[cfg(test)]
mod tests_trusted;
