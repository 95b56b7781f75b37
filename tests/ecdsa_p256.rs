//! The ES256 verifier (`core::ecdsa_p256`) against the Wycheproof ECDSA P-256 SHA-256 vectors
//! in P1363 form (the JWS encoding), and differentially against `p256`'s verifier on
//! signatures it makes and on their mutations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)] // test code

use jwt_compact::{Algorithm, AlgorithmSignature};
use mcp_authn::core::ecdsa_p256::{Es256, Es256Signature, P256Key};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use wycheproof::TestResult;
use wycheproof::ecdsa::{TestName, TestSet};

fn verify(key: &P256Key, message: &[u8], signature: &[u8]) -> bool {
    Es256Signature::try_from_slice(signature)
        .is_ok_and(|signature| Es256.verify_signature(&signature, key, message))
}

/// The verifier's key from SEC 1 uncompressed bytes `04 || x || y`.
fn key_from_sec1(bytes: &[u8]) -> Option<P256Key> {
    let (&[0x04], coordinates) = bytes.split_at_checked(1)? else {
        return None;
    };
    let (x, y) = coordinates.split_first_chunk::<32>()?;
    P256Key::from_coordinates(x, y.try_into().ok()?)
}

fn fast_key(key: &VerifyingKey) -> P256Key {
    key_from_sec1(key.to_encoded_point(false).as_bytes()).expect("p256 keys are valid points")
}

#[test]
fn wycheproof_p1363_vectors() {
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).expect("vectors load");
    let (mut valid, mut invalid, mut acceptable) = (0, 0, 0);
    let mut failures = Vec::new();
    for group in &set.test_groups {
        let key = key_from_sec1(&group.key.key).expect("Wycheproof's keys are valid points");
        for test in &group.tests {
            let accepted = verify(&key, &test.msg, &test.sig);
            match test.result {
                TestResult::Valid => valid += 1,
                TestResult::Invalid => invalid += 1,
                TestResult::Acceptable => acceptable += 1,
            }
            let expected = match test.result {
                TestResult::Valid => true,
                TestResult::Invalid => false,
                TestResult::Acceptable => continue,
            };
            if accepted != expected {
                failures.push(format!(
                    "tc {} ({}, {:?}): accepted={accepted}",
                    test.tc_id, test.comment, test.flags
                ));
            }
        }
    }
    println!("Wycheproof P1363: {valid} valid, {invalid} invalid, {acceptable} acceptable");
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(valid + invalid + acceptable, set.number_of_tests);
    assert!(
        valid > 100 && invalid > 50,
        "{valid} valid, {invalid} invalid"
    );
}

