use super::*;
use crate::core::testkit::{
    AUDIENCE, ISSUER, NOW, SUBJECT, b64, claims, claims_with, es256_over_raw, keyset, keyset_of,
    mint, public_jwk, public_jwk_without, rules, signer, unsigned,
};
use serde_json::json;

/// The set most tests verify against: one RSA and one EC key, both with `kid` and `alg`.
fn default_keys() -> KeySet {
    keyset(&["rsa", "ec"])
}

fn check(token: &str) -> Result<VerifiedClaims, Rejection> {
    verify(token, &default_keys(), &rules(), NOW)
}

fn check_with(token: &str, rules: &ClaimRules) -> Result<VerifiedClaims, Rejection> {
    verify(token, &default_keys(), rules, NOW)
}

/// A token from key `name` with the given header and JSON payload.
fn signed(name: &str, header: Value, payload: &Value, alg: Alg) -> String {
    signer(name).sign_raw(&header, payload.to_string().as_bytes(), alg)
}

fn segments(token: &str) -> Vec<&str> {
    token.split('.').collect()
}

// --- accepted tokens -----------------------------------------------------------------

#[test]
fn valid_rs256_and_es256_tokens_are_accepted() {
    for name in ["rsa", "ec"] {
        let claims = check(&mint(name, &claims())).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(claims.subject(), Some(SUBJECT), "{name}");
        assert_eq!(claims.get("iss"), Some(&json!(ISSUER)), "{name}");
    }
}

#[test]
fn every_rsa_algorithm_is_accepted_with_an_rsa_key_that_does_not_pin_alg() {
    let keys = keyset_of(vec![public_jwk_without("rsa", &["alg"])]);
    for alg in [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
    ] {
        let header = json!({"alg": alg.name(), "typ": "JWT", "kid": "rsa-1"});
        let token = signed("rsa", header, &claims(), alg);
        let verified = verify(&token, &keys, &rules(), NOW);
        assert!(verified.is_ok(), "{}: {verified:?}", alg.name());
    }
}

#[test]
fn a_pinned_key_refuses_other_algorithms_of_its_own_type() {
    // `rsa-1` is published with `alg: RS256`.
    let token = signed(
        "rsa",
        json!({"alg": "PS256", "kid": "rsa-1"}),
        &claims(),
        Alg::Ps256,
    );
    assert_eq!(
        check(&token).unwrap_err(),
        Rejection::KeyAlgMismatch {
            kid: "rsa-1".into(),
            alg: Alg::Ps256
        }
    );
}

// --- lifetime ------------------------------------------------------------------------

#[test]
fn exp_is_checked_with_the_clock_skew() {
    let now = NOW as i64;
    // (exp, skew, accepted)
    let cases = [
        (now + 300, 60, true),
        (now - 59, 60, true),  // expired 59 s ago: inside the skew
        (now - 60, 60, false), // now >= exp + skew
        (now - 61, 60, false),
        (now + 1, 0, true),
        (now, 0, false), // exp is the first instant the token is invalid
        (now - 3600, 3600, false),
        (now - 3599, 3600, true),
    ];
    for (exp, skew, accepted) in cases {
        let rules = ClaimRules {
            clock_skew_secs: skew,
            ..rules()
        };
        let result = check_with(&mint("rsa", &claims_with("exp", Some(json!(exp)))), &rules);
        if accepted {
            assert!(result.is_ok(), "exp={exp} skew={skew}: {result:?}");
        } else {
            assert_eq!(
                result.unwrap_err(),
                Rejection::Expired { exp, now: NOW },
                "exp={exp} skew={skew}"
            );
        }
    }
}

#[test]
fn nbf_in_the_future_is_refused_unless_inside_the_skew() {
    let now = NOW as i64;
    let cases = [
        (now - 10, 60, true),
        (now, 0, true),
        (now + 1, 0, false),
        (now + 60, 60, true), // exactly at the edge of the skew
        (now + 61, 60, false),
        (now + 30, 60, true),
    ];
    for (nbf, skew, accepted) in cases {
        let rules = ClaimRules {
            clock_skew_secs: skew,
            ..rules()
        };
        let result = check_with(&mint("ec", &claims_with("nbf", Some(json!(nbf)))), &rules);
        if accepted {
            assert!(result.is_ok(), "nbf={nbf} skew={skew}: {result:?}");
        } else {
            assert_eq!(
                result.unwrap_err(),
                Rejection::NotYetValid { nbf, now: NOW },
                "nbf={nbf} skew={skew}"
            );
        }
    }
}

