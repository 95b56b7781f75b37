//! GF(p) for P-256, shaped for V8. With 32-bit limbs a 32×32-bit product fills a 64-bit word,
//! so every product has to be split before it can be summed: about five wasm operations per
//! limb product, which is where the time went. Here an element is nine 29-bit limbs: a
//! product is below 2^58 and a column of nine sums in one `i64` (two operations per product),
//! and reduction is Montgomery's with `R = 2^261`, which for this `p` needs no
//! multiplication: `-p^-1 ≡ 1 (mod 2^29)`, and `m·p` is `m` shifted into four limbs.
//!
//! Invariant of every [`Fe`]: limbs below 2^29 and a value below `2^257 + 2^235` (so below
//! 3p), congruent to `x·R` for the element `x`. So equal elements may differ in limbs;
//! equality and zero tests compare residues. Bounds are argued at each operation, and checked with debug
//! assertions in tests and fuzzing.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::ops::{Add, Mul, Neg, Sub};

use super::{Limbs, P, invert_mod, less_than, limbs_from_be};

const BITS: u32 = 29;
const MASK: i64 = (1 << BITS) - 1;

/// Nine 29-bit limbs, little-endian: 261 bits.
type Limbs29 = [u32; 9];

/// `p` and `2p` in 29-bit limbs: a value below 3p is a multiple of p only if it is one of
/// these or 0.
const P29: Limbs29 = [
    0x1fff_ffff,
    0x1fff_ffff,
    0x1fff_ffff,
    0x0000_01ff,
    0,
    0,
    0x0004_0000,
    0x1fe0_0000,
    0x00ff_ffff,
];
const P29_2: Limbs29 = [
    0x1fff_fffe,
    0x1fff_ffff,
    0x1fff_ffff,
    0x0000_03ff,
    0,
    0,
    0x0008_0000,
    0x1fc0_0000,
    0x01ff_ffff,
];
/// `8p` with each of the low eight limbs at least 2^29 - 1 and the top one at least 2^26
/// (borrowing from the limb above), so `a + 8p - b` is nonnegative limb by limb.
const P29_8: [i64; 9] = [
    0x3fff_fff8,
    0x3fff_fffe,
    0x3fff_fffe,
    0x2000_0ffe,
    0x1fff_ffff,
    0x1fff_ffff,
    0x201f_ffff,
    0x3eff_ffff,
    0x07ff_fffe,
];
/// `R^2 mod p`: Montgomery multiplication by it takes an integer into Montgomery form.
const R2: Fe = Fe([
    0x0000_0c00,
    0,
    0x1fff_0000,
    0x1fdf_ffff,
    0x1fbf_ffff,
    0x1fff_ffff,
    0x1fff_ffff,
    0x1fff_fffe,
    0x0000_0013,
]);

/// An element of GF(p) in Montgomery form (see the module documentation for the invariant).
#[derive(Debug, Clone, Copy)]
pub(super) struct Fe(Limbs29);

impl Fe {
    pub(super) const ZERO: Self = Self([0; 9]);
    /// `R mod p`, one in Montgomery form.
    pub(super) const ONE: Self = Self([
        0x0000_0020,
        0,
        0,
        0x1fff_c000,
        0x1fff_ffff,
        0x1fff_ffff,
        0x1f7f_ffff,
        0x03ff_ffff,
        0,
    ]);

    /// An element already in Montgomery form (a constant), its limbs normalised and its
    /// value below p.
    pub(super) const fn montgomery_form(limbs: Limbs29) -> Self {
        Self(limbs)
    }

    /// `None` unless the big-endian integer is below p.
    pub(super) fn from_be_bytes(bytes: &[u8; 32]) -> Option<Self> {
        Self::from_limbs(&limbs_from_be(bytes))
    }

    /// The element of an integer below p (32-bit limbs), or `None` at or above p.
    pub(super) fn from_limbs(k: &Limbs) -> Option<Self> {
        less_than(k, &P).then(|| Self(to_radix29(k)) * R2)
    }

    /// The integer in `[0, p)` this element is, as 32-bit limbs.
    pub(super) fn to_limbs(self) -> Limbs {
        // One Montgomery reduction of the limbs alone: (V + m·p) / R is below p + 1, so it is
        // the residue, or p for zero.
        let out = montgomery(wide(&self.0));
        to_radix32(if out == P29 { [0; 9] } else { out })
    }

    /// Whether this is zero: a value below 3p is 0, p or 2p then.
    pub(super) fn is_zero(&self) -> bool {
        self.0 == [0; 9] || self.0 == P29 || self.0 == P29_2
    }

