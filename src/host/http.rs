//! The HTTP context: read the request, ask the core, carry out the decision.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use crate::core::decision::{Decision, Outcome, decide};
use crate::core::request::Request;

use super::fetch;
use super::metrics;
use super::worker::Worker;

pub struct Http {
    id: u32,
    worker: Rc<RefCell<Worker>>,
}

impl Http {
    pub fn new(id: u32, worker: Rc<RefCell<Worker>>) -> Self {
        Self { id, worker }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let request = read_request();
        let now_ms = now_ms();
        let mut worker = self.worker.borrow_mut();
        worker.prepare_keys();
        let mut decision = worker.decide_first(&request, now_ms);
        if let Decision::FetchKeys { unknown_kid: true } = decision
            && worker.sync()
        {
            // Another worker already fetched the rotated keys.
            decision = worker.decide_first(&request, now_ms);
        }
        if let Decision::FetchKeys { unknown_kid } = decision {
            if unknown_kid && let Some(m) = &worker.metrics {
                metrics::bump(m.jwks_refetch_unknown_kid);
            }
            if worker.wait_for_keys(self.id, request.clone(), now_ms) {
                return Action::Pause;
            }
            decision = decide(
                &worker.config,
                &request,
                worker.final_key_state(),
                now_ms / 1000,
            );
        }
        carry_out(&worker, decision)
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
        let response = fetch::read_response(body_size);
        let now_ms = now_ms();
        let mut worker = self.worker.borrow_mut();
        worker.complete_fetch(token, response, now_ms);
        resume_ready(&mut worker, now_ms, self.id);
    }

    fn on_done(&mut self) -> bool {
        self.worker.borrow_mut().forget(self.id);
        true
    }
}

/// The request as the core sees it, from one header-map read.
fn read_request() -> Request {
    let mut request = Request::default();
    for (name, value) in hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default() {
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

/// Carries out a decision on the current (effective) stream.
fn carry_out(worker: &Worker, decision: Decision) -> Action {
    match decision {
        Decision::Forward { edits, outcome } => {
            for name in &edits.remove {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
            }
            for (name, value) in &edits.set {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
            }
            record(worker, &outcome);
            Action::Continue
        }
        Decision::Respond { reply, outcome } => {
            let headers: Vec<(&str, &str)> = reply
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let _ =
                hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes()));
            record(worker, &outcome);
            Action::Pause
        }
        // Final decisions never ask for keys; stay closed if one ever does.
        Decision::FetchKeys { .. } => {
            let _ = hostcalls::send_http_response(503, vec![], None);
            Action::Pause
        }
    }
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
        _ => {}
    }
}

/// Decides and resumes every paused request whose wait is over, then restores `current`
/// as the effective context.
pub fn resume_ready(worker: &mut Worker, now_ms: u64, current: u32) {
    let ready = worker.take_ready(now_ms);
    if ready.is_empty() {
        return;
    }
    for pending in ready {
        if hostcalls::set_effective_context(pending.context_id).is_err() {
            continue;
        }
        let decision = decide(
            &worker.config,
            &pending.request,
            worker.final_key_state(),
            now_ms / 1000,
        );
        if let Action::Continue = carry_out(worker, decision) {
            let _ = hostcalls::resume_http_request();
        }
    }
    let _ = hostcalls::set_effective_context(current);
}

pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
