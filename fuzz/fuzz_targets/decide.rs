//! The whole request path: routing, token extraction, verification and the reply, under each
//! fixed config and key state. Input: `[config selector][key-state selector]` then a request
//! as text (see `request_from_text`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::decision::decide;
use mcp_authn_fuzz::{NOW, check_decision, configs, key_state, keyset, request_from_text};

fuzz_target!(|data: &[u8]| {
    let [config_byte, keys_byte, rest @ ..] = data else {
        return;
    };
    let configs = configs();
    let config = &configs[usize::from(*config_byte) % configs.len()];
    let request = request_from_text(&String::from_utf8_lossy(rest));
    let keys = key_state(*keys_byte, keyset());
    let decision = decide(config, &request, keys, NOW);
    check_decision(config, &request, keys, &decision);
});
