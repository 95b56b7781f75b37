//! Wycheproof JOSE JWS vectors (`tests/vectors/json_web_signature_test.json`) against the
//! signature layer: every invalid case is rejected, every valid case with an algorithm we
//! support is accepted, and every case with an algorithm we do not support is rejected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_authn::core::alg::Alg;
use mcp_authn::core::jwks::KeySet;
use mcp_authn::core::verify::{Rejection, verify_signature};
use serde_json::{Value, json};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/json_web_signature_test.json"
);

/// Valid vectors we refuse on purpose, with the rejection we must give.
///
/// RFC 7520 figure 20 is a PS384 signature, but the Wycheproof group publishes the key with
/// `"alg": "PS256"`. A JWK `alg` pins the one algorithm the key verifies (spec section 7; the
/// same file's `WrongPrimitive` cases rely on that rule), so PS384 under that key is refused.
fn deliberate_refusal(tc_id: u64) -> Option<Rejection> {
    match tc_id {
        346 | 350 => Some(Rejection::KeyAlgMismatch {
            kid: "bilbo.baggins@hobbiton.example".into(),
            alg: Alg::Ps384,
        }),
        _ => None,
    }
}

/// The `alg` the JWS header names, when the header can be read at all.
fn header_alg(jws: &str) -> Option<String> {
    let header = jws.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    let header: Value = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_string)
}

#[derive(Default)]
struct Tally {
    accepted: usize,
    rejected: usize,
}

#[test]
fn wycheproof_jws_vectors() {
    let text = std::fs::read_to_string(VECTORS)
        .unwrap_or_else(|e| panic!("the Wycheproof vectors must be present at {VECTORS}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("vectors are JSON");
    let groups = doc["testGroups"].as_array().expect("testGroups array");
    let declared = doc["numberOfTests"].as_u64().expect("numberOfTests");

    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut seen = 0u64;
    let mut valid_supported = 0usize;
    let mut failures = Vec::new();

    for group in groups {
        // Symmetric groups carry only the private (oct) key; it must be refused as a key.
        let jwk = group
            .get("public")
            .or_else(|| group.get("private"))
            .expect("every group has a key");
        let keys = KeySet::parse(json!({ "keys": [jwk] }).to_string().as_bytes());
        for case in group["tests"].as_array().expect("tests array") {
            seen += 1;
            let tc_id = case["tcId"].as_u64().expect("tcId");
            let result = case["result"].as_str().expect("result");
            let Some(jws) = case["jws"].as_str() else {
                failures.push(format!("tc {tc_id}: jws is not a string"));
                continue;
            };
            let alg_name = header_alg(jws);
            let supported = alg_name.as_deref().and_then(Alg::from_name).is_some();
            let label = alg_name.clone().unwrap_or_else(|| "(unreadable)".into());

            let outcome = match &keys {
                Ok(keys) => verify_signature(jws, keys).map(|_| ()),
                Err(err) => {
                    // A refused key may only belong to cases we must refuse anyway.
                    if result != "invalid" && supported {
                        failures.push(format!(
                            "tc {tc_id} ({label}, {result}): key refused: {err}"
                        ));
                    }
                    Err(Rejection::KeysUnavailable)
                }
            };
            let entry = tally.entry(label.clone()).or_default();
            match &outcome {
                Ok(()) => entry.accepted += 1,
                Err(_) => entry.rejected += 1,
            }

            match (result, supported, &outcome) {
                ("invalid", _, Ok(())) => {
                    failures.push(format!("tc {tc_id} ({label}): invalid case accepted"))
                }
                ("invalid", _, Err(_)) => {}
                (_, false, Ok(())) => failures.push(format!(
                    "tc {tc_id} ({label}): unsupported algorithm accepted"
                )),
                (_, false, Err(rejection)) => {
                    // Refused either because the key was refused or because of the alg.
                    let by_alg = matches!(rejection, Rejection::UnsupportedAlg(_));
                    let by_key = keys.is_err();
                    if !(by_alg || by_key) {
                        failures.push(format!(
                            "tc {tc_id} ({label}): refused for the wrong reason: {rejection}"
                        ));
                    }
                }
                ("valid" | "acceptable", true, outcome) => match deliberate_refusal(tc_id) {
                    Some(expected) => {
                        if outcome.as_ref().err() != Some(&expected) {
                            failures.push(format!(
                                "tc {tc_id} ({label}): expected {expected}, got {outcome:?}"
                            ));
                        }
                    }
                    None => {
                        valid_supported += 1;
                        if let Err(rejection) = outcome
                            && result == "valid"
                        {
                            failures.push(format!(
                                "tc {tc_id} ({label}): valid case rejected: {rejection}"
                            ));
                        }
                    }
                },
                (other, ..) => failures.push(format!("tc {tc_id}: unknown result {other:?}")),
            }
        }
    }

    eprintln!("Wycheproof JWS: {seen} cases");
    for (alg, t) in &tally {
        eprintln!(
            "  {alg:>12}: accepted {:>3}, rejected {:>3}",
            t.accepted, t.rejected
        );
    }
    assert_eq!(
        seen, declared,
        "numberOfTests disagrees with the cases read"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Guard against a vacuous pass: the supported valid cases were all accepted.
    let accepted: usize = tally.values().map(|t| t.accepted).sum();
    assert_eq!(accepted, valid_supported);
    assert!(
        valid_supported >= 30,
        "only {valid_supported} valid supported cases"
    );
}
