//! Request and response bodies for `mcpAuthorization`: buffers the JSON-RPC request body (up
//! to the bound), asks the core for a verdict, and splices filtered list responses into JSON
//! bodies and SSE streams. Every decision is made in `crate::core::authz`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::core::authz::headers::Mirrored;
use crate::core::authz::listing::{self, ListCall, SseRewriter};
use crate::core::authz::rules::Subject;
use crate::core::authz::{HeaderStep, McpAuthorization, Verdict, too_large_reply};
use crate::core::config::Config;
use crate::core::decision::{Decision, Final, Outcome};
use crate::core::reply::LocalReply;
use crate::core::request::Request;

use super::headers;
use super::reply::send;

/// One HTTP exchange's authorization state.
pub type Shared = Rc<RefCell<Exchange>>;

#[derive(Default)]
pub struct Exchange {
    request: RequestPhase,
    response: ResponsePhase,
}

#[derive(Default)]
enum RequestPhase {
    /// Not subject to `mcpAuthorization` (or already decided).
    #[default]
    Off,
    /// Paused for keys: Envoy holds the body until authentication is decided.
    AwaitingDecision,
    /// Authenticated (or passed by mode): the body decides.
    Inspecting(Box<Inspection>),
    /// Forwarded after inspection: these list calls' responses are filtered.
    Forwarded(Box<Inspection>, Vec<ListCall>),
}

/// What inspecting a request needs.
pub struct Inspection {
    authz: Arc<McpAuthorization>,
    subject: Subject,
    metadata_url: String,
    /// A 2026-07-28 request's validated headers, which its body must agree with.
    mirrored: Option<Mirrored>,
}

/// A POST under `mcpAuthorization`: answered from its headers, or its body inspected.
pub enum Prepared {
    Respond(LocalReply),
    Inspect(Inspection),
}

#[derive(Default)]
enum ResponsePhase {
    #[default]
    Pass,
    Json(Box<Inspection>, Vec<ListCall>),
    Sse(Box<Inspection>, SseRewriter),
    /// An encoded body: replaced by JSON-RPC errors for these calls.
    Refuse(Vec<ListCall>),
    /// The body was replaced already; drop the rest.
    Drop,
}

pub fn new_exchange() -> Shared {
    Rc::new(RefCell::new(Exchange::default()))
}

/// Whether `decision` forwards a request whose body `mcpAuthorization` must read, and what
/// reading it needs. Only `POST`s that pass authentication are inspected; without a valid token
/// (optional / permissive modes) the rules see an empty `jwt`. `None` also for a request its
/// trusted 2026-07-28 headers allow (`trustServerHeaderValidation`): its body callbacks then
/// continue at once, never pausing or copying the body.
pub fn prepare(config: &Config, request: &Request, decision: &Final) -> Option<Prepared> {
    let authz = config.mcp_authorization.as_ref()?;
    if !authz.is_active() || request.method != "POST" {
        return None;
    }
    let claims = match decision {
        Decision::Forward {
            outcome: Outcome::Allowed { claims },
            ..
        } => Some(claims.as_map()),
        Decision::Forward {
            outcome: Outcome::Unauthenticated { .. },
            ..
        } => None,
        _ => return None,
    };
    let subject = authz.subject(claims, &request.headers);
    let metadata_url = config.metadata.metadata_url(request);
    match authz.check_headers(&subject, &request.headers, &metadata_url) {
        HeaderStep::Respond(reply) => Some(Prepared::Respond(reply)),
        HeaderStep::ReadBody(mirrored) => Some(Prepared::Inspect(Inspection {
            authz: Arc::clone(authz),
            subject,
            metadata_url,
            mirrored,
        })),
        HeaderStep::Forward => None,
    }
}

/// After the headers' decision was carried out (`action`): a request its headers deny is
/// answered now, before anything reaches the upstream; one with a body to inspect has its
/// body held (`on_http_request_body`) until it is decided.
///
/// The headers of an inspected request go on: Envoy turns a paused `on_http_request_headers`
/// into `StopAllIteration`, which would also keep the body from this filter. A denied request
/// is answered locally before any of its body reaches the upstream, which then sees a reset.
/// Not inlined: `on_http_request_headers` calls it twice.
#[inline(never)]
pub fn after_headers(
    exchange: &Shared,
    prepared: Option<Prepared>,
    action: Action,
    end_of_stream: bool,
) -> Action {
    match (action, prepared) {
        (Action::Continue, Some(Prepared::Respond(reply))) => {
            log::debug!(
                "mcp_authn: mcpAuthorization answered {} from the headers",
                reply.status
            );
            send(&reply);
            Action::Pause
        }
        (Action::Continue, Some(Prepared::Inspect(inspection))) if !end_of_stream => {
            inspect_body(&mut exchange.borrow_mut(), inspection);
            action
        }
        _ => action,
    }
}

fn inspect_body(exchange: &mut Exchange, inspection: Inspection) {
    // List responses must arrive uncompressed to be filtered.
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "accept-encoding", None);
    exchange.request = RequestPhase::Inspecting(Box::new(inspection));
}

/// The request pauses for keys (the worker keeps `exchange` with it); a body, if any,
/// reaches this filter after it resumes.
pub fn await_keys(exchange: &Shared, end_of_stream: bool) {
    exchange.borrow_mut().request = if end_of_stream {
        RequestPhase::Off
    } else {
        RequestPhase::AwaitingDecision
    };
}

