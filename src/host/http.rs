//! The HTTP context: read the request, ask the core, carry out the decision.
//!
//! A request's headers are decided once ([`decide`]). What the decision waits for is started
//! here: the provider or a local registration (after the body), or the keys (the request
//! pauses, and [`resume`] carries out its
//! [`crate::core::decision::Paused::resume`]). Every final decision goes
//! through [`carry_out`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::core::config::plugin::Selection;
use crate::core::decision::{Decision, Final, Outcome, Unselected, Wait};
use crate::core::metric::Metric;
use crate::core::provider::{self, IdpCall};
use crate::core::request::Request;
use crate::core::rfc9207::PassageReturn;
use crate::core::servers::Target;

use super::body;
use super::fetch;
use super::headers;
use super::idp;
use super::reply::send;
use super::worker::{Ready, Waiting, Worker};

/// Where Envoy exposes the route's `filter_metadata.mcp_authn.server` to Wasm.
const ROUTE_SERVER_PROPERTY: [&str; 5] = [
    "xds",
    "route_metadata",
    "filter_metadata",
    "mcp_authn",
    "server",
];

pub struct Http {
    id: u32,
    worker: Rc<RefCell<Worker>>,
    /// A request answered by the gateway after its body or the provider's answer.
    idp: Option<IdpWait>,
    /// `mcpAuthorization` state: the request body to inspect, list responses to filter.
    mcp: body::Shared,
    /// A request in the provider's passage: its redirect's RFC 9207 `iss` is rewritten.
    passage: Option<Arc<PassageReturn>>,
    /// The server and issuer the request was decided with.
    target: Option<Target>,
}

/// What answers a request the gateway replies to itself, once its body is read.
enum Answer {
    Provider(Box<IdpCall>),
    LocalRegistration { client_id: String },
}

struct IdpWait {
    answer: Answer,
    client_headers: Vec<(String, String)>,
    /// The provider call in flight.
    token: Option<u32>,
}

