//! The CEL rules of `mcpAuthorization.rules`, in agentgateway's form: compiled once at load,
//! evaluated per target (a called tool, prompt or resource, or one item of a list).
//!
//! Evaluation order: no rules allow everything; a matching `deny` denies; a failing `require`
//! denies; a matching `allow` allows; otherwise the target is allowed only when there are no
//! `allow` rules. An evaluation error, or a result that is not `true`, counts as false.
//!
//! Rules that mention `params` read `mcp.params`, the `Mcp-Param-*` headers of a 2026-07-28
//! call (whose server must refuse a body that disagrees). Without such a guarantee (an older
//! protocol version) an error in such a rule fails closed: a `deny` hits, a `require` fails,
//! an `allow` misses. In list filtering it is open instead: the call itself decides.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cel::common::types::{CelBool, DYN_TYPE, LIST_TYPE};
use cel::common::value::CowVal;
use cel::objects::Key;
use cel::{Context, Env, ExecutionError, Program, Value as Cel};
use serde_json::{Map, Value};

use crate::core::error::ConfigError;

/// Claims whose space-delimited string form is turned into a list (`.contains()` then
/// matches whole scope tokens, as it does for the array form).
const SCOPE_CLAIMS: [&str; 2] = ["scope", "scp"];

/// How a rule's result is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Allow,
    Deny,
    Require,
}

impl RuleKind {
    fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Require => "require",
        }
    }
}

struct Rule {
    kind: RuleKind,
    source: String,
    program: Program,
    /// Mentions `params`: its errors follow [`Use`] instead of counting as false.
    uses_params: bool,
}

/// Where a target is evaluated, which decides what an error in a `params` rule means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A call: errors fail closed unless the request's params are trusted.
    Call,
    /// An item of a list result: no arguments exist yet, errors fail open.
    Listing,
}

/// The compiled rules with the CEL environment they run in.
pub struct RuleSet {
    env: Arc<Env>,
    rules: Vec<Rule>,
    has_allow: bool,
    uses_request: bool,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.rules
                    .iter()
                    .map(|r| format!("{}: {}", r.kind.name(), r.source)),
            )
            .finish()
    }
}

/// What a rule is evaluated against: one tool, prompt or resource, and the method that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub kind: TargetKind,
    /// `tools/call`, `prompts/get`, `resources/read`, ... For a list item, the method that
    /// would use it (`tools/call` for an item of `tools/list`).
    pub method: &'a str,
    /// The tool or prompt name, or the resource URI (URI template for templates).
    pub name: &'a str,
    /// A resource's `name`, when known.
    pub label: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Tool,
    Prompt,
    Resource,
}

impl TargetKind {
    /// `tool`, `prompt`, `resource`: the member of `mcp` and the word in "Unknown tool: x".
    pub fn noun(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Prompt => "prompt",
            Self::Resource => "resource",
        }
    }
}