#[test]
fn non_integer_numeric_dates_are_invalid_claims() {
    let not_a_number = |claim| Rejection::InvalidClaim {
        claim,
        reason: "not a number",
    };
    let not_integer = |claim| Rejection::InvalidClaim {
        claim,
        reason: "not an integer NumericDate",
    };
    let cases = [
        ("exp", json!("1700000300"), not_a_number("exp")),
        ("exp", json!(null), not_a_number("exp")),
        ("exp", json!(true), not_a_number("exp")),
        ("exp", json!([NOW + 300]), not_a_number("exp")),
        ("exp", json!(1_700_000_300.5), not_integer("exp")),
        ("exp", json!(1e300), not_integer("exp")),
        ("exp", json!(u64::MAX), not_integer("exp")),
        ("nbf", json!("0"), not_a_number("nbf")),
        ("nbf", json!(1.5), not_integer("nbf")),
        ("nbf", json!(-1e300), not_integer("nbf")),
    ];
    for (claim, value, expected) in cases {
        let token = mint("rsa", &claims_with(claim, Some(value.clone())));
        assert_eq!(check(&token).unwrap_err(), expected, "{claim}={value}");
    }
}

#[test]
fn extreme_integer_dates_are_compared_without_overflow() {
    // A negative exp is long past; the i64 extremes must not wrap around.
    let token = mint("rsa", &claims_with("exp", Some(json!(-1))));
    assert_eq!(
        check(&token).unwrap_err(),
        Rejection::Expired { exp: -1, now: NOW }
    );
    let token = mint("rsa", &claims_with("exp", Some(json!(i64::MIN))));
    assert_eq!(
        check(&token).unwrap_err(),
        Rejection::Expired {
            exp: i64::MIN,
            now: NOW
        }
    );
    let token = mint("rsa", &claims_with("exp", Some(json!(i64::MAX))));
    assert!(check(&token).is_ok());
    let token = mint("rsa", &claims_with("nbf", Some(json!(i64::MAX))));
    assert_eq!(
        check(&token).unwrap_err(),
        Rejection::NotYetValid {
            nbf: i64::MAX,
            now: NOW
        }
    );
    let token = mint("rsa", &claims_with("nbf", Some(json!(i64::MIN))));
    assert!(check(&token).is_ok());
}

// --- issuer and audience -------------------------------------------------------------

#[test]
fn issuer_must_match_exactly() {
    let cases = [
        (
            Some(json!("https://idp.example.com/")),
            Some("https://idp.example.com/"),
        ),
        (
            Some(json!("https://IDP.example.com")),
            Some("https://IDP.example.com"),
        ),
        (
            Some(json!("HTTPS://idp.example.com")),
            Some("HTTPS://idp.example.com"),
        ),
        (
            Some(json!(" https://idp.example.com")),
            Some(" https://idp.example.com"),
        ),
        (
            Some(json!("https://idp.example.com.evil")),
            Some("https://idp.example.com.evil"),
        ),
        (Some(json!("")), Some("")),
        (Some(json!([ISSUER])), Some("[\"https://idp.example.com\"]")),
        (Some(json!(7)), Some("7")),
        (Some(json!(null)), Some("null")),
        (None, None),
    ];
    for (iss, got) in cases {
        let token = mint("rsa", &claims_with("iss", iss.clone()));
        assert_eq!(
            check(&token).unwrap_err(),
            Rejection::IssuerMismatch {
                got: got.map(str::to_string),
                expected: ISSUER.into()
            },
            "iss={iss:?}"
        );
    }
}

#[test]
fn audience_must_contain_a_configured_one() {
    let accepted = [
        json!(AUDIENCE),
        json!([AUDIENCE]),
        json!(["other", AUDIENCE]),
        json!([AUDIENCE, "other"]),
        // Upper-case scheme and host name the same resource (MCP 2026-07-28).
        json!("HTTPS://MCP.EXAMPLE.COM/mcp"),
    ];
    for aud in accepted {
        let token = mint("rsa", &claims_with("aud", Some(aud.clone())));
        assert!(check(&token).is_ok(), "aud={aud}");
    }
    let mismatch = |got: &[&str]| Rejection::AudienceMismatch {
        got: got.iter().map(|s| s.to_string()).collect(),
        expected: vec![AUDIENCE.into()],
    };
    let invalid = Rejection::InvalidClaim {
        claim: "aud",
        reason: "must be a string or an array of strings",
    };
    let refused = [
        (Some(json!("other")), mismatch(&["other"])),
        (
            Some(json!("https://mcp.example.com/mcp/")),
            mismatch(&["https://mcp.example.com/mcp/"]),
        ),
        (
            Some(json!("https://mcp.example.com/MCP")),
            mismatch(&["https://mcp.example.com/MCP"]),
        ),
        (Some(json!(["a", "b"])), mismatch(&["a", "b"])),
        (Some(json!([])), mismatch(&[])),
        (None, mismatch(&[])),
        (Some(json!([1])), invalid.clone()),
        (Some(json!([AUDIENCE, 1])), invalid.clone()),
        (Some(json!([[AUDIENCE]])), invalid.clone()),
        (Some(json!({"aud": AUDIENCE})), invalid.clone()),
        (Some(json!([{"aud": AUDIENCE}])), invalid.clone()),
        (Some(json!(null)), invalid.clone()),
        (Some(json!(42)), invalid.clone()),
    ];
    for (aud, expected) in refused {
        let token = mint("rsa", &claims_with("aud", aud.clone()));
        assert_eq!(check(&token).unwrap_err(), expected, "aud={aud:?}");
    }
}

