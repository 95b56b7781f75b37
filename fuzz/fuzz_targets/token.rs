//! Token verification on its own (the fast path to the signature and claim checks), plus
//! extraction from an Authorization header carrying the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::request::Request;
use mcp_authn::core::token;
use mcp_authn::core::token::TokenLocation;
use mcp_authn::core::verify::{check_without_keys, verify, verify_signature};
use mcp_authn_fuzz::{NOW, configs, keyset, model};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rules = &configs()[0].claims;
    let verified = verify(text, keyset(), rules, NOW);
    if let Ok(claims) = &verified {
        // The reference model, which shares no code with the filter, must accept it too, and
        // see the same claims.
        assert!(check_without_keys(text, rules).is_ok());
        assert!(verify_signature(text, keyset()).is_ok());
        let model_claims = model()
            .check(text, NOW)
            .unwrap_or_else(|rule| panic!("model refuses ({rule}): {text}"));
        for (name, value) in &model_claims {
            assert_eq!(claims.get(name), Some(value), "claim {name}");
        }
    }
    if check_without_keys(text, rules).is_err() {
        assert!(
            verified.is_err(),
            "verified a token that fails the checks made before the keys"
        );
    }
    let request = Request {
        method: "POST".into(),
        path: "/mcp".into(),
        headers: vec![("authorization".into(), text.into())],
        ..Request::default()
    };
    let location = TokenLocation::Header {
        name: "authorization".into(),
        prefix: "Bearer ".into(),
    };
    if let Ok(Some(credential)) = token::extract(&location, &request) {
        assert!(!credential.token.is_empty());
        assert!(text.len() >= credential.token.len());
    }
});
