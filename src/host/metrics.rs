//! Proxy-wasm counters, one per [`Metric`]; Envoy shows them in `/stats`. The names come
//! only from `core::metric`, so what the core counts and what the host defines cannot drift.

use proxy_wasm::hostcalls::{define_metric, increment_metric};
use proxy_wasm::types::MetricType;

use crate::core::decision::Outcome;
use crate::core::metric::Metric;

/// Counter ids of this VM, indexed by `Metric as usize`.
pub struct Metrics {
    ids: Vec<u32>,
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
        Some(Self { ids })
    }

    pub fn count(&self, outcome: &Outcome) {
        if let Some(metric) = outcome.metric() {
            self.bump(metric);
        }
    }

    pub fn bump(&self, metric: Metric) {
        if let Some(id) = self.ids.get(metric as usize) {
            let _ = increment_metric(*id, 1);
        }
    }
}
