use super::*;
use crate::core::testkit::{public_jwk, public_jwk_without};
use serde_json::json;

fn parse(doc: Value) -> Result<KeySet, JwksError> {
    KeySet::parse(doc.to_string().as_bytes())
}

/// Parses `{"keys": [rsa, bad]}` and returns the one skip reason for `bad`.
fn skip_reason(bad: Value) -> String {
    let set = parse(json!({"keys": [public_jwk("rsa"), bad]}))
        .expect("the good key keeps the set usable");
    assert_eq!(set.keys().len(), 1);
    let [skipped] = set.skipped() else {
        panic!("expected one skipped key, got {:?}", set.skipped());
    };
    assert_eq!(skipped.index, 1);
    skipped.reason.clone()
}

fn with(mut jwk: Value, member: &str, value: Value) -> Value {
    jwk[member] = value;
    jwk
}

/// An RSA JWK whose modulus is `2^(bits-1) + 1`: odd and exactly `bits` long, which is
/// all the size checks look at.
fn rsa_jwk_of_bits(bits: usize) -> Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    #[allow(clippy::arithmetic_side_effects)] // a bignum: no overflow
    let n = (BigUint::from(1u8) << (bits - 1)) + 1u8;
    json!({"kty": "RSA", "kid": format!("rsa-{bits}"),
           "n": URL_SAFE_NO_PAD.encode(n.to_bytes_be()), "e": "AQAB"})
}

#[test]
fn rsa_keys_above_the_policy_size_are_skipped() {
    let default = parse(json!({"keys": [rsa_jwk_of_bits(4096), rsa_jwk_of_bits(4097)]})).unwrap();
    assert_eq!(default.keys().len(), 1);
    assert_eq!(
        default.skipped()[0].reason,
        "RSA modulus of 4097 bits is over 4096 (jwtValidationOptions.maxRsaKeyBits)"
    );
    let doc = json!({"keys": [rsa_jwk_of_bits(8192), rsa_jwk_of_bits(8193)]});
    let raised = KeySet::parse_with(
        doc.to_string().as_bytes(),
        KeyPolicy {
            max_rsa_bits: MAX_RSA_BITS_LIMIT,
            ..KeyPolicy::default()
        },
    )
    .unwrap();
    assert_eq!(raised.keys().len(), 1);
    assert_eq!(raised.keys()[0].kid.as_deref(), Some("rsa-8192"));
    assert!(
        raised.skipped()[0]
            .reason
            .contains("8193 bits is over 8192")
    );
    assert!(matches!(parse(doc), Err(JwksError::NoUsableKey(_))));
}

#[test]
fn rsa_and_ec_keys_parse_with_kid_and_pinned_alg() {
    let set = parse(json!({"keys": [public_jwk("rsa"), public_jwk("ec")]})).unwrap();
    assert!(set.skipped().is_empty());
    let [rsa, ec] = set.keys() else {
        panic!("expected two keys")
    };
    assert_eq!(rsa.kid.as_deref(), Some("rsa-1"));
    assert_eq!(rsa.pinned_alg, Some(Alg::Rs256));
    assert_eq!(rsa.public.kind(), KeyKind::Rsa);
    assert_eq!(ec.kid.as_deref(), Some("ec-1"));
    assert_eq!(ec.pinned_alg, Some(Alg::Es256));
    assert_eq!(ec.public.kind(), KeyKind::EcP256);
    assert!(set.has_kid("rsa-1") && set.has_kid("ec-1"));
    assert!(!set.has_kid("rsa-2") && !set.has_kid(""));
}

#[test]
fn pinned_alg_limits_what_a_key_allows() {
    let set = parse(json!({"keys": [
        public_jwk("rsa"),
        public_jwk_without("rsa2", &["alg"]),
        public_jwk("ec"),
    ]}))
    .unwrap();
    let [pinned, unpinned, ec] = set.keys() else {
        panic!("expected three keys")
    };
    let rsa_algs = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
    ];
    for alg in rsa_algs {
        assert_eq!(pinned.allows(alg), alg == Alg::Rs256, "{}", alg.name());
        assert!(unpinned.allows(alg), "{}", alg.name());
        assert!(!ec.allows(alg), "{}", alg.name());
    }
    assert!(ec.allows(Alg::Es256));
    assert!(!pinned.allows(Alg::Es256) && !unpinned.allows(Alg::Es256));
}