#[test]
fn an_empty_audience_list_disables_the_audience_check() {
    let rules = ClaimRules {
        audiences: Vec::new(),
        ..rules()
    };
    for aud in [
        Some(json!("other")),
        Some(json!([])),
        Some(json!({"nested": 1})),
        None,
    ] {
        let token = mint("rsa", &claims_with("aud", aud.clone()));
        assert!(check_with(&token, &rules).is_ok(), "aud={aud:?}");
    }
}

// --- required claims -----------------------------------------------------------------

#[test]
fn required_claims_must_be_present() {
    let token = mint("rsa", &claims_with("exp", None));
    assert_eq!(
        check(&token).unwrap_err(),
        Rejection::MissingClaim("exp".into())
    );
    let with_sub = ClaimRules {
        required: vec!["exp".into(), "sub".into()],
        ..rules()
    };
    let token = mint("rsa", &claims_with("sub", None));
    assert_eq!(
        check_with(&token, &with_sub).unwrap_err(),
        Rejection::MissingClaim("sub".into())
    );
    assert!(check_with(&mint("rsa", &claims()), &with_sub).is_ok());
    // Without requirements a token without exp is accepted (a present exp is still checked).
    let none_required = ClaimRules {
        required: Vec::new(),
        ..rules()
    };
    assert!(check_with(&mint("rsa", &claims_with("exp", None)), &none_required).is_ok());
    let expired = mint("rsa", &claims_with("exp", Some(json!(NOW - 3600))));
    assert!(matches!(
        check_with(&expired, &none_required),
        Err(Rejection::Expired { .. })
    ));
}

// --- key choice ----------------------------------------------------------------------

#[test]
fn a_token_without_kid_is_tried_against_keys_of_its_type() {
    let no_kid = |name: &str, alg: Alg| {
        signed(
            name,
            json!({"alg": alg.name(), "typ": "JWT"}),
            &claims(),
            alg,
        )
    };
    assert!(check(&no_kid("rsa", Alg::Rs256)).is_ok());
    assert!(check(&no_kid("ec", Alg::Es256)).is_ok());
    // Both RSA keys are candidates; the second one verifies.
    let two_rsa = keyset(&["rsa", "rsa2"]);
    assert!(verify(&no_kid("rsa2", Alg::Rs256), &two_rsa, &rules(), NOW).is_ok());
    // A key in the set without kid is usable by a token with or without kid... without only.
    let anonymous = keyset_of(vec![public_jwk_without("rsa", &["kid"])]);
    assert!(verify(&no_kid("rsa", Alg::Rs256), &anonymous, &rules(), NOW).is_ok());
    assert_eq!(
        verify(&mint("rsa", &claims()), &anonymous, &rules(), NOW).unwrap_err(),
        Rejection::UnknownKid("rsa-1".into())
    );
    // No key of the token's type at all.
    let ec_only = keyset(&["ec"]);
    assert_eq!(
        verify(&no_kid("rsa", Alg::Rs256), &ec_only, &rules(), NOW).unwrap_err(),
        Rejection::NoMatchingKey(Alg::Rs256)
    );
    // A key not in the set.
    assert_eq!(
        check(&no_kid("rsa2", Alg::Rs256)).unwrap_err(),
        Rejection::BadSignature
    );
}

#[test]
fn anonymous_candidates_are_bounded() {
    let decoy = public_jwk_without("rsa", &["kid"]);
    let real = public_jwk_without("rsa2", &["kid"]);
    let token = signed("rsa2", json!({"alg": "RS256"}), &claims(), Alg::Rs256);
    let mut within = vec![decoy.clone(); MAX_CANDIDATES - 1];
    within.push(real.clone());
    assert!(verify(&token, &keyset_of(within), &rules(), NOW).is_ok());
    let mut beyond = vec![decoy; MAX_CANDIDATES];
    beyond.push(real);
    assert_eq!(
        verify(&token, &keyset_of(beyond), &rules(), NOW).unwrap_err(),
        Rejection::BadSignature
    );
}

#[test]
fn keys_sharing_a_kid_are_bounded_too() {
    let shared_kid = |name: &str| {
        let mut jwk = public_jwk(name);
        jwk["kid"] = json!("same");
        jwk
    };
    let token = signed(
        "rsa2",
        json!({"alg": "RS256", "kid": "same"}),
        &claims(),
        Alg::Rs256,
    );
    let mut within = vec![shared_kid("rsa"); MAX_CANDIDATES - 1];
    within.push(shared_kid("rsa2"));
    assert!(verify(&token, &keyset_of(within), &rules(), NOW).is_ok());
    // The real key is the fifth of its kid: never tried, so a set padded with one kid
    // costs at most MAX_CANDIDATES signature checks per token.
    let mut beyond = vec![shared_kid("rsa"); MAX_CANDIDATES];
    beyond.push(shared_kid("rsa2"));
    assert_eq!(
        verify(&token, &keyset_of(beyond), &rules(), NOW).unwrap_err(),
        Rejection::BadSignature
    );
}