    pub(super) fn square(self) -> Self {
        let a = &self.0;
        Self(montgomery([
            square_column::<0>(a),
            square_column::<1>(a),
            square_column::<2>(a),
            square_column::<3>(a),
            square_column::<4>(a),
            square_column::<5>(a),
            square_column::<6>(a),
            square_column::<7>(a),
            square_column::<8>(a),
            square_column::<9>(a),
            square_column::<10>(a),
            square_column::<11>(a),
            square_column::<12>(a),
            square_column::<13>(a),
            square_column::<14>(a),
            square_column::<15>(a),
            square_column::<16>(a),
            0,
        ]))
    }

    /// `k·self` for a small `k` (up to 8), in one pass.
    pub(super) fn times(self, k: u32) -> Self {
        debug_assert!(k <= 8);
        Self(weak_reduce(
            self.0.map(|limb| i64::from(limb) * i64::from(k)),
        ))
    }

    pub(super) fn double(self) -> Self {
        self + self
    }

    /// `None` for zero. By the binary extended Euclidean algorithm on the integer (variable
    /// time, several times cheaper than Fermat's `a^(p-2)`); only table building inverts.
    pub(super) fn invert(self) -> Option<Self> {
        let inverse = invert_mod(&self.to_limbs(), &P, [1, 0, 0, 0, 0, 0, 0, 0])?;
        Self::from_limbs(&inverse)
    }
}

impl PartialEq for Fe {
    fn eq(&self, other: &Self) -> bool {
        (*self - *other).is_zero()
    }
}

impl Eq for Fe {}

impl Add for Fe {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(weak_reduce(std::array::from_fn(|i| {
            i64::from(self.0[i]) + i64::from(rhs.0[i])
        })))
    }
}

impl Sub for Fe {
    type Output = Self;
    /// `a + 8p - b`: every limb stays nonnegative (see `P29_8`).
    fn sub(self, rhs: Self) -> Self {
        Self(weak_reduce(std::array::from_fn(|i| {
            i64::from(self.0[i]) + P29_8[i] - i64::from(rhs.0[i])
        })))
    }
}

impl Neg for Fe {
    type Output = Self;
    fn neg(self) -> Self {
        Self::ZERO - self
    }
}

impl Mul for Fe {
    type Output = Self;
    fn mul(self, rhs: Self) -> Self {
        let (a, b) = (&self.0, &rhs.0);
        Self(montgomery([
            column::<0>(a, b),
            column::<1>(a, b),
            column::<2>(a, b),
            column::<3>(a, b),
            column::<4>(a, b),
            column::<5>(a, b),
            column::<6>(a, b),
            column::<7>(a, b),
            column::<8>(a, b),
            column::<9>(a, b),
            column::<10>(a, b),
            column::<11>(a, b),
            column::<12>(a, b),
            column::<13>(a, b),
            column::<14>(a, b),
            column::<15>(a, b),
            column::<16>(a, b),
            0,
        ]))
    }
}

/// Column `K` of `a·b`: `Σ a_i·b_j` over `i + j = K`, at most nine products below 2^58, so
/// below 2^61.2. `K` is a constant, so the loop unrolls into straight code.
#[inline(always)]
fn column<const K: usize>(a: &Limbs29, b: &Limbs29) -> i64 {
    let mut sum = 0u64;
    for i in K.saturating_sub(8)..K.min(8) + 1 {
        sum += u64::from(a[i]) * u64::from(b[K - i]);
    }
    sum as i64
}

/// Column `K` of `a^2`, each cross product computed once and doubled (same bound).
#[inline(always)]
fn square_column<const K: usize>(a: &Limbs29) -> i64 {
    let mut sum = 0u64;
    for i in K.saturating_sub(8)..K.div_ceil(2) {
        sum += u64::from(a[i]) * u64::from(a[K - i]);
    }
    sum *= 2;
    if K.is_multiple_of(2) {
        sum += u64::from(a[K / 2]) * u64::from(a[K / 2]);
    }
    sum as i64
}

/// The limbs of `a` as the low columns of a product, for a reduction alone.
fn wide(a: &Limbs29) -> [i64; 18] {
    let mut t = [0i64; 18];
    for (t, &limb) in t.iter_mut().zip(a) {
        *t = i64::from(limb);
    }
    t
}

