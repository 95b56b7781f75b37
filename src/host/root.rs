//! The root context: loads the configuration, owns the worker state, refreshes keys on a tick.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use crate::core::config::KeySource;
use crate::core::servers::Plugin;

use super::fetch;
use super::http::{Http, now_ms, resume};
use super::worker::Worker;

/// Paused requests on other workers learn about new keys at this pace.
const TICK: Duration = Duration::from_millis(200);

pub struct Root {
    id: u32,
    worker: Option<Rc<RefCell<Worker>>>,
    #[cfg(feature = "hostcall-stats")]
    hostcall_stats: super::hostcall_stats::HostcallStats,
}

impl Root {
    pub fn new(id: u32) -> Self {
        Self {
            id,
            worker: None,
            #[cfg(feature = "hostcall-stats")]
            hostcall_stats: Default::default(),
        }
    }
}

impl Context for Root {
    fn on_done(&mut self) -> bool {
        if let Some(worker) = &self.worker
            && let Some(metrics) = &worker.borrow().metrics
        {
            metrics.flush();
        }
        true
    }

    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(worker) = &self.worker else { return };
        let response = fetch::read_response(body_size);
        let now_ms = now_ms();
        let mut worker = worker.borrow_mut();
        let ready = worker.complete_fetch(token, response, now_ms);
        resume(&mut worker, ready, now_ms, self.id);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        // Log only what Envoy would print, so filtered-out debug lines cost nothing per request.
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let plugin = match Plugin::from_json(&bytes) {
            Ok(plugin) => plugin,
            Err(err) => {
                log::error!("mcp_authn: invalid plugin configuration: {err}");
                return false;
            }
        };
        for warning in &plugin.warnings {
            log::warn!("mcp_authn: {warning}");
        }
        for (_, config) in plugin.targets() {
            if let KeySource::Inline(set) = &config.keys {
                for skipped in set.skipped() {
                    log::warn!("mcp_authn: jwks.inline: {skipped} (skipped)");
                }
            }
        }
        let worker = Worker::new(plugin, &unique_owner(self.id));
        // Always: the tick also hands the counters to Envoy (host/metrics.rs).
        let _ = hostcalls::set_tick_period(TICK);
        self.worker = Some(Rc::new(RefCell::new(worker)));
        true
    }

    fn on_tick(&mut self) {
        #[cfg(feature = "hostcall-stats")]
        self.hostcall_stats.publish();
        let Some(worker) = &self.worker else { return };
        if let Some(metrics) = &worker.borrow().metrics {
            metrics.flush();
        }
        let now_ms = now_ms();
        let mut worker = worker.borrow_mut();
        let ready = worker.tick(now_ms);
        resume(&mut worker, ready, now_ms, self.id);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = self.worker.clone()?;
        Some(Box::new(Http::new(context_id, worker)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// A name for this VM's lease that no other worker shares. Context ids repeat across worker
/// VMs and they start in the same millisecond, so the host's randomness tells them apart.
fn unique_owner(context_id: u32) -> String {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(context_id);
    format!("{random:016x}-{}-{context_id}", now_ms())
}