#[test]
fn the_reference_verifier_accepts_and_refuses_the_same_tokens() {
    use crate::core::alg::Verifier;
    use crate::core::jwks::KeyPolicy;
    let doc = json!({"keys": [public_jwk_without("rsa", &["alg"]), public_jwk("ec")]});
    let reference = KeySet::parse_with(
        doc.to_string().as_bytes(),
        KeyPolicy {
            verifier: Verifier::Reference,
            ..KeyPolicy::default()
        },
    )
    .unwrap();
    assert_eq!(reference.verifier(), Verifier::Reference);
    assert_eq!(default_keys().verifier(), Verifier::Fast);
    for (name, alg) in [
        ("rsa", Alg::Rs256),
        ("rsa", Alg::Rs512),
        ("rsa", Alg::Ps256),
        ("ec", Alg::Es256),
    ] {
        let kid = if name == "rsa" { "rsa-1" } else { "ec-1" };
        let token = signed(name, json!({"alg": alg.name(), "kid": kid}), &claims(), alg);
        assert!(verify(&token, &reference, &rules(), NOW).is_ok(), "{alg:?}");
        let mut tampered = token.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            verify(&tampered, &reference, &rules(), NOW).unwrap_err(),
            Rejection::BadSignature,
            "{alg:?}"
        );
    }
}

/// `s + n` as a signature of the same length, when it fits (about a third of signatures
/// for a 2048-bit key, depending on the top bits of `n`).
fn plus_modulus(signature: &[u8], name: &str) -> Option<Vec<u8>> {
    use rsa::BigUint;
    let n = URL_SAFE_NO_PAD
        .decode(public_jwk(name)["n"].as_str().unwrap())
        .unwrap();
    #[allow(clippy::arithmetic_side_effects)] // a bignum: no overflow
    let sum = (BigUint::from_bytes_be(signature) + BigUint::from_bytes_be(&n)).to_bytes_be();
    (sum.len() == signature.len()).then_some(sum)
}

#[test]
fn an_rsa_signature_plus_the_modulus_is_refused_for_every_algorithm() {
    use jwt_compact::{Algorithm, AlgorithmSignature};
    let keys = keyset_of(vec![public_jwk_without("rsa", &["alg"])]);
    let crate::core::alg::PublicKey::Rsa(rsa_key) = &keys.keys()[0].public else {
        panic!("the fixture is an RSA key");
    };
    let rsa_key = rsa_key.key.clone();
    for alg in [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
    ] {
        // Vary the payload until s + n still fits in the modulus length.
        let (token, malleated) = (0..200)
            .find_map(|jti| {
                let header = json!({"alg": alg.name(), "kid": "rsa-1"});
                let token = signed("rsa", header, &claims_with("jti", Some(json!(jti))), alg);
                let parts = segments(&token);
                let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
                let bigger = plus_modulus(&signature, "rsa")?;
                let malleated = format!("{}.{}.{}", parts[0], parts[1], b64(&bigger));
                Some((token, malleated))
            })
            .expect("some signature leaves room for s + n");
        assert!(verify(&token, &keys, &rules(), NOW).is_ok(), "{alg:?}");
        assert_eq!(
            verify(&malleated, &keys, &rules(), NOW).unwrap_err(),
            Rejection::BadSignature,
            "{alg:?}"
        );
        // The gap this closes: rsa 0.9's PSS verifier alone accepts s + n.
        if matches!(alg, Alg::Ps256) {
            let parts = segments(&malleated);
            let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            let sig = jwt_compact::alg::RsaSignature::try_from_slice(&sig).unwrap();
            let signed_part = format!("{}.{}", parts[0], parts[1]);
            assert!(jwt_compact::alg::Rsa::ps256().verify_signature(
                &sig,
                &rsa_key,
                signed_part.as_bytes()
            ));
        }
    }
}

#[test]
fn kid_selects_the_key() {
    let unknown = signed(
        "rsa",
        json!({"alg": "RS256", "kid": "nope"}),
        &claims(),
        Alg::Rs256,
    );
    assert_eq!(
        check(&unknown).unwrap_err(),
        Rejection::UnknownKid("nope".into())
    );
    // The right key under the wrong name: kid `rsa-1` but signed by rsa2.
    let misnamed = signed(
        "rsa2",
        json!({"alg": "RS256", "kid": "rsa-1"}),
        &claims(),
        Alg::Rs256,
    );
    assert_eq!(check(&misnamed).unwrap_err(), Rejection::BadSignature);
    for kid in [json!(1), json!(null), json!(["rsa-1"])] {
        let token = signed(
            "rsa",
            json!({"alg": "RS256", "kid": kid}),
            &claims(),
            Alg::Rs256,
        );
        assert_eq!(
            check(&token).unwrap_err(),
            Rejection::Malformed("header \"kid\" is not a string"),
            "kid={kid}"
        );
    }
}

