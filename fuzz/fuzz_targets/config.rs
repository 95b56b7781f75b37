//! Plugin configuration parsing and validation; a config that loads must then decide a
//! token-less request and serve its metadata without breaking any decision invariant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::config::{Config, KeySource};
use mcp_authn::core::decision::{KeyState, decide};
use mcp_authn_fuzz::{NOW, check_decision, request_from_text};

fuzz_target!(|data: &[u8]| {
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
    for text in [
        "POST\n/mcp\nmcp.example.com",
        "GET\n/.well-known/oauth-protected-resource/mcp\nmcp.example.com",
        "POST\n/mcp?token=a.b.c\nmcp.example.com\nauthorization:Bearer a.b.c\ncookie:session=x",
    ] {
        let request = request_from_text(text);
        check_decision(
            &config,
            &request,
            keys,
            &decide(&config, &request, keys, NOW),
        );
    }
});