/// Who is asking, converted to CEL once per request: `jwt` (empty without a valid token) and
/// `request.headers`.
pub struct Subject {
    root: Context<'static, 'static>,
    scopes: Vec<String>,
    authenticated: bool,
    /// `mcp.params`, and whether the protocol version makes the server validate them.
    params: Cel,
    params_trusted: bool,
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("scopes", &self.scopes)
            .field("authenticated", &self.authenticated)
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// The token's scopes (`scope` and `scp`, string or array forms).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

impl RuleSet {
    /// Compiles `rules` (raw JSON). Errors name the rule: `mcpAuthorization.rules[2]: ...`.
    pub fn compile(raw: &[Value], path: &str) -> Result<Self, ConfigError> {
        let env = Arc::new(environment().map_err(|e| ConfigError {
            path: path.into(),
            message: format!("CEL environment: {e}"),
        })?);
        let mut rules = Vec::with_capacity(raw.len());
        for (i, value) in raw.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (kind, source) = rule_form(value).map_err(|message| ConfigError {
                path: at.clone(),
                message: message.into(),
            })?;
            let program = env.compile(source).map_err(|e| ConfigError {
                path: at.clone(),
                message: format!("invalid CEL: {}", parse_error_text(&e.to_string())),
            })?;
            rules.push(Rule {
                kind,
                source: source.to_string(),
                program,
                uses_params: source.contains("params"),
            });
        }
        let has_allow = rules.iter().any(|r| r.kind == RuleKind::Allow);
        let uses_request = rules
            .iter()
            .any(|r| r.program.references().has_variable("request"));
        Ok(Self {
            env,
            rules,
            has_allow,
            uses_request,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Converts the caller once: `claims` is `None` for a request without a valid token.
    /// `params` are the request's `Mcp-Param-*` values when its protocol version makes the
    /// server validate them; `expand` adds the scopes a token's scopes imply.
    pub fn subject(
        &self,
        claims: Option<&Map<String, Value>>,
        headers: &[(String, String)],
        params: Option<&[(String, String)]>,
        expand: &dyn Fn(Vec<String>) -> Vec<String>,
    ) -> Subject {
        let mut root = Context::with_env(Arc::clone(&self.env));
        let mut scopes: Vec<String> = Vec::new();
        for name in SCOPE_CLAIMS {
            for token in claims
                .and_then(|c| c.get(name))
                .map(scope_tokens)
                .unwrap_or_default()
            {
                if !scopes.contains(&token) {
                    scopes.push(token);
                }
            }
        }
        let scopes = expand(scopes);
        // Null when not trusted: any use of it (`has()` included) is an error, never a value.
        let params_value = params.map_or(Cel::Null, |params| {
            map(params
                .iter()
                .map(|(name, value)| (Key::from(name.as_str()), Cel::from(value.as_str())))
                .collect())
        });
        if self.rules.is_empty() {
            // Only `requiredScopes`: nothing reads the CEL variables.
            return Subject {
                root,
                scopes,
                authenticated: claims.is_some(),
                params: params_value,
                params_trusted: params.is_some(),
            };
        }
        let mut jwt = HashMap::new();
        for (name, value) in claims.into_iter().flatten() {
            let value = match value {
                // The scope claims as a list of every scope held, implied ones included.
                _ if SCOPE_CLAIMS.contains(&name.as_str()) => {
                    let own = expand(scope_tokens(value));
                    Cel::List(Arc::new(own.into_iter().map(Cel::from).collect()))
                }
                other => to_cel(other),
            };
            jwt.insert(Key::from(name.as_str()), value);
        }
        root.add_variable_from_value("jwt", map(jwt));
        if self.uses_request {
            let mut header_map: HashMap<Key, Cel> = HashMap::new();
            for (name, value) in headers {
                let joined = match header_map.remove(&Key::from(name.as_str())) {
                    Some(Cel::String(previous)) => format!("{previous},{value}"),
                    _ => value.clone(),
                };
                header_map.insert(Key::from(name.as_str()), Cel::from(joined));
            }
            let mut request = HashMap::new();
            request.insert(Key::from("headers"), map(header_map));
            root.add_variable_from_value("request", map(request));
        }
        Subject {
            root,
            scopes,
            authenticated: claims.is_some(),
            params: params_value,
            params_trusted: params.is_some(),
        }
    }

    /// Whether the rules allow `target` for `subject`.
    pub fn allows(&self, subject: &Subject, target: &Target<'_>, usage: Use) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let mut scope = subject.root.new_inner_scope();
        let params = match usage {
            Use::Call => &subject.params,
            Use::Listing => &Cel::Null,
        };
        scope.add_variable_from_value("mcp", mcp_value(target, params));
        let mut allowed = false;
        for rule in &self.rules {
            let result = rule.program.execute(&scope);
            let hit = match (&result, rule.uses_params, usage) {
                (Ok(Cel::Bool(b)), ..) => *b,
                // Open: the rule does not stand in the item's way.
                (Err(_), true, Use::Listing) => rule.kind != RuleKind::Deny,
                // Closed: unvalidated params cannot satisfy or escape a rule.
                (Err(_), true, Use::Call) if !subject.params_trusted => rule.kind == RuleKind::Deny,
                _ => false,
            };
            match (rule.kind, hit) {
                (RuleKind::Deny, true) | (RuleKind::Require, false) => return false,
                (RuleKind::Allow, true) => allowed = true,
                _ => {}
            }
        }
        allowed || !self.has_allow
    }
}

/// The standard library plus `list.contains(x)`, which claims such as roles need.
fn environment() -> Result<Env, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_member_overload(
        "contains",
        "list.contains(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        list_contains,
    )?;
    Ok(env)
}

fn list_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let count = args.len();
    let mut args = args.into_iter();
    let (Some(list), Some(needle), None) = (args.next(), args.next(), args.next()) else {
        return Err(ExecutionError::invalid_argument_count(2, count));
    };
    let items = list
        .as_ref()
        .as_iterable()
        .ok_or_else(|| ExecutionError::function_error("contains", "receiver is not a list"))?;
    let mut items = items.iter();
    let mut found = false;
    while let Some(item) = items.next() {
        if item.equals(needle.as_ref()) {
            found = true;
            break;
        }
    }
    Ok(CowVal::Owned(Box::new(CelBool::from(found))))
}

/// A string rule is an allow rule; an object has exactly one of `allow`, `deny`, `require`.
fn rule_form(value: &Value) -> Result<(RuleKind, &str), &'static str> {
    let (kind, source) = match value {
        Value::String(source) => (RuleKind::Allow, source.as_str()),
        Value::Object(object) => {
            let mut members = object.iter();
            let (Some((key, expr)), None) = (members.next(), members.next()) else {
                return Err("an object rule has exactly one member: allow, deny or require");
            };
            let kind = match key.as_str() {
                "allow" => RuleKind::Allow,
                "deny" => RuleKind::Deny,
                "require" => RuleKind::Require,
                _ => {
                    return Err(
                        "an object rule is {\"allow\": ..}, {\"deny\": ..} or {\"require\": ..}",
                    );
                }
            };
            let source = expr
                .as_str()
                .ok_or("the rule's expression must be a string")?;
            (kind, source)
        }
        _ => return Err("a rule is a CEL string or {\"allow\"|\"deny\"|\"require\": \"<CEL>\"}"),
    };
    if source.trim().is_empty() {
        return Err("the expression must not be empty");
    }
    Ok((kind, source))
}