#[test]
fn an_algorithm_of_the_wrong_key_type_is_refused() {
    // RS256 naming the EC key, ES256 naming the RSA key: pinned or not, the types differ.
    let rs_on_ec = signed(
        "rsa",
        json!({"alg": "RS256", "kid": "ec-1"}),
        &claims(),
        Alg::Rs256,
    );
    assert_eq!(
        check(&rs_on_ec).unwrap_err(),
        Rejection::KeyAlgMismatch {
            kid: "ec-1".into(),
            alg: Alg::Rs256
        }
    );
    let es_on_rsa = signed(
        "ec",
        json!({"alg": "ES256", "kid": "rsa-1"}),
        &claims(),
        Alg::Es256,
    );
    assert_eq!(
        check(&es_on_rsa).unwrap_err(),
        Rejection::KeyAlgMismatch {
            kid: "rsa-1".into(),
            alg: Alg::Es256
        }
    );
    let unpinned = keyset_of(vec![
        public_jwk_without("rsa", &["alg"]),
        public_jwk_without("ec", &["alg"]),
    ]);
    for token in [&rs_on_ec, &es_on_rsa] {
        assert!(matches!(
            verify(token, &unpinned, &rules(), NOW),
            Err(Rejection::KeyAlgMismatch { .. })
        ));
    }
    // Without kid an ES256 token finds no EC key in an RSA-only set.
    let rsa_only = keyset(&["rsa"]);
    let es_no_kid = signed("ec", json!({"alg": "ES256"}), &claims(), Alg::Es256);
    assert_eq!(
        verify(&es_no_kid, &rsa_only, &rules(), NOW).unwrap_err(),
        Rejection::NoMatchingKey(Alg::Es256)
    );
}

// --- hostile headers -----------------------------------------------------------------

#[test]
fn alg_none_is_refused_with_or_without_a_signature() {
    let payload = claims().to_string();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for signature in [&b""[..], b"anything", &[0u8; 256]] {
            for kid in [None, Some("rsa-1")] {
                let mut header = json!({"alg": alg, "typ": "JWT"});
                if let Some(kid) = kid {
                    header["kid"] = json!(kid);
                }
                let token = unsigned(header.to_string().as_bytes(), payload.as_bytes(), signature);
                assert_eq!(
                    check(&token).unwrap_err(),
                    Rejection::UnsupportedAlg(alg.into()),
                    "{token}"
                );
            }
        }
    }
}