impl Http {
    pub fn new(id: u32, worker: Rc<RefCell<Worker>>) -> Self {
        Self {
            id,
            worker,
            idp: None,
            mcp: body::new_exchange(),
            passage: None,
            target: None,
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let request = read_request();
        let now_ms = now_ms();
        let worker_cell = Rc::clone(&self.worker);
        let mut worker = worker_cell.borrow_mut();
        let route_server = route_server(&worker);
        let (target, mut decision) = match worker.decide(&request, route_server.as_deref(), now_ms)
        {
            Ok(chosen) => chosen,
            Err(answered) => {
                self.target = answered.target;
                let (action, prepared) =
                    carry_out(&worker, answered.target, &request, answered.decision);
                return body::after_headers(&self.mcp, prepared, action, end_of_stream);
            }
        };
        self.target = Some(target);
        if let Decision::Wait(Wait::FetchKeys {
            unknown_kid: true, ..
        }) = decision
            && worker.sync(target)
        {
            // Another worker already fetched the rotated keys.
            if let Ok((_, again)) = worker.decide(&request, route_server.as_deref(), now_ms) {
                decision = again;
            }
        }
        let decision = match decision.into_final() {
            Ok(decision) => decision,
            Err(Wait::AskIdp(call)) => {
                return self.answer_later(&worker, Answer::Provider(call), request, end_of_stream);
            }
            Err(Wait::RegisterLocally { client_id }) => {
                let answer = Answer::LocalRegistration { client_id };
                return self.answer_later(&worker, answer, request, end_of_stream);
            }
            Err(Wait::FetchKeys {
                unknown_kid,
                paused,
            }) => {
                if unknown_kid && let Some(m) = &worker.metrics {
                    m.bump(Metric::JwksRefetchUnknownKid);
                }
                let waiting = Waiting {
                    request: request.clone(),
                    target,
                    paused,
                    exchange: Rc::clone(&self.mcp),
                };
                if worker.wait_for_keys(self.id, waiting, now_ms) {
                    body::await_keys(&self.mcp, end_of_stream);
                    return Action::Pause;
                }
                worker.resume(target, paused, &request, now_ms)
            }
        };
        if let Decision::Forward {
            passage: Some(passage),
            ..
        } = &decision
        {
            self.passage = Some(Arc::clone(passage));
        }
        let (action, prepared) = carry_out(&worker, Some(target), &request, decision);
        body::after_headers(&self.mcp, prepared, action, end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(wait) = self.idp.take_if(|w| w.token.is_none()) else {
            return body::request_body(&self.mcp, body_size, end_of_stream);
        };
        if body_size > provider::MAX_REGISTRATION_BYTES {
            let _ =
                hostcalls::send_http_response(413, vec![], Some(b"registration body too large"));
            return Action::Pause;
        }
        if !end_of_stream {
            // Envoy buffers until the end of the body.
            self.idp = Some(wait);
            return Action::Pause;
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let worker_cell = Rc::clone(&self.worker);
        let worker = worker_cell.borrow();
        self.answer(&worker, wait, &body)
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.idp.is_some() {
            // A registration let its headers reach the router to read its body: hold the
            // upstream's answer; the gateway's own reply replaces it.
            return Action::Pause;
        }
        if let Some(passage) = &self.passage {
            rewrite_location(passage);
        }
        body::response_headers(&self.mcp)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        body::response_body(&self.mcp, body_size, end_of_stream)
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if let Some(wait) = self.idp.take_if(|w| w.token == Some(token)) {
            if let Answer::Provider(call) = &wait.answer {
                let worker = self.worker.borrow();
                if let Some(config) = self.target.and_then(|t| worker.config(t)) {
                    send(&idp::complete(config, call, body_size, now_ms()));
                }
            }
            return;
        }
        let response = fetch::read_response(body_size);
        let now_ms = now_ms();
        let mut worker = self.worker.borrow_mut();
        let ready = worker.complete_fetch(token, response, now_ms);
        resume(&mut worker, ready, now_ms, self.id);
    }

    fn on_done(&mut self) -> bool {
        self.worker.borrow_mut().forget(self.id);
        true
    }
}

impl Http {
    /// A request the gateway answers: read its body first when the answer needs it.
    fn answer_later(
        &mut self,
        worker: &Worker,
        answer: Answer,
        request: Request,
        end_of_stream: bool,
    ) -> Action {
        let needs_body = match &answer {
            Answer::Provider(call) => call.needs_body,
            Answer::LocalRegistration { .. } => true,
        };
        let wait = IdpWait {
            answer,
            client_headers: request.headers,
            token: None,
        };
        if needs_body && !end_of_stream {
            // Not Pause: the host turns a paused header callback into "stop all", and the
            // body callback would never run. The body callback buffers and replies.
            self.idp = Some(wait);
            return Action::Continue;
        }
        self.answer(worker, wait, &[])
    }

    /// Answers now, or starts the provider call; the request stays paused until its reply
    /// is sent.
    fn answer(&mut self, worker: &Worker, mut wait: IdpWait, body: &[u8]) -> Action {
        let now_ms = now_ms();
        match &wait.answer {
            Answer::LocalRegistration { client_id } => {
                send(&provider::local_registration(
                    client_id,
                    body,
                    now_ms / 1000,
                ));
            }
            Answer::Provider(call) => {
                let Some(config) = self.target.and_then(|t| worker.config(t)) else {
                    return Action::Pause;
                };
                match idp::start(config, call, body, &wait.client_headers, now_ms) {
                    idp::Started::Reply(reply) => send(&reply),
                    idp::Started::Waiting(token) => {
                        wait.token = Some(token);
                        self.idp = Some(wait);
                    }
                }
            }
        }
        Action::Pause
    }
}

/// Decides and resumes paused requests whose wait is over, then restores `current` as the
/// effective context.
pub fn resume(worker: &mut Worker, ready: Vec<Ready>, now_ms: u64, current: u32) {
    if ready.is_empty() {
        return;
    }
    for Ready {
        context_id,
        waiting,
        ..
    } in ready
    {
        if hostcalls::set_effective_context(context_id).is_err() {
            continue;
        }
        let target = waiting.target;
        let decision = worker.resume(target, waiting.paused, &waiting.request, now_ms);
        let (action, prepared) = carry_out(worker, Some(target), &waiting.request, decision);
        if body::after_keys(&waiting.exchange, prepared, action) {
            let _ = hostcalls::resume_http_request();
        }
    }
    let _ = hostcalls::set_effective_context(current);
}

/// Carries out a final decision on the current (effective) stream, and says what
/// `mcpAuthorization` makes of the request's body (`target`: the server that decided it; none
/// when no server took the request).
fn carry_out(
    worker: &Worker,
    target: Option<Target>,
    request: &Request,
    decision: Final,
) -> (Action, Option<body::Prepared>) {
    let prepared = target
        .and_then(|t| worker.config(t))
        .and_then(|config| body::prepare(config, request, &decision));
    let action = match decision {
        Decision::Forward { edits, outcome, .. } => {
            for name in &edits.remove {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name.as_str(), None);
            }
            for (name, value) in &edits.set {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
            }
            record(worker, &outcome);
            Action::Continue
        }
        Decision::Respond { reply, outcome } => {
            send(&reply);
            record(worker, &outcome);
            Action::Pause
        }
        Decision::Wait(never) => match never {},
    };
    (action, prepared)
}

fn record(worker: &Worker, outcome: &Outcome) {
    if let Some(m) = &worker.metrics {
        m.count(outcome);
    }
    match outcome {
        Outcome::Denied(denial) => log::debug!("mcp_authn: denied: {denial}"),
        Outcome::Unauthenticated {
            denial: Some(denial),
        } => {
            log::debug!("mcp_authn: passed unauthenticated by mode: {denial}")
        }
        Outcome::Unselected(why @ Unselected::NoRouteServer) => {
            log::warn!("mcp_authn: {}", why.description());
        }
        Outcome::Unselected(why) => log::debug!("mcp_authn: {}", why.description()),
        _ => {}
    }
}

/// With `serverSelection: routeMetadata`, the server the route names in its metadata
/// (`filter_metadata.mcp_authn.server`, a string); the property is read only then.
fn route_server(worker: &Worker) -> Option<String> {
    if worker.plugin.selection != Selection::RouteMetadata {
        return None;
    }
    let value = hostcalls::get_property(ROUTE_SERVER_PROPERTY.to_vec()).ok()??;
    String::from_utf8(value).ok()
}

/// The provider's redirect back to the client names the gateway as its issuer (RFC 9207).
fn rewrite_location(passage: &PassageReturn) {
    let read = |name| headers::value(MapType::HttpResponseHeaders, name);
    let Some(status) = read(":status").and_then(|s| s.parse::<u32>().ok()) else {
        return;
    };
    if let Some(location) = read("location")
        && let Some(rewritten) = passage.location(status, &location)
    {
        let _ =
            hostcalls::set_map_value(MapType::HttpResponseHeaders, "location", Some(&rewritten));
    }
}

/// The request as the core sees it, from one header-map read.
fn read_request() -> Request {
    let mut request = Request::default();
    for (name, value) in headers::all(MapType::HttpRequestHeaders) {
        match name.as_str() {
            ":method" => request.method = value,
            ":path" => request.path = value,
            ":scheme" => request.scheme = value,
            ":authority" => request.authority = value,
            _ => request.headers.push((name, value)),
        }
    }
    request
}

pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