/// cel-rust's multi-line parse error, on one line: `1:4: Syntax error: ...`.
fn parse_error_text(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    first
        .trim_start_matches("ERROR: ")
        .trim_start_matches("<input>:")
        .trim()
        .to_string()
}

fn scope_tokens(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_ascii_whitespace().map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn map(entries: HashMap<Key, Cel>) -> Cel {
    Cel::Map(cel::objects::Map {
        map: Arc::new(entries),
    })
}

fn to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cel::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cel::UInt(u)
            } else {
                Cel::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Cel::from(s.as_str()),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(object) => map(object
            .iter()
            .map(|(k, v)| (Key::from(k.as_str()), to_cel(v)))
            .collect()),
    }
}

/// `mcp`: `{method, params, tool: {name}}`, `{method, params, prompt: {name}}` or
/// `{method, params, resource: {uri, name?}}`.
fn mcp_value(target: &Target<'_>, params: &Cel) -> Cel {
    let mut inner = HashMap::new();
    match target.kind {
        TargetKind::Resource => {
            inner.insert(Key::from("uri"), Cel::from(target.name));
            if let Some(label) = target.label {
                inner.insert(Key::from("name"), Cel::from(label));
            }
        }
        TargetKind::Tool | TargetKind::Prompt => {
            inner.insert(Key::from("name"), Cel::from(target.name));
        }
    }
    let mut mcp = HashMap::new();
    mcp.insert(Key::from("method"), Cel::from(target.method));
    mcp.insert(Key::from("params"), params.clone());
    mcp.insert(Key::from(target.kind.noun()), map(inner));
    map(mcp)
}
