//! Every Wycheproof RSA signature set through the filter's own RSA verification
//! (`Alg::verify` over a key parsed from a JWK): the 32-bit Montgomery path for RS* with
//! e = 65537, `rsa` for PS* and other exponents, and the `s < n` check in front of both.
//!
//! JWS fixes the parameters: RSn is PKCS#1 v1.5 with SHA-n, PSn is PSS with SHA-n, MGF1-SHA-n
//! and an n/8-byte salt. Every case of every group whose hash is SHA-256, -384 or -512 runs
//! under the JWS algorithm of its scheme and hash: "accept" exactly when the case is valid and
//! the group's parameters are that algorithm's, "reject" otherwise (other salts and masks),
//! either for Wycheproof's "acceptable". Not under the other algorithms: an invalid "wrong
//! hash" case is a genuine signature under another hash, which that algorithm must accept.
//! Groups with other hashes have no JWS algorithm to run under. One kind of case crosses
//! over: in a group with another salt length, "s_len changed to <the hash length>" is an
//! invalid case there but a genuine signature with the JWS parameters, so it must verify.
//!
//! Also built for wasm32-wasip1 and run under Node's WASI (scripts/wasm-tests.sh).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)] // test code

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_authn::core::alg::{Alg, PublicKey};
use mcp_authn::core::jwks::{KeyPolicy, KeySet, MAX_RSA_BITS_LIMIT};
use serde_json::json;
use wycheproof::{HashFunction, Mgf, TestResult};

/// The RSA key of a JWK with this modulus and exponent, under `policy`; `None` if refused.
fn rsa_key(n: &[u8], e: &[u8], policy: KeyPolicy) -> Option<PublicKey> {
    let jwk = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)});
    let doc = json!({ "keys": [jwk] }).to_string();
    let set = KeySet::parse_with(doc.as_bytes(), policy).ok()?;
    Some(set.keys()[0].public.clone())
}

/// `maxRsaKeyBits` raised to 8192, for the 8192-bit sets.
fn raised() -> KeyPolicy {
    KeyPolicy {
        max_rsa_bits: MAX_RSA_BITS_LIMIT,
        ..KeyPolicy::default()
    }
}

fn sha2_bits(hash: HashFunction) -> Option<usize> {
    match hash {
        HashFunction::Sha2_256 => Some(256),
        HashFunction::Sha2_384 => Some(384),
        HashFunction::Sha2_512 => Some(512),
        _ => None,
    }
}

/// One group's cases under one algorithm.
struct Group<'a> {
    set: String,
    key: &'a PublicKey,
    alg: Alg,
    /// The group's parameters are exactly `alg`'s.
    jws_parameters: bool,
}

/// One Wycheproof case.
#[derive(Clone, Copy)]
struct Case<'a> {
    tc_id: usize,
    result: TestResult,
    msg: &'a [u8],
    sig: &'a [u8],
    /// Made with exactly the JWS parameters, whatever its group's are.
    jws_signature: bool,
}

#[derive(Default)]
struct Tally {
    groups: usize,
    cases: usize,
    valid: usize,
    invalid: usize,
    acceptable: usize,
    accepted: usize,
    failures: Vec<String>,
}

