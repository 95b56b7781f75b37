//! The bench's wasm floors. With an empty configuration every request continues untouched
//! (the runtime's own cost). With `{"hostcalls": true}` a request makes exactly the hostcalls
//! the filter's cached-token path makes (as counted by bench/hostcalls), and nothing else: read
//! the header map and the clock, remove `authorization`. The filter's cost over that floor is
//! its own code.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot { hostcalls: false }) });
}}

struct NoopRoot {
    /// Whether the configuration asks for the cached path's hostcalls.
    hostcalls: bool,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.hostcalls = config.windows(9).any(|w| w == b"hostcalls");
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop {
            hostcalls: self.hostcalls,
        }))
    }
}

struct Noop {
    hostcalls: bool,
}

impl Context for Noop {}

impl HttpContext for Noop {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.hostcalls {
            let headers = self.get_http_request_headers();
            let now = self.get_current_time();
            std::hint::black_box((headers, now));
            self.set_http_request_header("authorization", None);
        }
        Action::Continue
    }
}
