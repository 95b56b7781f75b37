//! Filtering of list results: the items a caller may not use disappear from the responses
//! to `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list`, whether
//! the response is a JSON body or an event of an SSE stream. Only responses whose `id`
//! matches a list request of the same exchange are touched. A result filtered for the
//! caller is marked `"cacheScope": "private"` (MCP 2026-07-28, SEP-2549).

use serde_json::Value;

use super::jsonrpc;
use super::rules::{Subject, Target, TargetKind};
use super::sse::{self, EventSplitter};

/// JSON-RPC code sent instead of a list response that is too large to filter.
pub const TOO_LARGE_CODE: i64 = -32603;

/// Which list a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    pub fn from_method(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(Self::Tools),
            "prompts/list" => Some(Self::Prompts),
            "resources/list" => Some(Self::Resources),
            "resources/templates/list" => Some(Self::ResourceTemplates),
            _ => None,
        }
    }

    /// The member of `result` that holds the items.
    fn member(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The target an item stands for, as the method that would use it. `None` for an item
    /// without its identifying string (it is removed).
    pub fn target(self, item: &Value) -> Option<Target<'_>> {
        let text = |key: &str| item.get(key).and_then(Value::as_str);
        let (kind, method, name, label) = match self {
            Self::Tools => (TargetKind::Tool, "tools/call", text("name")?, None),
            Self::Prompts => (TargetKind::Prompt, "prompts/get", text("name")?, None),
            Self::Resources => (
                TargetKind::Resource,
                "resources/read",
                text("uri")?,
                text("name"),
            ),
            Self::ResourceTemplates => (
                TargetKind::Resource,
                "resources/read",
                text("uriTemplate")?,
                text("name"),
            ),
        };
        Some(Target {
            kind,
            method,
            name,
            label,
        })
    }
}

