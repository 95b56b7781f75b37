//! The SSE list rewriter of `mcpAuthorization`, fed a stream in fuzzer-chosen chunks, against
//! the model in `src/mcp.rs` and an SSE reader written here. Input: `[caller][chunking seed]`
//! then the stream; the pending list call is `tools/list` with id 1. Invariants: the first
//! event answering id 1 holds only allowed tools; every other output event is one of the
//! input's events (same data), so nothing is invented or spliced; a rewritten event's data is
//! JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::authz::listing::{ListCall, ListKind, SseRewriter};
use mcp_authn_fuzz::mcp::{authz, check_list_answer, subject};
use serde_json::{Value, json};

/// The `data` of each complete event (blank-line terminated; `\r\n`, `\n` or `\r` line ends),
/// read per the HTML event-stream rules; events without data are skipped.
fn event_data(stream: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stream)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.pop(); // the text after the last line break is not a complete line
    for line in lines {
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match data.as_mut() {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            }
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let [caller, seed, stream @ ..] = data else {
        return;
    };
    let caller = usize::from(*caller);
    let subject = subject(caller);
    let id = json!(1);
    let pending = vec![ListCall {
        id: id.clone(),
        kind: ListKind::Tools,
    }];
    let mut rewriter = SseRewriter::new(pending, authz().max_list_response_bytes);
    let mut out = Vec::new();
    let mut rest = stream;
    let mut step = usize::from(*seed) + 1;
    while !rest.is_empty() {
        let take = step.min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        out.extend(rewriter.push(authz().as_ref(), &subject, chunk, rest.is_empty()));
        step = step * 7 % 251 + 1;
    }
    if stream.is_empty() {
        out.extend(rewriter.push(authz().as_ref(), &subject, &[], true));
    }
    // A stream's unterminated last event is passed at its end: terminate both for the reader.
    let input_events = event_data(&[stream, b"\n\n"].concat());
    let output_events = event_data(&[out.as_slice(), b"\n\n"].concat());
    let mut answered = false;
    for event in &output_events {
        let parsed: Option<Value> = serde_json::from_str(event).ok();
        if !answered && let Some(value) = &parsed {
            let messages: Vec<&Value> = match value {
                Value::Array(list) => list.iter().collect(),
                other => vec![other],
            };
            answered = messages
                .into_iter()
                .any(|m| check_list_answer(caller, m, &id, "tools"));
        }
        if !input_events.contains(event) {
            assert!(
                parsed.is_some(),
                "an output event is neither an input event nor rewritten JSON: {event:?}"
            );
        }
    }
});
