//! JWKS documents as the IdP (or an attacker in its place) serves them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::jwks::{KeySet, MAX_KEYS};

fuzz_target!(|data: &[u8]| {
    match KeySet::parse(data) {
        Ok(set) => {
            assert!(!set.keys().is_empty());
            assert!(set.keys().len() <= MAX_KEYS);
            for key in set.keys() {
                if let Some(kid) = &key.kid {
                    assert!(set.has_kid(kid));
                }
            }
            for skipped in set.skipped() {
                let _ = skipped.to_string();
            }
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