/// Montgomery reduction: `T·R^-1 mod p` for the 17 columns of `T` (the 18th is room for the
/// carry). For inputs below 2^258, `T < 2^516` and the result `(T + m·p)/R` is below
/// `2^255 + p < 2^257`; for `T` below `R` (a reduction alone), below `p + 1`.
///
/// Step `i` picks `m_i = t_i mod 2^29` (as `p ≡ -1 mod 2^29`) and adds
/// `m_i·p·2^(29 i) = m_i·2^(29 i)·(2^256 - 2^224 + 2^192 + 2^96 - 1)`: the `-m_i` clears
/// `t_i`'s low bits (its high bits carry into `t_(i+1)`), and the other four terms are shifts
/// into `t_(i+3)`, `t_(i+6)`, `t_(i+7)` and `t_(i+8)` (256 = 8·29 + 24, 224 = 7·29 + 21,
/// 192 = 6·29 + 18, 96 = 3·29 + 9). Every column stays within ±2^62, so `i64` and its
/// arithmetic shifts (floor division, exact with the mask) hold it.
#[inline(always)]
fn montgomery(mut t: [i64; 18]) -> Limbs29 {
    step::<0>(&mut t);
    step::<1>(&mut t);
    step::<2>(&mut t);
    step::<3>(&mut t);
    step::<4>(&mut t);
    step::<5>(&mut t);
    step::<6>(&mut t);
    step::<7>(&mut t);
    step::<8>(&mut t);
    let mut out = [0u32; 9];
    let mut carry = 0i64;
    for (o, &word) in out.iter_mut().zip(&t[9..]) {
        let sum = word + carry;
        *o = (sum & MASK) as u32;
        carry = sum >> BITS;
    }
    debug_assert_eq!(carry, 0, "the result is below 2^257");
    out
}

#[inline(always)]
fn step<const I: usize>(t: &mut [i64; 18]) {
    let m = t[I] & MASK;
    t[I + 1] += t[I] >> BITS;
    t[I + 3] += m << 9;
    t[I + 6] += m << 18;
    t[I + 7] -= m << 21;
    t[I + 8] += m << 24;
}

/// Limbs that may exceed 29 bits (each nonnegative and below 2^34) back to the invariant. The
/// bits of the top limb from 2^257 up, `q`, are folded down as
/// `q·2^257 ≡ q·(2^225 - 2^193 - 2^97 + 2) (mod p)` (that is, `2p` is subtracted `q` times;
/// 225 = 7·29 + 22, 193 = 6·29 + 19, 97 = 3·29 + 10). What is left is below
/// `2^257 + 2^235 < 2^258`, and nonnegative since the low limbs were; one carry pass
/// normalises the limbs. (With the low limbs below 2^32, the rest is below
/// `2^257 - 2^232 + 2^235`, and the fold adds less than `q·2^225 < 2^229`.)
#[inline(always)]
fn weak_reduce(mut s: [i64; 9]) -> Limbs29 {
    let q = s[8] >> 25;
    s[8] &= (1 << 25) - 1;
    s[7] += q << 22;
    s[6] -= q << 19;
    s[3] -= q << 10;
    s[0] += 2 * q;
    let mut out = [0u32; 9];
    let mut carry = 0i64;
    for (o, word) in out.iter_mut().zip(s) {
        let sum = word + carry;
        *o = (sum & MASK) as u32;
        carry = sum >> BITS;
    }
    debug_assert_eq!(carry, 0, "nonnegative and below 2^261");
    out
}

/// 32-bit limbs to 29-bit ones (same integer).
fn to_radix29(k: &Limbs) -> Limbs29 {
    let mut out = [0u32; 9];
    let (mut acc, mut bits) = (0u64, 0u32);
    let mut words = k.iter();
    for o in &mut out {
        if bits < BITS {
            acc |= u64::from(words.next().copied().unwrap_or(0)) << bits;
            bits += 32;
        }
        *o = (acc & MASK as u64) as u32;
        acc >>= BITS;
        bits -= BITS;
    }
    out
}

