//! The ES256 verifier against `p256` on the same inputs. The key comes from a fuzzer-chosen
//! scalar d, the signature from a fuzzer-chosen nonce k (computed here with `p256`'s scalar
//! and point arithmetic), then one mutation:
//! - none, high/low s (n - s), r + n and r - n, s + n, a bit flip in r or s, zero r or s;
//! - the zero hash;
//! - a crafted digest e = ±r·d, so that u1·G = ±u2·Q: with s = 2rd/k the two halves are
//!   equal and sum to k·G (a valid signature through the doubling case), with e = -r·d they
//!   cancel to infinity (always invalid);
//! - an off-curve key (a bit flipped in y), which both sides must refuse.
//!
//! The accept/reject decision is compared with `p256`'s `verify_prehash`, and the verifier's
//! `u1·G + u2·Q` (its tables, w-NAF and formulas) with `ProjectivePoint` arithmetic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authn::core::ecdsa_p256::{P256Key, fuzzing};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::Field;
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{EncodedPoint, FieldBytes, ProjectivePoint, Scalar, U256};

/// n, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn reduce(bytes: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*bytes))
}

fn bytes(scalar: &Scalar) -> [u8; 32] {
    scalar.to_bytes().into()
}

/// `a ± n` on 256-bit big-endian integers; `None` when it leaves [0, 2^256).
fn add_n(a: &[u8; 32], subtract: bool) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0i16;
    for i in (0..32).rev() {
        let sum = if subtract {
            i16::from(a[i]) - i16::from(N[i]) + carry
        } else {
            i16::from(a[i]) + i16::from(N[i]) + carry
        };
        out[i] = sum.rem_euclid(256) as u8;
        carry = sum.div_euclid(256);
    }
    (carry == 0).then_some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&[mutation, position, value], rest)) =
        data.split_first_chunk::<3>().map(|(a, b)| (a, b))
    else {
        return;
    };
    let Some((d_bytes, rest)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let Some((k_bytes, rest)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let Some((e_bytes, rest)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let (d, k) = (reduce(d_bytes), reduce(k_bytes));
    if bool::from(d.is_zero()) || bool::from(k.is_zero()) {
        return;
    }
    let q = (ProjectivePoint::GENERATOR * d).to_affine();
    let mut point = q.to_encoded_point(false);
    let big_r: [u8; 32] = (ProjectivePoint::GENERATOR * k).to_affine().x().into();
    let r = reduce(&big_r);
    if bool::from(r.is_zero()) {
        return;
    }
    let mut digest = *e_bytes;
    let mut s = k.invert().unwrap() * (reduce(&digest) + r * d);
    let mut r_bytes = bytes(&r);
    match mutation % 13 {
        0 => {}
        1 => s = -s,
        2 => r_bytes = add_n(&r_bytes, false).unwrap_or(r_bytes),
        3 => r_bytes = add_n(&r_bytes, true).unwrap_or(r_bytes),
        4 => r_bytes[usize::from(position) % 32] ^= 1 << (value % 8),
        5 => s = Scalar::ZERO,
        6 => r_bytes = [0; 32],
        7 => {
            digest = [0; 32];
            s = k.invert().unwrap() * (r * d);
        }
        8 => {
            // u1·G = u2·Q: e = r·d, s = 2·r·d / k, and u1·G + u2·Q = k·G.
            digest = bytes(&(r * d));
            s = (r * d).double() * k.invert().unwrap();
        }
        9 => {
            // u1·G = -u2·Q: the sum is infinity.
            digest = bytes(&-(r * d));
        }
        10 => {
            // Off the curve: one bit of y flipped.
            let mut y: [u8; 32] = (*point.y().unwrap()).into();
            y[usize::from(position) % 32] ^= 1 << (value % 8);
            point = EncodedPoint::from_affine_coordinates(point.x().unwrap(), &y.into(), false);
        }
        11 => digest = *rest.first_chunk::<32>().unwrap_or(&digest),
        _ => {}
    }
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&r_bytes);
    signature[32..].copy_from_slice(&bytes(&s));
    if mutation % 13 == 12 {
        // s + n, when it still fits: the same value mod n, a different integer.
        let s_plus_n = add_n(&bytes(&s), false).unwrap_or(bytes(&s));
        signature[32..].copy_from_slice(&s_plus_n);
    }

    let x: [u8; 32] = (*point.x().unwrap()).into();
    let y: [u8; 32] = (*point.y().unwrap()).into();
    let ours = P256Key::from_coordinates(&x, &y);
    let reference = VerifyingKey::from_encoded_point(&point).ok();
    assert_eq!(
        ours.is_some(),
        reference.is_some(),
        "key acceptance differs"
    );
    let (Some(ours), Some(reference)) = (ours, reference) else {
        return;
    };

    let accepted = ours.verify_prehash(&digest, &signature);
    let expected = Signature::from_slice(&signature)
        .is_ok_and(|sig| reference.verify_prehash(&digest, &sig).is_ok());
    assert_eq!(accepted, expected, "mutation {}", mutation % 13);

    // The point arithmetic: u1·G + u2·Q for the fuzzer's scalars (e and k as u1 and u2).
    let sum = ProjectivePoint::GENERATOR * reduce(e_bytes)
        + ProjectivePoint::from(*reference.as_affine()) * k;
    let mine = fuzzing::lincomb(&ours, e_bytes, k_bytes);
    if bool::from(sum.is_identity()) {
        assert!(mine.is_none());
    } else {
        let sum = sum.to_affine().to_encoded_point(false);
        let expected: ([u8; 32], [u8; 32]) =
            ((*sum.x().unwrap()).into(), (*sum.y().unwrap()).into());
        assert_eq!(mine, Some(expected));
    }
});