/// xorshift64: reproducible inputs without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| (self.next() >> 24) as u8)
    }

    fn signing_key(&mut self) -> SigningKey {
        loop {
            if let Ok(key) = SigningKey::from_slice(&self.bytes::<32>()) {
                return key;
            }
        }
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Both verifiers on one case: they must agree, and the answer is returned.
fn agree(reference: &VerifyingKey, key: &P256Key, message: &[u8], signature: &[u8]) -> bool {
    let expected = Signature::from_slice(signature)
        .is_ok_and(|signature| reference.verify(message, &signature).is_ok());
    let got = verify(key, message, signature);
    assert_eq!(
        got,
        expected,
        "message {message:02x?}, signature {signature:02x?}, key {:02x?}",
        reference.to_encoded_point(false).as_bytes()
    );
    got
}

#[test]
fn agrees_with_p256_on_its_signatures_and_their_mutations() {
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    let mut previous = rng.signing_key();
    for round in 0..100 {
        let signing = rng.signing_key();
        let reference = *signing.verifying_key();
        let key = fast_key(&reference);
        let message: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        let signature: Signature = signing.sign(&message);
        let bytes = signature.to_bytes().to_vec();
        assert!(agree(&reference, &key, &message, &bytes), "round {round}");

        // JWS does not require low s: (r, n - s) verifies too, as with p256.
        let (r, s) = signature.split_scalars();
        let flipped = Signature::from_scalars(r, -*s).unwrap();
        assert!(
            agree(&reference, &key, &message, &flipped.to_bytes()),
            "round {round}"
        );

        let mut mutated = bytes.clone();
        let bit = rng.below(512);
        mutated[bit / 8] ^= 1 << (bit % 8);
        assert!(
            !agree(&reference, &key, &message, &mutated),
            "round {round}"
        );

        let mut other_message = message.clone();
        match other_message.len() {
            0 => other_message.push(0),
            len => other_message[rng.below(len)] ^= 1 << rng.below(8),
        }
        assert!(
            !agree(&reference, &key, &other_message, &bytes),
            "round {round}"
        );

        let other = *previous.verifying_key();
        assert!(
            !agree(&other, &fast_key(&other), &message, &bytes),
            "round {round}"
        );
        previous = signing;

        // A flipped key coordinate is (almost surely) off the curve: both refuse the key.
        let mut point = reference.to_encoded_point(false).as_bytes().to_vec();
        let bit = rng.below(512);
        point[1 + bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            key_from_sec1(&point).is_some(),
            VerifyingKey::from_sec1_bytes(&point).is_ok()
        );
    }
}

#[test]
fn out_of_range_and_malformed_signatures_are_refused() {
    let mut rng = Rng(0x0bad_5eed_0000_0001);
    let signing = rng.signing_key();
    let reference = *signing.verifying_key();
    let key = fast_key(&reference);
    let signature: Signature = signing.sign(b"message");
    let bytes = signature.to_bytes().to_vec();
    assert!(agree(&reference, &key, b"message", &bytes));
    let n = hex32("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let (r, s) = bytes.split_at(32);
    for (r, s) in [
        (&[0u8; 32][..], s),
        (r, &[0u8; 32][..]),
        (&n[..], s),
        (r, &n[..]),
        (&[0xff; 32][..], s),
        (r, &[0xff; 32][..]),
    ] {
        assert!(!agree(&reference, &key, b"message", &[r, s].concat()));
    }
    // Wrong lengths.
    assert!(!verify(&key, b"message", &bytes[..63]));
    assert!(!verify(
        &key,
        b"message",
        &[bytes.as_slice(), &[0]].concat()
    ));
    assert!(!verify(&key, b"message", &[]));
}

fn hex32(hex: &str) -> [u8; 32] {
    std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
}

/// Keys at the edges of the scalar range (d = 1, 2, 3, n-1, n-2: Q = ±G, ±2G, 3G, whose tables
/// meet G's) and random ones, with signatures whose digest is crafted as e = ±r·d: then
/// u1·G = ±u2·Q, so the sum goes through the doubling case (a valid signature) or cancels to
/// infinity (always refused). Field values that are zero in several representations (0, p, 2p
/// in the 29-bit Montgomery form) arise there; both verifiers must agree on every case.
#[test]
fn agrees_with_p256_on_edge_keys_and_crafted_digests() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::elliptic_curve::ops::Reduce;
    use p256::elliptic_curve::point::AffineCoordinates;
    use p256::{FieldBytes, ProjectivePoint, Scalar, U256};

    let reduce = |bytes: &[u8; 32]| -> Scalar {
        <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*bytes))
    };
    let mut rng = Rng(0x0ed9_e5ca_1a25_0001);
    let mut scalars: Vec<Scalar> = [1u64, 2, 3]
        .iter()
        .map(|&k| Scalar::from(k))
        .chain([-Scalar::ONE, -Scalar::from(2u64)])
        .collect();
    scalars.extend((0..10).map(|_| reduce(&rng.bytes())));
    for d in scalars {
        let signing = SigningKey::from_bytes(&d.to_bytes()).unwrap();
        let reference = *signing.verifying_key();
        let key = fast_key(&reference);
        let message: [u8; 32] = rng.bytes();
        let signature: Signature = signing.sign(&message);
        assert!(agree(&reference, &key, &message, &signature.to_bytes()));
        for _ in 0..4 {
            let k = reduce(&rng.bytes());
            let big_r: [u8; 32] = (ProjectivePoint::GENERATOR * k).to_affine().x().into();
            let r = reduce(&big_r);
            let rd = r * d;
            // e = r·d, s = 2rd/k: valid, through the doubling case. e = -r·d: cancels.
            let cases = [
                (rd, rd.double() * k.invert().unwrap(), true),
                (-rd, reduce(&rng.bytes()), false),
            ];
            for (e, s, valid) in cases {
                let digest: [u8; 32] = e.to_bytes().into();
                let bytes = [r.to_bytes(), s.to_bytes()].concat();
                let expected = Signature::from_slice(&bytes)
                    .is_ok_and(|sig| reference.verify_prehash(&digest, &sig).is_ok());
                assert_eq!(expected, valid);
                assert_eq!(key.verify_prehash(&digest, &bytes), expected, "d = {d:?}");
            }
        }
    }
}
