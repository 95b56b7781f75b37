//! Plugin configuration parsing and validation; a config that loads must then decide a
//! token-less request and serve its metadata without breaking any decision invariant. The
//! plugin shape (`servers`, `issuers`) is parsed too, and selects a server for each request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::config::{Config, KeySource};
use mcp_authn::core::decision::{KeyState, decide};
use mcp_authn::core::servers::Plugin;
use mcp_authn_fuzz::{NOW, check_decision, request_from_text};

const REQUESTS: [&str; 3] = [
    "POST\n/mcp\nmcp.example.com",
    "GET\n/.well-known/oauth-protected-resource/mcp\nmcp.example.com",
    "POST\n/mcp?token=a.b.c\nmcp.example.com\nauthorization:Bearer a.b.c\ncookie:session=x",
];

fuzz_target!(|data: &[u8]| {
    if let Ok(plugin) = Plugin::from_json(data) {
        for text in REQUESTS {
            let _ = plugin.select(&request_from_text(text), Some("a"));
        }
    }
    let config = match Config::from_json(data) {
        Ok(config) => config,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    let keys = match &config.keys {
        KeySource::Inline(set) => KeyState::Ready {
            keys: set,
            may_refetch: false,
        },
        KeySource::Remote(_) => KeyState::Missing { may_fetch: true },
    };
    for text in REQUESTS {
        let request = request_from_text(text);
        check_decision(
            &config,
            &request,
            keys,
            &decide(&config, &request, keys, NOW),
        );
    }
});