#[test]
fn keys_without_kid_use_or_alg_are_usable() {
    let bare = public_jwk_without("rsa", &["kid", "use", "alg"]);
    let set = parse(json!({"keys": [bare, public_jwk_without("ec", &["kid"])]})).unwrap();
    assert_eq!(set.keys().len(), 2);
    assert!(set.keys().iter().all(|k| k.kid.is_none()));
    assert_eq!(set.keys()[0].pinned_alg, None);
}

#[test]
fn padded_coordinates_are_tolerated() {
    let mut jwk = public_jwk("ec");
    for member in ["x", "y"] {
        // 32 bytes are 43 base64url characters: one `=` of padding.
        let padded = format!("{}=", jwk[member].as_str().unwrap());
        jwk[member] = json!(padded);
    }
    assert_eq!(parse(json!({"keys": [jwk]})).unwrap().keys().len(), 1);
}

#[test]
fn foreign_or_bad_keys_are_skipped_with_a_reason() {
    let rsa = public_jwk("rsa");
    let ec = public_jwk("ec");
    let flipped_y = {
        let y = ec["y"].as_str().unwrap();
        let mut bytes = JWK_BASE64.decode(y).unwrap();
        bytes[31] ^= 1;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let cases = [
        (
            with(rsa.clone(), "use", json!("enc")),
            "use \"enc\" is not \"sig\"",
        ),
        (
            with(ec.clone(), "use", json!("enc")),
            "use \"enc\" is not \"sig\"",
        ),
        (
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
            "symmetric (oct) keys are refused",
        ),
        (
            public_jwk("rsa_small"),
            "RSA modulus of 1024 bits is under 2048",
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
            "unsupported key type \"OKP\"",
        ),
        (
            with(ec.clone(), "crv", json!("P-384")),
            "unsupported curve \"P-384\"",
        ),
        (
            with(ec.clone(), "crv", json!("secp256k1")),
            "unsupported curve \"secp256k1\"",
        ),
        (public_jwk_without("ec", &["crv"]), "missing \"crv\""),
        (public_jwk_without("rsa", &["kty"]), "missing \"kty\""),
        (public_jwk_without("rsa", &["n"]), "missing \"n\""),
        (public_jwk_without("ec", &["y"]), "missing \"y\""),
        (
            with(rsa.clone(), "n", json!("!!!not base64!!!")),
            "\"n\" is not base64url",
        ),
        (
            with(rsa.clone(), "e", json!("AQ AB")),
            "\"e\" is not base64url",
        ),
        (
            with(ec.clone(), "x", json!("a+b/")),
            "\"x\" is not base64url",
        ),
        (
            with(ec.clone(), "y", json!(flipped_y)),
            "point is not on the P-256 curve",
        ),
        (
            with(ec.clone(), "x", json!("AAAA")),
            "P-256 coordinates must be 32 bytes",
        ),
        (
            with(rsa.clone(), "alg", json!("ES256")),
            "alg \"ES256\" does not fit the key type",
        ),
        (
            with(ec.clone(), "alg", json!("RS256")),
            "alg \"RS256\" does not fit the key type",
        ),
        (
            with(ec.clone(), "alg", json!("PS256")),
            "alg \"PS256\" does not fit the key type",
        ),
        (
            with(rsa.clone(), "alg", json!("HS256")),
            "unsupported alg \"HS256\"",
        ),
        (
            with(rsa.clone(), "alg", json!("none")),
            "unsupported alg \"none\"",
        ),
        (
            with(ec.clone(), "alg", json!("ES384")),
            "unsupported alg \"ES384\"",
        ),
        (
            with(rsa.clone(), "key_ops", json!(["encrypt"])),
            "key_ops does not include \"verify\"",
        ),
        (
            with(rsa.clone(), "key_ops", json!("verify")),
            "key_ops does not include \"verify\"",
        ),
        (
            with(rsa.clone(), "kid", json!(7)),
            "\"kid\" is not a string",
        ),
        (
            with(rsa.clone(), "kty", json!(["RSA"])),
            "\"kty\" is not a string",
        ),
        (json!("RSA"), "not a JSON object"),
        (json!(null), "not a JSON object"),
    ];
    for (jwk, expected) in cases {
        assert_eq!(skip_reason(jwk.clone()), expected, "{jwk}");
    }
}

#[test]
fn an_rsa_key_with_a_bad_exponent_is_skipped() {
    let reason = skip_reason(with(public_jwk("rsa"), "e", json!("AQ")));
    assert!(reason.starts_with("invalid RSA key"), "{reason}");
}

#[test]
fn key_ops_with_verify_is_usable() {
    let jwk = with(public_jwk("rsa"), "key_ops", json!(["sign", "verify"]));
    assert_eq!(parse(json!({"keys": [jwk]})).unwrap().keys().len(), 1);
}

#[test]
fn one_bad_key_does_not_sink_the_set() {
    let set = parse(json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0"},
        public_jwk("rsa"),
        public_jwk("rsa_small"),
        with(public_jwk("ec"), "use", json!("enc")),
        public_jwk("ec"),
        "garbage",
    ]}))
    .unwrap();
    let kids: Vec<_> = set.keys().iter().map(|k| k.kid.as_deref()).collect();
    assert_eq!(kids, [Some("rsa-1"), Some("ec-1")]);
    let skipped: Vec<_> = set
        .skipped()
        .iter()
        .map(|s| (s.index, s.kid.as_deref()))
        .collect();
    assert_eq!(
        skipped,
        [
            (0, None),
            (2, Some("rsa-small")),
            (3, Some("ec-1")),
            (5, None)
        ]
    );
    assert_eq!(
        set.skipped()[1].to_string(),
        "key 2 (kid=rsa-small): RSA modulus of 1024 bits is under 2048"
    );
    // The EC key skipped for `use: enc` has the same kid as a usable one: only the usable
    // one is in the set.
    assert!(set.has_kid("ec-1"));
}