#[test]
fn hmac_keyed_with_the_public_key_is_refused_before_key_lookup() {
    use jwt_compact::alg::{Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
    use jwt_compact::{Algorithm, AlgorithmSignature};
    // The classic confusion: the verifier's public key used as the HMAC secret.
    let secrets = [
        public_jwk("rsa").to_string(),
        json!({"keys": [public_jwk("rsa")]}).to_string(),
        public_jwk("rsa")["n"].as_str().unwrap().to_string(),
        public_jwk("ec").to_string(),
    ];
    for secret in &secrets {
        for kid in ["rsa-1", "ec-1", "unknown"] {
            let header = json!({"alg": "HS256", "kid": kid});
            let input = format!("{}.{}", b64(header.to_string()), b64(claims().to_string()));
            let mac = Hs256.sign(&Hs256Key::new(secret.as_bytes()), input.as_bytes());
            let token = format!("{input}.{}", b64(mac.as_bytes()));
            assert_eq!(
                check(&token).unwrap_err(),
                Rejection::UnsupportedAlg("HS256".into()),
                "kid={kid}"
            );
        }
        let input = |alg: &str| {
            format!(
                "{}.{}",
                b64(json!({"alg": alg, "kid": "rsa-1"}).to_string()),
                b64(claims().to_string())
            )
        };
        let hs384 = Hs384.sign(&Hs384Key::new(secret.as_bytes()), input("HS384").as_bytes());
        let hs512 = Hs512.sign(&Hs512Key::new(secret.as_bytes()), input("HS512").as_bytes());
        for (alg, mac) in [
            ("HS384", hs384.as_bytes().into_owned()),
            ("HS512", hs512.as_bytes().into_owned()),
        ] {
            let token = format!("{}.{}", input(alg), b64(mac));
            assert_eq!(
                check(&token).unwrap_err(),
                Rejection::UnsupportedAlg(alg.into())
            );
        }
    }
}

#[test]
fn keys_embedded_in_the_header_are_never_used() {
    // The attacker signs with rsa2 (not in the set) and points at it from the header.
    let attacker = public_jwk("rsa2");
    let attacker_ec_like_rsa1 = {
        let mut jwk = public_jwk("rsa2");
        jwk["kid"] = json!("rsa-1");
        jwk
    };
    let cases = [
        (
            json!({"alg": "RS256", "kid": "rsa-2", "jwk": attacker}),
            Rejection::UnknownKid("rsa-2".into()),
        ),
        (
            json!({"alg": "RS256", "kid": "rsa-1", "jwk": attacker_ec_like_rsa1}),
            Rejection::BadSignature,
        ),
        (
            json!({"alg": "RS256", "jwk": attacker}),
            Rejection::BadSignature,
        ),
        (
            json!({"alg": "RS256", "kid": "rsa-1", "jku": "https://evil.example/jwks.json"}),
            Rejection::BadSignature,
        ),
        (
            json!({"alg": "RS256", "jku": "https://evil.example/jwks.json"}),
            Rejection::BadSignature,
        ),
        (
            json!({"alg": "RS256", "kid": "rsa-2", "x5u": "https://evil.example/cert.pem"}),
            Rejection::UnknownKid("rsa-2".into()),
        ),
        (
            json!({"alg": "RS256", "kid": "rsa-1", "x5u": "https://evil.example/cert.pem"}),
            Rejection::BadSignature,
        ),
        (
            json!({"alg": "RS256", "kid": "rsa-1", "x5c": ["MIIBIjANBgkq"]}),
            Rejection::BadSignature,
        ),
    ];
    for (header, expected) in cases {
        let token = signed("rsa2", header.clone(), &claims(), Alg::Rs256);
        assert_eq!(check(&token).unwrap_err(), expected, "{header}");
    }
}

#[test]
fn crit_is_refused_since_no_extension_is_understood() {
    let cases = [
        (json!(["exp"]), vec!["exp".to_string()]),
        (json!(["b64", "urn:x"]), vec!["b64".into(), "urn:x".into()]),
        (json!([]), vec![]),
        (json!("exp"), vec!["exp".into()]),
        (json!([1]), vec!["1".into()]),
    ];
    for (crit, names) in cases {
        let header = json!({"alg": "ES256", "kid": "ec-1", "crit": crit, "exp": 1});
        let token = signed("ec", header, &claims(), Alg::Es256);
        assert_eq!(
            check(&token).unwrap_err(),
            Rejection::UnsupportedCrit(names),
            "crit={crit}"
        );
    }
}

#[test]
fn unencoded_payloads_are_refused() {
    for b64_value in [json!(false), json!("false"), json!(0), json!(null)] {
        let header = json!({"alg": "ES256", "kid": "ec-1", "b64": b64_value});
        let token = signed("ec", header, &claims(), Alg::Es256);
        assert_eq!(
            check(&token).unwrap_err(),
            Rejection::UnsupportedCrit(vec!["b64".into()]),
            "b64={b64_value}"
        );
    }
    // `b64: true` is the default and changes nothing.
    let header = json!({"alg": "ES256", "kid": "ec-1", "b64": true});
    assert!(check(&signed("ec", header, &claims(), Alg::Es256)).is_ok());
}

#[test]
fn header_without_a_string_alg_is_malformed() {
    for header in [
        json!({"kid": "ec-1"}),
        json!({"alg": 256, "kid": "ec-1"}),
        json!({"alg": null}),
        json!({"alg": ["ES256"]}),
        json!(["ES256"]),
        json!("ES256"),
    ] {
        let token = es256_over_raw(
            header.to_string().as_bytes(),
            claims().to_string().as_bytes(),
        );
        assert!(
            matches!(check(&token), Err(Rejection::Malformed(_))),
            "{header}"
        );
    }
    let not_json = es256_over_raw(b"{alg: ES256}", claims().to_string().as_bytes());
    assert!(matches!(check(&not_json), Err(Rejection::Malformed(_))));
}

// --- duplicate members ---------------------------------------------------------------

#[test]
fn raw_es256_helper_produces_tokens_that_verify() {
    // Guards the duplicate-member tests below: the same bytes without the duplicate pass.
    let header = br#"{"alg":"ES256","kid":"ec-1"}"#;
    let token = es256_over_raw(header, claims().to_string().as_bytes());
    assert!(check(&token).is_ok());
}

#[test]
fn duplicate_claims_are_malformed() {
    let header = br#"{"alg":"ES256","kid":"ec-1"}"#;
    let exp = NOW + 300;
    let payloads = [
        format!(r#"{{"iss":"a","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp}}}"#),
        format!(r#"{{"iss":"{ISSUER}","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp}}}"#),
        format!(r#"{{"iss":"{ISSUER}","aud":"other","aud":"{AUDIENCE}","exp":{exp}}}"#),
        format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":1,"exp":{exp}}}"#),
        format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp},"sub":"a","sub":"b"}}"#),
    ];
    for payload in payloads {
        let token = es256_over_raw(header, payload.as_bytes());
        assert_eq!(
            check(&token).unwrap_err(),
            Rejection::Malformed("payload is not a JSON object with unique names"),
            "{payload}"
        );
    }
}

#[test]
fn duplicate_header_members_are_malformed() {
    let payload = claims().to_string();
    for header in [
        r#"{"alg":"ES256","alg":"ES256","kid":"ec-1"}"#,
        r#"{"alg":"none","alg":"ES256","kid":"ec-1"}"#,
        r#"{"alg":"ES256","kid":"ec-1","alg":"none"}"#,
        r#"{"alg":"ES256","kid":"other","kid":"ec-1"}"#,
        r#"{"alg":"ES256","kid":"ec-1","crit":["x"],"crit":[]}"#,
    ] {
        let token = es256_over_raw(header.as_bytes(), payload.as_bytes());
        assert_eq!(
            check(&token).unwrap_err(),
            Rejection::Malformed("header is not a JSON object with unique names"),
            "{header}"
        );
    }
}

#[test]
fn payload_that_is_not_a_json_object_is_malformed() {
    let header = br#"{"alg":"ES256","kid":"ec-1"}"#;
    for payload in [
        &b""[..],
        b"null",
        b"[1]",
        b"\"claims\"",
        b"{\"iss\":",
        b"\xff\xfe",
    ] {
        let token = es256_over_raw(header, payload);
        assert_eq!(
            check(&token).unwrap_err(),
            Rejection::Malformed("payload is not a JSON object with unique names"),
            "{payload:?}"
        );
    }
}

// --- structure -----------------------------------------------------------------------

#[test]
fn structurally_broken_tokens_are_malformed() {
    let token = mint("rsa", &claims());
    let ec_token = mint("ec", &claims());
    let parts = segments(&token);
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let jwe_header = b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"rsa-1"}"#);
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("one segment", h.to_string()),
        ("two segments", format!("{h}.{p}")),
        ("four segments", format!("{h}.{p}.{s}.{s}")),
        ("trailing dot", format!("{token}.")),
        ("leading dot", format!(".{token}")),
        (
            "five segments (JWE)",
            format!("{jwe_header}.{s}.AAAA.{p}.AAAA"),
        ),
        ("truncated signature", token[..token.len() - 1].to_string()),
        (
            "truncated ES256 signature",
            ec_token[..ec_token.len() - 1].to_string(),
        ),
        (
            "truncated at the signature dot",
            token[..h.len() + 1 + p.len()].to_string(),
        ),
        ("padded signature", format!("{token}==")),
        ("padded header", format!("{h}=.{p}.{s}")),
        ("padded payload", format!("{h}.{p}=.{s}")),
        (
            "standard base64 alphabet",
            format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")),
        ),
        (
            "non-ASCII in payload",
            format!("{h}.{}é{}.{s}", &p[..4], &p[4..]),
        ),
        ("non-ASCII in signature", format!("{h}.{p}.{s}é")),
        ("space inside", format!("{h}.{} {}.{s}", &p[..4], &p[4..])),
        ("leading space", format!(" {token}")),
        ("trailing space", format!("{token} ")),
        ("trailing newline", format!("{token}\n")),
        (
            "tab inside header",
            format!("{}\t{}.{p}.{s}", &h[..4], &h[4..]),
        ),
    ];
    for (what, token) in cases {
        let result = check(&token);
        assert!(
            matches!(result, Err(Rejection::Malformed(_))),
            "{what}: {result:?}"
        );
    }
}

