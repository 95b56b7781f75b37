//! Hostcall counts for the benchmark (`--features hostcall-stats`; never in a shipped module).
//!
//! `bench/hostcalls` rewrites a module built with this feature so that every `proxy_*` import
//! call bumps an in-VM counter, and turns the two imports below into local reads of those
//! counters. The tick publishes them as `mcp_authn.hostcalls.<import>` counters, leaving out
//! the calls the publishing itself makes, so a benchmark reads exactly the filter's own
//! hostcalls: counter delta ÷ requests.

use proxy_wasm::hostcalls::{define_metric, increment_metric};
use proxy_wasm::types::MetricType;

#[link(wasm_import_module = "mcp_authn_stats")]
unsafe extern "C" {
    /// Writes import `index`'s name (at most 64 bytes) to `buf`; returns its length, 0 past
    /// the last import.
    fn hostcall_name(index: u32, buf: *mut u8) -> u32;
    /// How often import `index` was called.
    fn hostcall_count(index: u32) -> u64;
}

fn count(index: u32) -> u64 {
    // SAFETY: a pure read of a counter the rewriting tool added.
    unsafe { hostcall_count(index) }
}

struct Import {
    index: u32,
    metric: u32,
    /// What the counter shows already.
    published: u64,
    /// Calls made by publishing, left out of `published`.
    own: u64,
}

#[derive(Default)]
pub struct HostcallStats {
    imports: Option<Vec<Import>>,
}

impl HostcallStats {
    /// Publishes every import's count so far (on the tick).
    pub fn publish(&mut self) {
        if self.imports.is_none() {
            // Defining the counters is publishing's own cost too.
            let pre: Vec<u64> = (0..).map_while(|i| name(i).map(|_| count(i))).collect();
            let mut defined = define();
            for import in &mut defined {
                let pre = pre.get(import.index as usize).copied().unwrap_or(0);
                import.own = count(import.index).saturating_sub(pre);
            }
            self.imports = Some(defined);
        }
        let Some(imports) = self.imports.as_mut() else {
            return;
        };
        let before: Vec<u64> = imports.iter().map(|i| count(i.index)).collect();
        for (import, total) in imports.iter_mut().zip(&before) {
            let value = total.saturating_sub(import.own);
            let delta = value.saturating_sub(import.published);
            if delta > 0 {
                let _ = increment_metric(import.metric, i64::try_from(delta).unwrap_or(i64::MAX));
                import.published = value;
            }
        }
        for (import, total) in imports.iter_mut().zip(&before) {
            let own = count(import.index).saturating_sub(*total);
            import.own = import.own.saturating_add(own);
        }
    }
}

fn name(index: u32) -> Option<String> {
    let mut buf = [0u8; 64];
    // SAFETY: the tool's function writes at most 64 bytes to `buf`.
    let len = unsafe { hostcall_name(index, buf.as_mut_ptr()) } as usize;
    let bytes = buf.get(..len).filter(|b| !b.is_empty())?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// One counter per counted import; an import the host refuses a counter for is left out.
fn define() -> Vec<Import> {
    let mut imports = Vec::new();
    let mut index = 0u32;
    while let Some(name) = name(index) {
        if let Ok(metric) =
            define_metric(MetricType::Counter, &format!("mcp_authn.hostcalls.{name}"))
        {
            imports.push(Import {
                index,
                metric,
                published: 0,
                own: 0,
            });
        }
        index = index.saturating_add(1);
    }
    imports
}
