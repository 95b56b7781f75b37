//! Proxy-wasm counters, one per [`Metric`]; Envoy shows them in `/stats`. The names come
//! only from `core::metric`, so what the core counts and what the host defines cannot drift.
//!
//! A count is kept in the VM and handed to Envoy on the root's tick ([`Metrics::flush`]), one
//! hostcall per counter that moved, instead of one hostcall per count on the request path.
//! So `/stats` lags by up to one tick (200 ms), and counts since the last tick are lost if the
//! VM is torn down without its root's `on_done`.

use std::cell::Cell;

use proxy_wasm::hostcalls::{define_metric, increment_metric};
use proxy_wasm::types::MetricType;

use crate::core::decision::Outcome;
use crate::core::metric::Metric;

/// Counter ids of this VM and their counts not yet handed to Envoy, indexed by
/// `Metric as usize`.
pub struct Metrics {
    ids: Vec<u32>,
    pending: Vec<Cell<u32>>,
}

impl Metrics {
    /// Defines every counter; `None` if the host refuses (then stats are simply absent).
    pub fn define() -> Option<Self> {
        let ids = Metric::ALL
            .iter()
            .map(|metric| {
                define_metric(MetricType::Counter, &format!("mcp_authn.{}", metric.name())).ok()
            })
            .collect::<Option<Vec<u32>>>()?;
        let pending = ids.iter().map(|_| Cell::new(0)).collect();
        Some(Self { ids, pending })
    }

    pub fn count(&self, outcome: &Outcome) {
        if let Some(metric) = outcome.metric() {
            self.bump(metric);
        }
    }

    /// Counts in the VM; [`Metrics::flush`] hands it to Envoy.
    pub fn bump(&self, metric: Metric) {
        if let Some(pending) = self.pending.get(metric as usize) {
            pending.set(pending.get().saturating_add(1));
        }
    }

    /// Hands every pending count to Envoy (on the tick, and when the VM stops).
    pub fn flush(&self) {
        for (id, pending) in self.ids.iter().zip(&self.pending) {
            let n = pending.take();
            if n > 0 {
                let _ = increment_metric(*id, i64::from(n));
            }
        }
    }
}