#[test]
fn documents_without_a_usable_key_are_errors() {
    assert_eq!(
        parse(json!({"keys": []})).unwrap_err(),
        JwksError::NoUsableKey(Vec::new())
    );
    assert_eq!(parse(json!({})).unwrap_err(), JwksError::NoKeysArray);
    assert_eq!(
        parse(json!({"keys": {"kty": "RSA"}})).unwrap_err(),
        JwksError::NoKeysArray
    );
    assert_eq!(
        parse(json!({"keys": null})).unwrap_err(),
        JwksError::NoKeysArray
    );
    assert_eq!(
        parse(json!([public_jwk("rsa")])).unwrap_err(),
        JwksError::NotJson
    );
    assert_eq!(parse(json!("keys")).unwrap_err(), JwksError::NotJson);
    for bytes in [&b""[..], b"not json", b"{\"keys\": [", b"\xff"] {
        assert_eq!(KeySet::parse(bytes).unwrap_err(), JwksError::NotJson);
    }
    let only_bad = parse(json!({"keys": [public_jwk("rsa_small"), {"kty": "oct"}]}));
    let JwksError::NoUsableKey(skipped) = only_bad.unwrap_err() else {
        panic!("expected NoUsableKey")
    };
    assert_eq!(skipped.len(), 2);
}

#[test]
fn jwks_errors_explain_themselves() {
    assert_eq!(
        JwksError::NoUsableKey(Vec::new()).to_string(),
        "no usable key (the set is empty)"
    );
    let err = parse(json!({"keys": [public_jwk("rsa_small"), {"kty": "oct"}]})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no usable key (key 0 (kid=rsa-small): RSA modulus of 1024 bits is under 2048; \
         key 1: symmetric (oct) keys are refused)"
    );
    assert_eq!(JwksError::NoKeysArray.to_string(), "no \"keys\" array");
}

#[test]
fn keys_past_the_limit_are_skipped() {
    let keys: Vec<Value> = (0..MAX_KEYS + 2)
        .map(|i| with(public_jwk("ec"), "kid", json!(format!("k{i}"))))
        .collect();
    let set = parse(json!({ "keys": keys })).unwrap();
    assert_eq!(set.keys().len(), MAX_KEYS);
    assert!(set.has_kid(&format!("k{}", MAX_KEYS - 1)));
    assert!(!set.has_kid(&format!("k{MAX_KEYS}")));
    let skipped: Vec<_> = set.skipped().iter().map(|s| s.index).collect();
    assert_eq!(skipped, [MAX_KEYS, MAX_KEYS + 1]);
    assert_eq!(
        set.skipped()[0].reason,
        format!("more than {MAX_KEYS} keys in the set")
    );
    assert_eq!(set.skipped()[0].kid, Some(format!("k{MAX_KEYS}")));
}