#[test]
fn non_canonical_base64_is_malformed() {
    // The last character of a 256-byte signature carries 2 bits; setting an unused bit gives
    // a different string that lenient decoders map to the same bytes.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let token = mint("rsa", &claims());
    let last = *token.as_bytes().last().unwrap();
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    let tweaked = char::from(ALPHABET[index ^ 1]);
    let token = format!("{}{tweaked}", &token[..token.len() - 1]);
    assert_eq!(
        check(&token).unwrap_err(),
        Rejection::Malformed("signature is not base64url")
    );
}

#[test]
fn stripped_or_tampered_signatures_are_refused() {
    let token = mint("rsa", &claims());
    let parts = segments(&token);
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    assert!(matches!(
        check(&stripped),
        Err(Rejection::BadSignature | Rejection::Malformed(_))
    ));
    let ec = mint("ec", &claims());
    let ec_parts = segments(&ec);
    let stripped = format!("{}.{}.", ec_parts[0], ec_parts[1]);
    assert!(matches!(
        check(&stripped),
        Err(Rejection::BadSignature | Rejection::Malformed(_))
    ));
    // A signature of the right length but all zeros.
    let zeros = format!("{}.{}.{}", parts[0], parts[1], b64([0u8; 256]));
    assert_eq!(check(&zeros).unwrap_err(), Rejection::BadSignature);
    let ec_zeros = format!("{}.{}.{}", ec_parts[0], ec_parts[1], b64([0u8; 64]));
    assert_eq!(check(&ec_zeros).unwrap_err(), Rejection::BadSignature);
    // The ES256 signature with r and s swapped.
    let sig = URL_SAFE_NO_PAD.decode(ec_parts[2]).unwrap();
    let swapped = [&sig[32..], &sig[..32]].concat();
    let token_swapped = format!("{}.{}.{}", ec_parts[0], ec_parts[1], b64(swapped));
    assert_eq!(check(&token_swapped).unwrap_err(), Rejection::BadSignature);
    // A signature one byte too long or short.
    let long = format!(
        "{}.{}.{}",
        ec_parts[0],
        ec_parts[1],
        b64([&sig[..], &[0]].concat())
    );
    assert_eq!(check(&long).unwrap_err(), Rejection::BadSignature);
    let short = format!("{}.{}.{}", ec_parts[0], ec_parts[1], b64(&sig[..63]));
    assert_eq!(check(&short).unwrap_err(), Rejection::BadSignature);
}

