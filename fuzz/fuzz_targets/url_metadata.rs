//! URL parsing, the metadata document and the WWW-Authenticate challenge. Input: NUL-separated
//! `url \0 authority \0 path \0 scope \0 x-forwarded-proto`, first byte picks the options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::metadata::ResourceMetadata;
use mcp_authn::core::reply::{ErrorCode, challenge};
use mcp_authn::core::request::Request;
use mcp_authn::core::url::HttpUrl;
use mcp_authn_fuzz::{ISSUER, is_safe_header_value};
use serde_json::{Map, Value, json};

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else { return };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or_default().to_string();
    let (url, authority, path, scope, proto) = (next(), next(), next(), next(), next());

    let parsed = HttpUrl::parse(&url);
    if let Ok(parsed) = &parsed {
        assert!(parsed.path_and_query.starts_with('/'));
        assert!(parsed.scheme == "http" || parsed.scheme == "https");
        assert!(!parsed.authority.is_empty());
        assert!(parsed.path().len() <= parsed.path_and_query.len());
        // What the filter prints back parses to the same URL.
        let again = HttpUrl::parse(&format!("{}{}", parsed.origin(), parsed.path_and_query));
        assert_eq!(again.as_ref(), Ok(parsed));
    }

    let mut raw = Map::new();
    if flags & 1 == 1 {
        raw.insert("resource".into(), json!(url));
    }
    if flags & 2 == 2 {
        raw.insert(
            "scopesSupported".into(),
            json!(scope.split(' ').collect::<Vec<_>>()),
        );
    }
    let Ok(metadata) = ResourceMetadata::from_config(raw, ISSUER, flags & 4 == 4) else {
        return;
    };
    let request = Request {
        method: "GET".into(),
        path: path.clone(),
        scheme: if flags & 8 == 8 {
            "http".into()
        } else {
            "https".into()
        },
        authority,
        headers: vec![("x-forwarded-proto".into(), proto)],
    };
    let metadata_url = metadata.metadata_url(&request);
    let document = metadata.document(&request, request.path_only());
    let parsed_doc: Value = serde_json::from_str(&document).expect("metadata document is JSON");
    assert!(parsed_doc["resource"].is_string());
    for error in [
        None,
        Some((ErrorCode::InvalidToken, path.as_str())),
        Some((ErrorCode::InvalidRequest, "x")),
    ] {
        let value = challenge(&metadata_url, metadata.scope_hint(), error);
        assert!(is_safe_header_value(&value), "unsafe challenge {value:?}");
        assert!(value.starts_with("Bearer "));
        // Every quoted value closes where it should: an even number of quotes.
        assert_eq!(value.matches('"').count() % 2, 0, "{value}");
    }
});