/// Whether an item stays in a filtered list: `McpAuthorization` answers, in the parent module,
/// so that the dependency points one way (the parent uses this module, not the reverse).
pub trait ItemPolicy {
    fn item_allowed(&self, subject: &Subject, target: &Target<'_>) -> bool;
}

/// A list request whose response is still to come.
#[derive(Debug, Clone, PartialEq)]
pub struct ListCall {
    pub id: Value,
    pub kind: ListKind,
}

/// Filters the list results in `message` (one JSON-RPC message or a batch of them), marks
/// them `"cacheScope": "private"`, and forgets the calls it answered. Returns whether
/// anything changed.
pub fn filter_value(
    authz: &dyn ItemPolicy,
    subject: &Subject,
    pending: &mut Vec<ListCall>,
    message: &mut Value,
) -> bool {
    match message {
        Value::Array(messages) => {
            let mut changed = false;
            for message in messages {
                changed |= filter_one(authz, subject, pending, message);
            }
            changed
        }
        _ => filter_one(authz, subject, pending, message),
    }
}

fn filter_one(
    authz: &dyn ItemPolicy,
    subject: &Subject,
    pending: &mut Vec<ListCall>,
    message: &mut Value,
) -> bool {
    let Value::Object(object) = message else {
        return false;
    };
    if object.contains_key("method") {
        return false; // a request or notification from the server, not a response
    }
    let Some(id) = object.get("id") else {
        return false;
    };
    let Some(index) = pending.iter().position(|call| &call.id == id) else {
        return false;
    };
    let call = pending.remove(index);
    let Some(Value::Object(result)) = object.get_mut("result") else {
        return false;
    };
    let Some(Value::Array(items)) = result.get_mut(call.kind.member()) else {
        return false;
    };
    let before = items.len();
    items.retain(|item| {
        call.kind
            .target(item)
            .is_some_and(|target| authz.item_allowed(subject, &target))
    });
    let removed = items.len() != before;
    // Filtered for this caller: no shared cache may hand it to another (SEP-2549). `ttlMs`
    // stays as the server set it.
    let private = Value::String(PRIVATE.into());
    let marked = result.get(CACHE_SCOPE) == Some(&private);
    if !marked {
        result.insert(CACHE_SCOPE.into(), private);
    }
    removed || !marked
}

const CACHE_SCOPE: &str = "cacheScope";
const PRIVATE: &str = "private";

/// Filters a JSON response body. `None` when it is unchanged (including bodies that are not
/// JSON: nothing in them can be a list the client would read).
pub fn filter_json(
    authz: &dyn ItemPolicy,
    subject: &Subject,
    pending: &mut Vec<ListCall>,
    body: &[u8],
) -> Option<Vec<u8>> {
    // Lossy for the same reason as SSE data (`sse::event_data`): what a lenient client reads.
    let mut message: Value = serde_json::from_str(&String::from_utf8_lossy(body)).ok()?;
    filter_value(authz, subject, pending, &mut message).then(|| message.to_string().into_bytes())
}

/// The body sent instead of a list response too large to filter: an error per pending call.
pub fn too_large_body(pending: &[ListCall]) -> Vec<u8> {
    error_body(
        pending,
        "list response too large to filter (mcpAuthorization.maxListResponseBytes)",
    )
}

/// A JSON-RPC error (`-32603`) for each pending call: one object, or a batch for several.
pub fn error_body(pending: &[ListCall], message: &str) -> Vec<u8> {
    let errors: Vec<Value> = pending
        .iter()
        .map(|call| jsonrpc::error(&call.id, TOO_LARGE_CODE, message))
        .collect();
    let value = match <[Value; 1]>::try_from(errors) {
        Ok([one]) => one,
        Err(errors) => Value::Array(errors),
    };
    value.to_string().into_bytes()
}

/// Rewrites an SSE response stream: each complete event passes as it arrives, and only the
/// events carrying a pending list response are rewritten. Once every list call is answered
/// the rest of the stream passes untouched, without splitting.
#[derive(Debug)]
pub struct SseRewriter {
    splitter: EventSplitter,
    pending: Vec<ListCall>,
    /// Events dropped so far, and by the last push.
    dropped: usize,
    dropped_by_last_push: usize,
}

impl SseRewriter {
    pub fn new(pending: Vec<ListCall>, max_event_bytes: usize) -> Self {
        Self {
            splitter: EventSplitter::new(max_event_bytes),
            pending,
            dropped: 0,
            dropped_by_last_push: 0,
        }
    }

    /// The bytes to pass on for `chunk` (possibly fewer, when an event is incomplete).
    pub fn push(
        &mut self,
        authz: &dyn ItemPolicy,
        subject: &Subject,
        chunk: &[u8],
        end: bool,
    ) -> Vec<u8> {
        if self.done() {
            self.dropped_by_last_push = 0;
            return chunk.to_vec();
        }
        let mut out = Vec::with_capacity(chunk.len());
        let pending = &mut self.pending;
        let dropped = self.splitter.push(chunk, end, |event| {
            if pending.is_empty() {
                out.extend_from_slice(event);
                return;
            }
            let rewritten = sse::event_data(event).and_then(|data| {
                let mut message: Value = serde_json::from_str(&data).ok()?;
                filter_value(authz, subject, pending, &mut message)
                    .then(|| sse::replace_data(event, &message.to_string()))
            });
            match rewritten {
                Some(bytes) => out.extend_from_slice(&bytes),
                None => out.extend_from_slice(event),
            }
        });
        self.dropped = self.dropped.saturating_add(dropped);
        self.dropped_by_last_push = dropped;
        out
    }

    /// Events dropped for being larger than the bound.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Events the last push dropped: the host warns for these, once, not for every chunk
    /// that follows.
    pub fn dropped_by_last_push(&self) -> usize {
        self.dropped_by_last_push
    }

    /// Whether every list answer has passed and no event is half read: the rest of the stream
    /// passes untouched.
    pub fn done(&self) -> bool {
        self.pending.is_empty() && self.splitter.idle()
    }

    pub fn pending(&self) -> &[ListCall] {
        &self.pending
    }
}
