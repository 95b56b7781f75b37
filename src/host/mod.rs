//! The proxy-wasm host layer (wasm32 only): reads the request, asks the core, carries out the
//! decision with hostcalls. Everything that decides lives in `crate::core`.

mod body;
mod fetch;
mod headers;
#[cfg(feature = "hostcall-stats")]
mod hostcall_stats;
mod http;
mod idp;
mod metrics;
mod reply;
mod root;
mod shared;
mod worker;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}}