impl Tally {
    fn case(&mut self, group: &Group<'_>, test: &Case<'_>) {
        let Case {
            tc_id,
            result,
            msg,
            sig,
            jws_signature,
        } = *test;
        self.cases += 1;
        match result {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
        let accepted = group.alg.verify(group.key, msg, sig);
        if accepted {
            self.accepted += 1;
        }
        let expected = match (group.jws_parameters, result) {
            (true, TestResult::Acceptable) => return,
            (true, TestResult::Valid) => true,
            (false, _) if jws_signature => true,
            _ => false,
        };
        if accepted != expected {
            self.failures.push(format!(
                "{} tc {tc_id} ({result:?}) under {}: accepted={accepted}",
                group.set,
                group.alg.name()
            ));
        }
    }

    fn report(&self, what: &str) {
        println!(
            "Wycheproof {what}: {} groups with a JWS hash, {} cases ({} valid, {} invalid, \
             {} acceptable), {} accepted",
            self.groups, self.cases, self.valid, self.invalid, self.acceptable, self.accepted
        );
        assert!(self.failures.is_empty(), "{:#?}", self.failures);
    }
}

#[test]
fn wycheproof_rsa_pkcs1_v15_signature_sets() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    let mut over_default_cap = 0;
    for name in TestName::all() {
        let set = TestSet::load(name).expect("vectors load");
        let mut seen = 0;
        for group in &set.test_groups {
            seen += group.tests.len();
            let alg = match sha2_bits(group.hash) {
                Some(256) => Alg::Rs256,
                Some(384) => Alg::Rs384,
                Some(512) => Alg::Rs512,
                _ => continue,
            };
            tally.groups += 1;
            let key = rsa_key(&group.key.n, &group.key.e, raised())
                .unwrap_or_else(|| panic!("{name:?}: key refused"));
            if group.key_size > 4096 {
                // Above the default cap the key is skipped unless maxRsaKeyBits raises it.
                assert!(rsa_key(&group.key.n, &group.key.e, KeyPolicy::default()).is_none());
                over_default_cap += 1;
            }
            let group_run = Group {
                set: format!("{name:?}"),
                key: &key,
                alg,
                jws_parameters: true,
            };
            for test in &group.tests {
                let case = Case {
                    tc_id: test.tc_id,
                    result: test.result,
                    msg: &test.msg,
                    sig: &test.sig,
                    jws_signature: false,
                };
                tally.case(&group_run, &case);
            }
        }
        assert_eq!(seen, set.number_of_tests, "{name:?}");
    }
    tally.report("RSA PKCS#1 v1.5");
    // rsa_signature_{2048,3072,4096,8192}_sha{256,384,512}: one group each.
    assert!(
        tally.groups >= 12 && over_default_cap >= 3,
        "{}",
        tally.groups
    );
    assert!(tally.valid > 80 && tally.invalid > 1000);
}

#[test]
fn wycheproof_rsa_pss_signature_sets() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    let (mut jws_groups, mut refused_keys, mut crossovers) = (0, 0, 0);
    for name in TestName::all() {
        let set = TestSet::load(name).expect("vectors load");
        let mut seen = 0;
        for group in &set.test_groups {
            seen += group.tests.len();
            let bits = sha2_bits(group.hash);
            let alg = match bits {
                Some(256) => Alg::Ps256,
                Some(384) => Alg::Ps384,
                Some(512) => Alg::Ps512,
                _ => continue,
            };
            tally.groups += 1;
            let jws_parameters = group.mgf == Mgf::Mgf1
                && group.mgf_hash == Some(group.hash)
                && bits.is_some_and(|bits| group.salt_size * 8 == bits);
            if jws_parameters {
                jws_groups += 1;
            }
            let Some(key) = rsa_key(&group.key.n, &group.key.e, raised()) else {
                // Only keys under RFC 7518's 2048 bits may be refused; they verify nothing.
                assert!(
                    group.key_size < 2048,
                    "{name:?}: {}-bit key refused",
                    group.key_size
                );
                refused_keys += 1;
                continue;
            };
            let group_run = Group {
                set: format!("{name:?}"),
                key: &key,
                alg,
                jws_parameters,
            };
            let jws_salt = format!("s_len changed to {}", bits.unwrap_or_default() / 8);
            for test in &group.tests {
                let jws_signature = !jws_parameters
                    && group.mgf == Mgf::Mgf1
                    && group.mgf_hash == Some(group.hash)
                    && test.comment == jws_salt;
                crossovers += usize::from(jws_signature);
                let case = Case {
                    tc_id: test.tc_id,
                    result: test.result,
                    msg: &test.msg,
                    sig: &test.sig,
                    jws_signature,
                };
                tally.case(&group_run, &case);
            }
        }
        assert_eq!(seen, set.number_of_tests, "{name:?}");
    }
    println!(
        "({jws_groups} PSS groups with JWS parameters, {refused_keys} keys under 2048 bits, \
         {crossovers} JWS-parameter signatures in other groups)"
    );
    tally.report("RSA-PSS");
    assert!(jws_groups >= 6 && tally.valid > 50);
}