/// After a paused request was decided (on its effective context). Returns whether to resume.
pub fn after_keys(exchange: &Shared, prepared: Option<Prepared>, action: Action) -> bool {
    let mut resume = matches!(action, Action::Continue);
    let inspection = match prepared {
        Some(Prepared::Respond(reply)) if resume => {
            send(&reply);
            resume = false;
            None
        }
        Some(Prepared::Inspect(inspection)) => Some(inspection),
        _ => None,
    };
    let mut state = exchange.borrow_mut();
    let awaiting = matches!(state.request, RequestPhase::AwaitingDecision);
    state.request = RequestPhase::Off;
    if let (true, true, Some(inspection)) = (resume, awaiting, inspection) {
        inspect_body(&mut state, inspection);
    }
    resume
}

/// `on_http_request_body`.
pub fn request_body(exchange: &Shared, body_size: usize, end_of_stream: bool) -> Action {
    let mut state = exchange.borrow_mut();
    match &state.request {
        RequestPhase::Off | RequestPhase::Forwarded(..) => Action::Continue,
        // Not expected (Envoy holds the body of a paused request); keep it until decided.
        RequestPhase::AwaitingDecision => Action::Pause,
        RequestPhase::Inspecting(inspection) => {
            if body_size > inspection.authz.max_request_body_bytes {
                state.request = RequestPhase::Off;
                send(&too_large_reply());
                return Action::Pause;
            }
            if !end_of_stream {
                return Action::Pause;
            }
            inspect(&mut state, body_size)
        }
    }
}

/// Reads the whole buffered request body and carries out the verdict.
fn inspect(state: &mut Exchange, body_size: usize) -> Action {
    let RequestPhase::Inspecting(inspection) = std::mem::take(&mut state.request) else {
        return Action::Continue;
    };
    let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    let verdict = inspection.authz.check_request(
        &inspection.subject,
        inspection.mirrored.as_ref(),
        &body,
        &inspection.metadata_url,
    );
    match verdict {
        Verdict::Forward { lists } => {
            state.request = RequestPhase::Forwarded(inspection, lists);
            Action::Continue
        }
        Verdict::Respond(reply) => {
            log::debug!(
                "mcp_authn: mcpAuthorization answered {} locally",
                reply.status
            );
            send(&reply);
            Action::Pause
        }
    }
}

/// `on_http_response_headers`: picks how the body is filtered, and drops `content-length`
/// when it may change.
pub fn response_headers(exchange: &Shared) -> Action {
    let mut state = exchange.borrow_mut();
    let RequestPhase::Forwarded(inspection, lists) = std::mem::take(&mut state.request) else {
        return Action::Continue;
    };
    if lists.is_empty() {
        return Action::Continue;
    }
    let header = |name: &str| {
        headers::value(MapType::HttpResponseHeaders, name)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    if header(":status") != "200" {
        return Action::Continue;
    }
    let content_type = header("content-type");
    let encoding = header("content-encoding");
    let max = inspection.authz.max_list_response_bytes;
    state.response = if !encoding.is_empty() && encoding != "identity" {
        // Cannot be read (accept-encoding was removed, so the upstream ignored that): the
        // body becomes a JSON-RPC error per list call rather than pass unfiltered.
        let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, "content-encoding", None);
        let _ = hostcalls::set_map_value(
            MapType::HttpResponseHeaders,
            "content-type",
            Some("application/json"),
        );
        ResponsePhase::Refuse(lists)
    } else if content_type.starts_with("text/event-stream") {
        ResponsePhase::Sse(inspection, SseRewriter::new(lists, max))
    } else if content_type.starts_with("application/json") {
        ResponsePhase::Json(inspection, lists)
    } else {
        return Action::Continue;
    };
    let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, "content-length", None);
    Action::Continue
}

/// `on_http_response_body`.
pub fn response_body(exchange: &Shared, body_size: usize, end_of_stream: bool) -> Action {
    let mut state = exchange.borrow_mut();
    match &mut state.response {
        ResponsePhase::Pass => Action::Continue,
        ResponsePhase::Drop => {
            replace_response(body_size, &[]);
            Action::Continue
        }
        ResponsePhase::Refuse(lists) => {
            let body =
                listing::error_body(lists, "list response is encoded and cannot be filtered");
            replace_response(body_size, &body);
            state.response = ResponsePhase::Drop;
            Action::Continue
        }
        ResponsePhase::Json(inspection, lists) => {
            if body_size > inspection.authz.max_list_response_bytes {
                log::warn!(
                    "mcp_authn: list response over maxListResponseBytes replaced by an error"
                );
                let body = listing::too_large_body(lists);
                replace_response(body_size, &body);
                state.response = ResponsePhase::Drop;
                return Action::Continue;
            }
            if !end_of_stream {
                return Action::Pause; // Envoy buffers until the end
            }
            let body = read_response(body_size);
            if let Some(filtered) =
                listing::filter_json(inspection.authz.as_ref(), &inspection.subject, lists, &body)
            {
                replace_response(body_size, &filtered);
            }
            Action::Continue
        }
        ResponsePhase::Sse(inspection, rewriter) => {
            let chunk = read_response(body_size);
            let out = rewriter.push(
                inspection.authz.as_ref(),
                &inspection.subject,
                &chunk,
                end_of_stream,
            );
            if out != chunk {
                replace_response(body_size, &out);
            }
            if rewriter.dropped_by_last_push() > 0 {
                log::warn!("mcp_authn: SSE event over maxListResponseBytes dropped");
            }
            if rewriter.done() {
                // The list answers have passed: the rest of the stream is not read at all.
                state.response = ResponsePhase::Pass;
            }
            Action::Continue
        }
    }
}

fn read_response(size: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpResponseBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn replace_response(size: usize, bytes: &[u8]) {
    let _ = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, size, bytes);
}