/// 29-bit limbs of an integer below 2^256 to 32-bit ones.
fn to_radix32(k: Limbs29) -> Limbs {
    let mut out = [0u32; 8];
    let (mut acc, mut bits) = (0u64, 0u32);
    let mut limbs = k.iter();
    for o in &mut out {
        while bits < 32 {
            acc |= u64::from(limbs.next().copied().unwrap_or(0)) << bits;
            bits += BITS;
        }
        *o = acc as u32;
        acc >>= 32;
        bits -= 32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::BigUint;

    fn p() -> BigUint {
        BigUint::from_slice(&P)
    }

    /// The value of the limbs, after checking the invariant: limbs below 2^29, value below
    /// `2^257 + 2^235`.
    fn value(a: &Fe) -> BigUint {
        assert!(a.0.iter().all(|&limb| limb < 1 << 29), "{a:x?}");
        let v = a.0.iter().rev().fold(BigUint::from(0u8), |acc, &limb| {
            (acc << 29usize) + BigUint::from(limb)
        });
        let bound = (BigUint::from(1u8) << 257usize) + (BigUint::from(1u8) << 235usize);
        assert!(v < bound, "{a:x?}");
        v
    }

    fn r_inverse() -> BigUint {
        let p = p();
        (BigUint::from(1u8) << 261usize).modpow(&(&p - 2u8), &p)
    }

    /// xorshift64: reproducible inputs without a rand dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 16) as u32
        }

        /// Any limbs the invariant allows: each below 2^29, the top one below 2^25 + 8.
        fn fe(&mut self) -> Fe {
            let mut limbs: Limbs29 = std::array::from_fn(|_| self.next() & MASK as u32);
            limbs[8] &= (1 << 25) + 7;
            Fe(limbs)
        }
    }

    /// Edge representations: zero as 0, p and 2p, the largest value the invariant allows,
    /// all-ones limbs under it, and one.
    fn edges() -> Vec<Fe> {
        let max = Fe([
            MASK as u32,
            MASK as u32,
            MASK as u32,
            MASK as u32,
            MASK as u32,
            MASK as u32,
            MASK as u32,
            MASK as u32,
            (1 << 25) + 7,
        ]);
        let top = Fe([0, 0, 0, 0, 0, 0, 0, 0, (1 << 25) + 7]);
        let mut below = [MASK as u32; 9];
        below[8] = (1 << 25) - 1;
        vec![
            Fe::ZERO,
            Fe(P29),
            Fe(P29_2),
            max,
            top,
            Fe(below),
            Fe::ONE,
            R2,
        ]
    }

    fn samples() -> Vec<Fe> {
        let mut rng = Rng(0x5eed_2901);
        let mut out = edges();
        out.extend((0..300).map(|_| rng.fe()));
        out
    }

    #[test]
    fn constants_are_what_they_claim() {
        let p = p();
        let r = (BigUint::from(1u8) << 261usize) % &p;
        assert_eq!(value(&Fe::ONE), r);
        assert_eq!(value(&R2), &r * &r % &p);
        assert_eq!(value(&Fe(P29)), p);
        assert_eq!(value(&Fe(P29_2)), &p * 2u8);
        let eight_p = P29_8.iter().rev().fold(BigUint::from(0u8), |acc, &limb| {
            (acc << 29usize) + BigUint::from(limb as u64)
        });
        assert_eq!(eight_p, &p * 8u8);
        assert!(P29_8[..8].iter().all(|&limb| limb >= MASK) && P29_8[8] >= 1 << 26);
    }

    #[test]
    fn operations_keep_the_invariant_and_the_residue() {
        let p = p();
        let r_inv = r_inverse();
        let samples = samples();
        for (i, a) in samples.iter().enumerate() {
            let va = value(a);
            for b in samples.iter().skip(i % 7).step_by(23).chain(&edges()) {
                let vb = value(b);
                assert_eq!(
                    value(&(*a * *b)) % &p,
                    &va * &vb * &r_inv % &p,
                    "{a:x?} * {b:x?}"
                );
                assert_eq!(value(&(*a + *b)) % &p, (&va + &vb) % &p, "{a:x?} + {b:x?}");
                assert_eq!(
                    value(&(*a - *b)) % &p,
                    (&va + &p * 4u8 - &vb) % &p,
                    "{a:x?} - {b:x?}"
                );
                assert_eq!(*a == *b, &va % &p == &vb % &p);
            }
            assert_eq!(value(&a.square()) % &p, &va * &va * &r_inv % &p, "{a:x?}^2");
            assert_eq!(value(&-*a) % &p, (&p * 4u8 - &va) % &p);
            for k in 0..=8u32 {
                assert_eq!(value(&a.times(k)) % &p, &va * k % &p, "{k} * {a:x?}");
            }
            assert_eq!(a.is_zero(), (&va % &p) == BigUint::from(0u8), "{a:x?}");
            // to_limbs is the element x with V = x·R: canonical, below p.
            let x = BigUint::from_slice(&a.to_limbs());
            assert!(x < p);
            assert_eq!(x, &va * &r_inv % &p, "{a:x?}");
            match a.invert() {
                Some(inverse) => assert_eq!(*a * inverse, Fe::ONE),
                None => assert!(a.is_zero()),
            }
        }
    }

    #[test]
    fn conversions_round_trip() {
        let mut rng = Rng(0x5eed_2902);
        for _ in 0..200 {
            let k: Limbs = std::array::from_fn(|_| rng.next() ^ (rng.next() << 16));
            assert_eq!(to_radix32(to_radix29(&k)), k);
            match Fe::from_limbs(&k) {
                Some(fe) => assert_eq!(fe.to_limbs(), k),
                None => assert!(!less_than(&k, &P)),
            }
        }
        assert!(Fe::from_limbs(&P).is_none());
        assert_eq!(Fe::from_limbs(&[0; 8]).map(|fe| fe.is_zero()), Some(true));
    }
}