#[test]
fn a_payload_swapped_from_another_valid_token_is_refused() {
    for name in ["rsa", "ec"] {
        let honest = mint(name, &claims_with("sub", Some(json!("alice"))));
        let other = mint(name, &claims_with("sub", Some(json!("admin"))));
        assert!(check(&honest).is_ok() && check(&other).is_ok());
        let h = segments(&honest);
        let o = segments(&other);
        let spliced = format!("{}.{}.{}", h[0], o[1], h[2]);
        assert_eq!(
            check(&spliced).unwrap_err(),
            Rejection::BadSignature,
            "{name}"
        );
        // A header swapped in from a token of the other key type.
        let foreign = mint(if name == "rsa" { "ec" } else { "rsa" }, &claims());
        let header_swap = format!("{}.{}.{}", segments(&foreign)[0], h[1], h[2]);
        assert_eq!(
            check(&header_swap).unwrap_err(),
            Rejection::BadSignature,
            "{name}"
        );
    }
}

#[test]
fn another_issuers_token_is_refused_before_any_key_work() {
    let keys = default_keys();
    // A stranger's token naming a kid this key set lacks: refused for its issuer, not as an
    // unknown kid (which would ask for a refetch), with or without keys.
    let mut stranger = claims();
    stranger["iss"] = json!("https://stranger.example");
    let header = json!({"alg": "ES256", "kid": "not-in-the-set"});
    let token = signed("ec", header, &stranger, Alg::Es256);
    assert!(matches!(
        check(&token),
        Err(Rejection::IssuerMismatch { .. })
    ));
    let rules = rules();
    assert!(matches!(
        check_without_keys(&token, &rules),
        Err(Rejection::IssuerMismatch { .. })
    ));
    assert_eq!(check_without_keys(&mint("ec", &claims()), &rules), Ok(()));
    // The claims are read before the signature but trusted only after it: a valid header and
    // signature over other claims is refused for its signature.
    let good = mint("ec", &claims());
    let expired = mint("ec", &claims_with("exp", Some(json!(0))));
    let t = segments(&good);
    let e = segments(&expired);
    let spliced = format!("{}.{}.{}", t[0], e[1], t[2]);
    assert_eq!(
        verify(&spliced, &keys, &rules, NOW).unwrap_err(),
        Rejection::BadSignature
    );
}

#[test]
fn verify_signature_returns_the_authentic_payload_only() {
    let keys = default_keys();
    let token = mint("ec", &claims());
    let payload = verify_signature(&token, &keys).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&payload).unwrap(), claims());
    // Claims are not checked at this stage...
    let expired = mint("ec", &claims_with("exp", Some(json!(0))));
    assert!(verify_signature(&expired, &keys).is_ok());
    assert!(matches!(check(&expired), Err(Rejection::Expired { .. })));
    // ...but the signature is.
    let t = segments(&token);
    let e = segments(&expired);
    let spliced = format!("{}.{}.{}", t[0], e[1], t[2]);
    assert_eq!(
        verify_signature(&spliced, &keys).unwrap_err(),
        Rejection::BadSignature
    );
}

#[test]
fn rejections_describe_the_rule_without_token_content() {
    let rejection =
        check(&mint("rsa", &claims_with("aud", Some(json!("secret-aud"))))).unwrap_err();
    assert_eq!(rejection.metric().name(), "denied.audience");
    assert_eq!(rejection.description(), "audience mismatch");
    assert!(!rejection.description().contains("secret-aud"));
    assert_eq!(
        rejection.to_string(),
        format!("aud mismatch (token aud=[\"secret-aud\"], expected one of [\"{AUDIENCE}\"])")
    );
    let expired = check(&mint("rsa", &claims_with("exp", Some(json!(NOW - 3600))))).unwrap_err();
    assert_eq!(expired.description(), "token expired");
    assert_eq!(expired.metric().name(), "denied.expired");
}
