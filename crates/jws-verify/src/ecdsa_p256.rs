//! ES256 (ECDSA over P-256 with SHA-256) verification built for wasm32. A verifier only sees
//! public data (key, message, signature), so it may run in variable time; the constant-time
//! generic arithmetic of `p256` (64-bit limbs, whose 128-bit products wasm lacks) costs
//! ~1.6 ms per verify in V8. Here field elements are nine 29-bit limbs in Montgomery form
//! (`field`: a column of limb products sums in one i64, and reducing needs no
//! multiplication); scalars mod n are 8 x 32-bit limbs (only `s^-1` and two products per
//! verification). `u1·G + u2·Q` is an
//! interleaved w-NAF over affine tables of odd multiples, with each scalar cut into eight
//! 32-bit pieces so that the doubling chain is 32 long: G's tables are built once per
//! process, Q's by the key's first verification. Plugged into jwt-compact as an
//! `Algorithm`, like `rsa_pkcs1`, so the verification flow stays the same.
//!
//! Indexing and arithmetic here are on fixed-size limb arrays; the bounds are argued where
//! they matter, and the module is checked against `p256` and the Wycheproof vectors in tests.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::borrow::Cow;
use std::cmp::Ordering;
use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::ops::Neg;
use std::sync::OnceLock;

use jwt_compact::{Algorithm, AlgorithmSignature};

mod field;
use field::Fe;
use sha2::{Digest, Sha256};

/// A 256-bit integer as little-endian 32-bit limbs.
type Limbs = [u32; 8];

/// The field prime `p = 2^256 - 2^224 + 2^192 + 2^96 - 1`.
const P: Limbs = [
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0,
    0,
    1,
    0xffff_ffff,
];
/// The group order `n` (the curve has cofactor 1).
const N: Limbs = [
    0xfc63_2551,
    0xf3b9_cac2,
    0xa717_9e84,
    0xbce6_faad,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0xffff_ffff,
];
/// `2^256 mod n = 2^256 - n`: scales an inverse mod n into Montgomery form.
const R_MOD_N: Limbs = [
    0x039c_daaf,
    0x0c46_353d,
    0x58e8_617b,
    0x4319_0552,
    0,
    0,
    0xffff_ffff,
    0,
];
/// `-n^-1 mod 2^32`, for Montgomery reduction mod n (Newton's iteration doubles the bits).
const N0_INV: u32 = {
    let mut inv: u32 = 1;
    let mut i = 0;
    while i < 5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(N[0].wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg()
};
/// The curve is `y^2 = x^3 - 3x + b`; `b` in Montgomery form.
const B: Fe = Fe::montgomery_form([
    0x1897_bbfb,
    0x1cdf_6229,
    0x0184_86c4,
    0x0173_2821,
    0x1dad_59e0,
    0x0abf_7212,
    0x1a06_d110,
    0x1772_1d20,
    0x0086_00c3,
]);
/// The base point, in Montgomery form.
const G: Affine = Affine {
    x: Fe::montgomery_form([
        0x1522_8783,
        0x0730_d418,
        0x0db0_0bcf,
        0x057f_11fb,
        0x0a20_eb75,
        0x12b7_7622,
        0x0330_fdb9,
        0x1af4_dd57,
        0x0012_0bee,
    ]),
    y: Fe::montgomery_form([
        0x12aa_c150,
        0x1253_57ce,
        0x0f22_e6ef,
        0x0e39_0e86,
        0x064b_1695,
        0x088d_d21f,
        0x02a9_7443,
        0x0296_2176,
        0x00ae_3fe3,
    ]),
};

/// Each scalar is cut into `SPLIT` pieces of `PIECE_BITS` bits, as in
/// `u·P = Σ u_j·(2^(PIECE_BITS·j) P)`, with a table per piece: the shared doubling chain is
/// `PIECE_BITS` long instead of 256, for the price of precomputing the shifted points (once
/// for G, at a key's first verification for Q).
const SPLIT: usize = 8;
const PIECE_BITS: usize = 256 / SPLIT;
/// A w-NAF of a piece can carry into one more digit.
const NAF_LEN: usize = PIECE_BITS + 1;
/// w-NAF width for the pieces of `u1`: tables of 2^(w-2) = 64 multiples of G, built once per
/// process, for about 32 additions.
const G_WINDOW: u32 = 8;
const G_TABLE_LEN: usize = 1 << (G_WINDOW - 2);
/// w-NAF width for the pieces of `u2`: tables of 32 multiples per key (18 KiB), about 34
/// additions. Width 5 (4.5 KiB) took about 44, width 6 (9 KiB) about 38: in V8, u1·G + u2·Q
/// took 50.2, 48.4 and 46.5 µs with widths 5, 6 and 7, and a key's tables 0.13, 0.17 and
/// 0.25 ms. With 32 doublings, a verification costs about 900 field multiplications.
const Q_WINDOW: u32 = 7;
const Q_TABLE_LEN: usize = 1 << (Q_WINDOW - 2);

/// Big-endian bytes to limbs.
fn limbs_from_be(bytes: &[u8; 32]) -> Limbs {
    let mut out = [0u32; 8];
    for (limb, chunk) in out.iter_mut().zip(bytes.as_chunks::<4>().0.iter().rev()) {
        *limb = u32::from_be_bytes(*chunk);
    }
    out
}

/// `a + b` and whether it carried out of 256 bits.
fn add_limbs(a: &Limbs, b: &Limbs) -> (Limbs, bool) {
    let mut out = [0u32; 8];
    let mut carry = 0u64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let sum = u64::from(*x) + u64::from(*y) + carry;
        *o = sum as u32;
        carry = sum >> 32;
    }
    (out, carry != 0)
}

/// `a - b` and whether it borrowed.
fn sub_limbs(a: &Limbs, b: &Limbs) -> (Limbs, bool) {
    let mut out = [0u32; 8];
    let mut borrow = 0i64;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let diff = i64::from(*x) - i64::from(*y) + borrow;
        *o = diff as u32;
        borrow = diff >> 32;
    }
    (out, borrow != 0)
}

fn less_than(a: &Limbs, b: &Limbs) -> bool {
    a.iter().rev().cmp(b.iter().rev()) == Ordering::Less
}

fn is_zero(a: &Limbs) -> bool {
    a.iter().all(|&limb| limb == 0)
}

/// `(a - b) mod m` for `a, b < m`.
fn sub_mod(a: &Limbs, b: &Limbs, m: &Limbs) -> Limbs {
    let (diff, borrow) = sub_limbs(a, b);
    if borrow { add_limbs(&diff, m).0 } else { diff }
}

/// `a / 2 mod m` for odd `m` and `a < m`: `a` or `a + m`, whichever is even, halved.
fn half_mod(a: &Limbs, m: &Limbs) -> Limbs {
    let (even, carry) = if a[0] & 1 == 0 {
        (*a, false)
    } else {
        add_limbs(a, m)
    };
    shift_right_one(&even, carry)
}

/// `a >> 1`, with `top` shifted into the high bit.
fn shift_right_one(a: &Limbs, top: bool) -> Limbs {
    let mut out = [0u32; 8];
    for i in 0..8 {
        let high = if i == 7 { u32::from(top) } else { a[i + 1] };
        out[i] = (a[i] >> 1) | (high << 31);
    }
    out
}

/// `one / a mod m` for a prime `m` and `0 < a < m`, by the binary extended Euclidean
/// algorithm: variable time, and several times cheaper than Fermat's `a^(m-2)`. `one` scales
/// the result (1, or `R mod n` for an inverse in Montgomery form). `None` for `a = 0` or `a ≥ m`.
///
/// Invariants: `x1·a ≡ one·u` and `x2·a ≡ one·v (mod m)`, and `gcd(u, v) = 1`, so neither
/// `u` nor `v` reaches 0 (they are equal only when both are 1) and the loops end. Should an
/// input break the preconditions (a composite `m` sharing a factor with `a`), `u` or `v`
/// reaches 0 and the answer is `None`, never an endless halving of zero.
fn invert_mod(a: &Limbs, m: &Limbs, one: Limbs) -> Option<Limbs> {
    debug_assert!(m[0] & 1 == 1, "half_mod needs an odd modulus");
    if is_zero(a) || !less_than(a, m) {
        return None;
    }
    const ONE: Limbs = [1, 0, 0, 0, 0, 0, 0, 0];
    let (mut u, mut v) = (*a, *m);
    let (mut x1, mut x2) = (one, [0u32; 8]);
    while u != ONE && v != ONE {
        if is_zero(&u) || is_zero(&v) {
            return None;
        }
        while u[0] & 1 == 0 {
            u = shift_right_one(&u, false);
            x1 = half_mod(&x1, m);
        }
        while v[0] & 1 == 0 {
            v = shift_right_one(&v, false);
            x2 = half_mod(&x2, m);
        }
        if less_than(&u, &v) {
            v = sub_limbs(&v, &u).0;
            x2 = sub_mod(&x2, &x1, m);
        } else {
            u = sub_limbs(&u, &v).0;
            x1 = sub_mod(&x1, &x2, m);
        }
    }
    Some(if u == ONE { x1 } else { x2 })
}

/// A point other than infinity, in affine coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Affine {
    x: Fe,
    y: Fe,
}

impl Affine {
    fn is_on_curve(&self) -> bool {
        self.y.square() == (self.x.square() - Fe::ONE.times(3)) * self.x + B
    }
}

impl Neg for Affine {
    type Output = Self;
    fn neg(self) -> Self {
        Self {
            x: self.x,
            y: -self.y,
        }
    }
}

/// A point in Jacobian coordinates: `(X/Z^2, Y/Z^3)`, infinity when `Z = 0`.
#[derive(Debug, Clone, Copy)]
struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl From<Affine> for Jacobian {
    fn from(p: Affine) -> Self {
        Self {
            x: p.x,
            y: p.y,
            z: Fe::ONE,
        }
    }
}

impl Jacobian {
    const INFINITY: Self = Self {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    fn is_infinity(&self) -> bool {
        self.z.is_zero()
    }

    /// `2P` with the `a = -3` shortcut (dbl-2001-b: 3M + 5S). No point of P-256 has `y = 0`.
    fn double(&self) -> Self {
        if self.is_infinity() {
            return *self;
        }
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x * gamma;
        let t = (self.x - delta) * (self.x + delta);
        let alpha = t.times(3);
        let beta4 = beta.times(4);
        let x = alpha.square() - beta4.double();
        let z = (self.y + self.z).square() - gamma - delta;
        let y = alpha * (beta4 - x) - gamma.square().times(8);
        Self { x, y, z }
    }

    /// `P + Q` for an affine `Q` (madd-2004-hmv: 8M + 3S), including `P = Q` and `P = -Q`,
    /// which crafted signatures can reach.
    fn add_affine(&self, q: &Affine) -> Self {
        if self.is_infinity() {
            return Self::from(*q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x * z1z1;
        let s2 = q.y * self.z * z1z1;
        let h = u2 - self.x;
        let r = s2 - self.y;
        if h.is_zero() {
            return if r.is_zero() {
                Self::from(*q).double()
            } else {
                Self::INFINITY
            };
        }
        let hh = h.square();
        let hhh = h * hh;
        let v = self.x * hh;
        let x = r.square() - hhh - v.double();
        let y = r * (v - x) - self.y * hhh;
        let z = self.z * h;
        Self { x, y, z }
    }

    /// Adds `digit·T` for an odd w-NAF digit, with `table = [T, 3T, 5T, ...]`. A w-NAF digit
    /// is within the table's reach; `None` otherwise, rather than a panic.
    fn add_digit(&self, digit: i8, table: &[Affine]) -> Option<Self> {
        if digit == 0 {
            return Some(*self);
        }
        let point = table.get(usize::from(digit.unsigned_abs() / 2))?;
        Some(if digit > 0 {
            self.add_affine(point)
        } else {
            self.add_affine(&-*point)
        })
    }

    /// Whether this point's affine x, reduced mod n, is `r` (with `0 < r < n`), without a
    /// field inversion: `x = X/Z^2` is below `p < 2n`, so it is `r` or `r + n`, and the
    /// latter only when `r + n < p`.
    fn x_mod_n_is(&self, r: &Limbs) -> bool {
        if self.is_infinity() {
            return false;
        }
        let zz = self.z.square();
        // r < n < p, so it is a field element as is.
        if Fe::from_limbs(r).is_some_and(|r| r * zz == self.x) {
            return true;
        }
        let (r_plus_n, carry) = add_limbs(r, &N);
        !carry && Fe::from_limbs(&r_plus_n).is_some_and(|r_plus_n| r_plus_n * zz == self.x)
    }
}

/// Writes the affine form of `points` into `out` with one inversion (Montgomery's trick);
/// `None` if any is infinity.
fn batch_to_affine(points: &[Jacobian], out: &mut [Affine]) -> Option<()> {
    // On the way up, out[i].x holds z_0 · ... · z_(i-1) (scratch space, overwritten below).
    let mut product = Fe::ONE;
    for (o, point) in out.iter_mut().zip(points) {
        o.x = product;
        product = product * point.z;
    }
    // On the way down, `inverse` is 1 / (z_0 · ... · z_i).
    let mut inverse = product.invert()?;
    for (o, point) in out.iter_mut().zip(points).rev() {
        let z_inv = inverse * o.x;
        inverse = inverse * point.z;
        let zz_inv = z_inv.square();
        *o = Affine {
            x: point.x * zz_inv,
            y: point.y * zz_inv * z_inv,
        };
    }
    Some(())
}

/// For `P_j = 2^(PIECE_BITS j) P`, one per piece, the odd multiples `[P_j, 3P_j, ...,
/// (2K-1)P_j]` a w-NAF of width `w` needs for `K = 2^(w-2)`. Two inversions in all.
fn piece_tables<const K: usize>(p: &Affine) -> Option<[[Affine; K]; SPLIT]> {
    // The P_j and their doubles (the step between odd multiples), as one batch.
    let mut steps = [[Jacobian::INFINITY; 2]; SPLIT];
    let mut current = Jacobian::from(*p);
    for (j, pair) in steps.iter_mut().enumerate() {
        if j > 0 {
            for _ in 0..PIECE_BITS {
                current = current.double();
            }
        }
        *pair = [current, current.double()];
    }
    // G is a placeholder in the outputs: every slot is written.
    let mut affine_steps = [[G; 2]; SPLIT];
    batch_to_affine(steps.as_flattened(), affine_steps.as_flattened_mut())?;
    let mut multiples = affine_steps.map(|[base, _]| [Jacobian::from(base); K]);
    for (row, [base, twice]) in multiples.iter_mut().zip(&affine_steps) {
        let mut odd = Jacobian::from(*base);
        for slot in row.iter_mut().skip(1) {
            odd = odd.add_affine(twice);
            *slot = odd;
        }
    }
    let mut tables = [[G; K]; SPLIT];
    batch_to_affine(multiples.as_flattened(), tables.as_flattened_mut())?;
    Some(tables)
}

/// The tables of G (36 KiB: 512 points of 72 bytes), built once per worker by the first key
/// load.
fn g_tables() -> Option<&'static [[Affine; G_TABLE_LEN]; SPLIT]> {
    static TABLES: OnceLock<Option<[[Affine; G_TABLE_LEN]; SPLIT]>> = OnceLock::new();
    TABLES
        .get_or_init(|| {
            let tables = piece_tables(&G);
            if tables.is_none() {
                log::error!(
                    "mcp_authn: ES256 tables of G could not be built; ES256 keys are refused"
                );
            }
            tables
        })
        .as_ref()
}

/// Bits `PIECE_BITS·index ..` of `k`, `PIECE_BITS` of them (a whole number of limbs).
fn piece(k: &Limbs, index: usize) -> Limbs {
    const LIMBS: usize = PIECE_BITS / 32;
    let mut out = [0u32; 8];
    for (o, limb) in out.iter_mut().zip(k.iter().skip(index * LIMBS).take(LIMBS)) {
        *o = *limb;
    }
    out
}

/// Bit `pos` and up of `k`, `count` ≤ 8 of them (bits past 255 are 0).
fn bits(k: &Limbs, pos: usize, count: u32) -> u32 {
    let limb = |i: usize| k.get(i).copied().unwrap_or(0);
    let (index, shift) = (pos / 32, (pos % 32) as u32);
    let mut value = limb(index) >> shift;
    if shift + count > 32 {
        // shift > 24 here, so the shift amount is in 1..8.
        value |= limb(index + 1) << (32 - shift);
    }
    value & ((1 << count) - 1)
}

/// The width-`w` NAF of a piece `k < 2^PIECE_BITS`, least significant digit first: every
/// nonzero digit is odd and below `2^(w-1)` in absolute value, and `k = Σ digit_i · 2^i`.
///
/// A window that reaches bit `PIECE_BITS` (always 0) cannot carry out, as its sum is odd and
/// so never exactly `2^(w-1)`; windows cut short at the end are too narrow to carry: the
/// final carry is 0 and `NAF_LEN` digits hold the whole piece.
fn wnaf(k: &Limbs, w: u32) -> [i8; NAF_LEN] {
    let mut digits = [0i8; NAF_LEN];
    let mut carry = 0u32;
    let mut bit = 0usize;
    while bit < NAF_LEN {
        if bits(k, bit, 1) == carry {
            bit += 1;
            continue;
        }
        let width = w.min((NAF_LEN - bit) as u32);
        let word = bits(k, bit, width) + carry;
        carry = (word >> (w - 1)) & 1;
        digits[bit] = (word as i32 - ((carry as i32) << w)) as i8;
        bit += width as usize;
    }
    digits
}

/// `u1·G + u2·Q` for `Q` given by its tables: one shared chain of doublings, adding table
/// points where any piece's w-NAF has a digit.
fn mul_add(u1: &Limbs, u2: &Limbs, q: &[[Affine; Q_TABLE_LEN]; SPLIT]) -> Option<Jacobian> {
    let g = g_tables()?;
    let d1: [_; SPLIT] = std::array::from_fn(|j| wnaf(&piece(u1, j), G_WINDOW));
    let d2: [_; SPLIT] = std::array::from_fn(|j| wnaf(&piece(u2, j), Q_WINDOW));
    let mut acc = Jacobian::INFINITY;
    for i in (0..NAF_LEN).rev() {
        acc = acc.double();
        for j in 0..SPLIT {
            acc = acc.add_digit(d1[j][i], &g[j])?.add_digit(d2[j][i], &q[j])?;
        }
    }
    Some(acc)
}

/// Montgomery product `a·b·2^-256 mod n` (CIOS); inputs below n give an output below n.
fn mont_mul_n(a: &Limbs, b: &Limbs) -> Limbs {
    debug_assert!(
        less_than(a, &N) && less_than(b, &N),
        "Montgomery inputs below n"
    );
    // t has two limbs above the eight: t < 2n at every step.
    let mut t = [0u32; 8];
    let mut t8 = 0u32;
    for &ai in a {
        let mut carry = 0u64;
        for (tj, &bj) in t.iter_mut().zip(b) {
            let sum = u64::from(*tj) + u64::from(ai) * u64::from(bj) + carry;
            *tj = sum as u32;
            carry = sum >> 32;
        }
        let sum = u64::from(t8) + carry;
        t8 = sum as u32;
        let t9 = (sum >> 32) as u32;
        // t = (t + m n) / 2^32, with m chosen so the low limb cancels.
        let m = t[0].wrapping_mul(N0_INV);
        let mut carry = (u64::from(t[0]) + u64::from(m) * u64::from(N[0])) >> 32;
        for j in 1..8 {
            let sum = u64::from(t[j]) + u64::from(m) * u64::from(N[j]) + carry;
            t[j - 1] = sum as u32;
            carry = sum >> 32;
        }
        let sum = u64::from(t8) + carry;
        t[7] = sum as u32;
        t8 = t9 + (sum >> 32) as u32;
    }
    if t8 != 0 || !less_than(&t, &N) {
        sub_limbs(&t, &N).0
    } else {
        t
    }
}

/// A signature half as an integer, if in `[1, n-1]` as ECDSA requires.
fn signature_scalar(bytes: &[u8; 32]) -> Option<Limbs> {
    let k = limbs_from_be(bytes);
    (!is_zero(&k) && less_than(&k, &N)).then_some(k)
}

/// The digest as an integer mod n: for a 256-bit hash, bits2int keeps every bit, and the
/// integer is below 2^256 < 2n.
fn digest_scalar(digest: &[u8; 32]) -> Limbs {
    let e = limbs_from_be(digest);
    if less_than(&e, &N) {
        e
    } else {
        sub_limbs(&e, &N).0
    }
}

/// A P-256 public key `Q` as the verifier uses it: the point, checked at load, and the odd
/// multiples `P, 3P, ..., 63P` of `P = 2^(32 j) Q` for `j < 8` in affine form (18 KiB, boxed
/// to keep the key small to move). The multiples are built by the first verification with the
/// key (about 0.25 ms in V8), so a JWKS of many keys parses quickly and only signing keys pay.
#[derive(Debug, Clone)]
pub struct P256Key {
    point: Affine,
    tables: OnceLock<Option<Box<[[Affine; Q_TABLE_LEN]; SPLIT]>>>,
}

impl P256Key {
    /// `None` unless the big-endian affine coordinates are below p and on the curve (so the
    /// point is not infinity and, with cofactor 1, has order n).
    pub fn from_coordinates(x: &[u8; 32], y: &[u8; 32]) -> Option<Self> {
        let q = Affine {
            x: Fe::from_be_bytes(x)?,
            y: Fe::from_be_bytes(y)?,
        };
        if !q.is_on_curve() {
            return None;
        }
        // Builds G's tables now, if no key has yet, so that verification never pays for them.
        g_tables()?;
        Some(Self {
            point: q,
            tables: OnceLock::new(),
        })
    }

    /// `None` only if a multiple of the key were infinity, which a point of order n cannot
    /// give: logged once per key, since every token of that key is then refused.
    fn tables(&self) -> Option<&[[Affine; Q_TABLE_LEN]; SPLIT]> {
        self.tables
            .get_or_init(|| {
                let tables = piece_tables(&self.point).map(Box::new);
                if tables.is_none() {
                    log::error!(
                        "mcp_authn: ES256 tables of a P-256 key could not be built; \
                         its tokens are refused"
                    );
                }
                tables
            })
            .as_deref()
    }

    /// ES256 over a SHA-256 `digest` computed elsewhere; `signature` is `r || s`, 64 bytes.
    pub fn verify_prehash(&self, digest: &[u8; 32], signature: &[u8]) -> bool {
        Es256Signature::try_from_slice(signature)
            .is_ok_and(|signature| self.verify_digest(digest, &signature))
    }

    /// ECDSA verification (SEC 1 section 4.1.4) of a SHA-256 `digest`. High `s` is accepted:
    /// JWS does not require low `s`, and neither does `p256`.
    fn verify_digest(&self, digest: &[u8; 32], signature: &Es256Signature) -> bool {
        let (Some(r), Some(s)) = (
            signature_scalar(&signature.r),
            signature_scalar(&signature.s),
        ) else {
            return false;
        };
        let e = digest_scalar(digest);
        // w·R mod n, so that the Montgomery products below give e·w and r·w.
        let Some(w) = invert_mod(&s, &N, R_MOD_N) else {
            return false;
        };
        let (u1, u2) = (mont_mul_n(&e, &w), mont_mul_n(&r, &w));
        let Some(tables) = self.tables() else {
            return false;
        };
        mul_add(&u1, &u2, tables).is_some_and(|point| point.x_mod_n_is(&r))
    }
}

/// ES256 (ECDSA P-256 with SHA-256) over [`P256Key`].
#[derive(Debug, Clone, Copy)]
pub struct Es256;

/// An ES256 signature: `r` and `s`, 32 big-endian bytes each (RFC 7518 section 3.4).
pub struct Es256Signature {
    r: [u8; 32],
    s: [u8; 32],
}

impl AlgorithmSignature for Es256Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(64);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        match slice.as_chunks::<32>() {
            ([r, s], []) => Ok(Self { r: *r, s: *s }),
            _ => Err(anyhow::anyhow!("an ES256 signature is 64 bytes")),
        }
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned([self.r, self.s].concat())
    }
}

impl Algorithm for Es256 {
    /// Verification only: this filter never signs.
    type SigningKey = Infallible;
    type VerifyingKey = P256Key;
    type Signature = Es256Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES256")
    }

    fn sign(&self, signing_key: &Infallible, _message: &[u8]) -> Es256Signature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Es256Signature, key: &P256Key, message: &[u8]) -> bool {
        key.verify_digest(&Sha256::digest(message).into(), signature)
    }
}

/// The verifier's point arithmetic, for the differential fuzz target (`fuzz/`, feature
/// `fuzzing`), which compares it with `p256`'s `ProjectivePoint`.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::*;

    /// `u1·G + u2·Q` through the verifier's tables, as big-endian affine `(x, y)`; `None` for
    /// infinity. Scalars are reduced mod n first (one subtraction: `2^256 < 2n`).
    pub fn lincomb(key: &P256Key, u1: &[u8; 32], u2: &[u8; 32]) -> Option<([u8; 32], [u8; 32])> {
        let point = mul_add(&digest_scalar(u1), &digest_scalar(u2), key.tables()?)?;
        if point.is_infinity() {
            return None;
        }
        let z_inv = point.z.invert()?;
        let zz_inv = z_inv.square();
        Some((
            to_be(&(point.x * zz_inv).to_limbs()),
            to_be(&(point.y * zz_inv * z_inv).to_limbs()),
        ))
    }

    /// The pieces of a verification, one at a time, for the timing program
    /// (`examples/es256_cost.rs`). Inputs are little-endian limbs; field inputs must be
    /// below p, scalar inputs below n.
    pub mod parts {
        use super::super::*;

        /// A field element from an integer below p.
        pub fn field_element(a: &[u32; 8]) -> Option<FieldElement> {
            Fe::from_limbs(a).map(FieldElement)
        }

        /// A field element, opaque.
        #[derive(Clone, Copy)]
        pub struct FieldElement(Fe);

        impl FieldElement {
            pub fn multiply(self, rhs: Self) -> Self {
                Self(self.0 * rhs.0)
            }

            pub fn square(self) -> Self {
                Self(self.0.square())
            }

            pub fn invert(self) -> Option<Self> {
                self.0.invert().map(Self)
            }

            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }
        }

        /// `a^-1 mod n` (in Montgomery form, as the verifier takes `s^-1`).
        pub fn scalar_invert(a: &[u32; 8]) -> Option<[u32; 8]> {
            invert_mod(a, &N, R_MOD_N)
        }

        pub fn scalar_mul(a: &[u32; 8], b: &[u32; 8]) -> [u32; 8] {
            mont_mul_n(a, b)
        }

        /// `2^times · G`, one Jacobian doubling at a time; its X.
        pub fn double_g(times: u32) -> [u32; 8] {
            let mut acc = Jacobian::from(G);
            for _ in 0..times {
                acc = acc.double();
            }
            acc.x.to_limbs()
        }

        /// `(1 + times)·G`, one mixed addition at a time (none meets the doubling case for
        /// `times` below n - 1); its X.
        pub fn add_g(times: u32) -> [u32; 8] {
            let mut acc = Jacobian::from(G).double();
            for _ in 1..times {
                acc = acc.add_affine(&G);
            }
            acc.x.to_limbs()
        }

        /// `u1·G + u2·Q` through the key's tables (built here if not yet); whether it is
        /// infinity.
        pub fn mul_add(key: &P256Key, u1: &[u32; 8], u2: &[u32; 8]) -> Option<bool> {
            super::super::mul_add(u1, u2, key.tables()?).map(|point| point.is_infinity())
        }

        /// Builds the key's tables, as its first verification does.
        pub fn build_key_tables(key: &P256Key) -> bool {
            piece_tables::<Q_TABLE_LEN>(&key.point).is_some()
        }
    }

    fn to_be(limbs: &Limbs) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(4).zip(limbs.iter().rev()) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::PrimeField;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::{AffinePoint, ProjectivePoint, Scalar};
    use rsa::BigUint;

    fn big(limbs: &[u32]) -> BigUint {
        BigUint::from_slice(limbs)
    }

    fn to_bytes(limbs: &Limbs) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(4).rev().zip(limbs) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    fn from_big(x: &BigUint) -> Limbs {
        let bytes = x.to_bytes_be();
        let mut padded = [0u8; 32];
        padded[32 - bytes.len()..].copy_from_slice(&bytes);
        limbs_from_be(&padded)
    }

    /// xorshift64: reproducible inputs without a rand dependency.
    struct Rng(u64);

    impl Rng {
        fn next_u32(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 16) as u32
        }

        fn below(&mut self, m: &Limbs) -> Limbs {
            loop {
                let k: Limbs = std::array::from_fn(|_| self.next_u32());
                if less_than(&k, m) {
                    return k;
                }
            }
        }
    }

    /// Edge values below `m`, then random ones.
    fn samples(m: &Limbs, seed: u64) -> Vec<Limbs> {
        let m_minus = |k: u32| sub_limbs(m, &[k, 0, 0, 0, 0, 0, 0, 0]).0;
        let mut out = vec![
            [0; 8],
            [1, 0, 0, 0, 0, 0, 0, 0],
            [2, 0, 0, 0, 0, 0, 0, 0],
            m_minus(1),
            m_minus(2),
            [0, 0, 0, 0, 0, 0, 0, 0x8000_0000],
            [0, 0, 0, 0, 0, 0, 0, 0xffff_0000],
            [
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
                0,
                0,
                0,
                0,
            ],
            [0, 0, 0, 0, 0, 0, 1, 0],
        ];
        let mut rng = Rng(seed);
        out.extend((0..200).map(|_| rng.below(m)));
        out
    }

    fn scalar(k: &Limbs) -> Scalar {
        Scalar::from_repr(to_bytes(k).into()).unwrap()
    }

    fn affine_of(point: &Jacobian) -> Option<Affine> {
        let mut out = [G];
        batch_to_affine(&[*point], &mut out).map(|()| out[0])
    }

    fn affine_from_p256(point: &ProjectivePoint) -> Affine {
        let encoded = point.to_affine().to_encoded_point(false);
        let coordinate = |c: Option<&p256::FieldBytes>| {
            Fe::from_be_bytes(&<[u8; 32]>::from(*c.unwrap())).unwrap()
        };
        Affine {
            x: coordinate(encoded.x()),
            y: coordinate(encoded.y()),
        }
    }

    #[test]
    fn a_key_whose_tables_cannot_be_built_refuses_every_signature() {
        // (0, 0) is off the curve, so from_coordinates refuses it; built by hand, its double
        // is infinity and the batch inversion fails.
        let broken = P256Key {
            point: Affine {
                x: Fe::ZERO,
                y: Fe::ZERO,
            },
            tables: OnceLock::new(),
        };
        assert!(P256Key::from_coordinates(&[0; 32], &[0; 32]).is_none());
        assert!(broken.tables().is_none());
        let signature = Es256Signature {
            r: [1; 32],
            s: [1; 32],
        };
        assert!(!broken.verify_digest(&[7; 32], &signature));
    }

    #[test]
    fn constants_are_the_p256_ones() {
        let pow2 = |k: usize| BigUint::from(1u8) << k;
        let p = pow2(256) - pow2(224) + pow2(192) + pow2(96) - 1u8;
        assert_eq!(big(&P), p);
        let n_minus_one = (-Scalar::ONE).to_bytes();
        assert_eq!(
            limbs_from_be(&n_minus_one.into()),
            sub_limbs(&N, &[1, 0, 0, 0, 0, 0, 0, 0]).0
        );
        assert_eq!(big(&R_MOD_N), pow2(256) % big(&N));
        assert_eq!(N0_INV.wrapping_mul(N[0]), u32::MAX);
        assert_eq!(
            G,
            affine_from_p256(&ProjectivePoint::from(AffinePoint::GENERATOR))
        );
        assert!(G.is_on_curve());
        let other = affine_from_p256(&(ProjectivePoint::GENERATOR * Scalar::from(7u64)));
        assert!(other.is_on_curve());
        assert!(
            !Affine {
                x: other.x,
                y: other.y + Fe::ONE
            }
            .is_on_curve()
        );
    }

    #[test]
    fn field_arithmetic_matches_the_reference_bignum() {
        let p = big(&P);
        let samples = samples(&P, 0x5eed_0001);
        for (i, &a) in samples.iter().enumerate() {
            let b = samples[(i * 7 + 3) % samples.len()];
            let (fa, fb) = (Fe::from_limbs(&a).unwrap(), Fe::from_limbs(&b).unwrap());
            let (ba, bb) = (big(&a), big(&b));
            assert_eq!(
                big(&(fa * fb).to_limbs()),
                &ba * &bb % &p,
                "{a:x?} * {b:x?}"
            );
            assert_eq!(big(&fa.square().to_limbs()), &ba * &ba % &p, "{a:x?}^2");
            assert_eq!(big(&(fa + fb).to_limbs()), (&ba + &bb) % &p);
            assert_eq!(big(&(fa - fb).to_limbs()), (&ba + &p - &bb) % &p);
            assert_eq!(big(&(-fa).to_limbs()), (&p - &ba) % &p);
            for k in [3u32, 4, 8] {
                assert_eq!(big(&fa.times(k).to_limbs()), &ba * k % &p, "{k} * {a:x?}");
            }
            match fa.invert() {
                Some(inverse) => assert_eq!(big(&(inverse * fa).to_limbs()), BigUint::from(1u8)),
                None => assert!(fa.is_zero()),
            }
        }
        assert!(Fe::from_be_bytes(&to_bytes(&P)).is_none());
        assert!(Fe::from_be_bytes(&[0xff; 32]).is_none());
    }

    #[test]
    fn scalar_arithmetic_matches_the_reference_bignum() {
        let n = big(&N);
        let r = big(&R_MOD_N);
        let samples = samples(&N, 0x5eed_0003);
        for (i, &a) in samples.iter().enumerate() {
            let b = samples[(i * 5 + 1) % samples.len()];
            let product = big(&mont_mul_n(&a, &b));
            assert_eq!(product * &r % &n, big(&a) * big(&b) % &n, "{a:x?} * {b:x?}");
            match invert_mod(&a, &N, R_MOD_N) {
                Some(inverse) => assert_eq!(big(&inverse) * big(&a) % &n, r),
                None => assert!(is_zero(&a)),
            }
        }
        assert!(invert_mod(&N, &N, R_MOD_N).is_none());
        assert!(invert_mod(&[0; 8], &N, R_MOD_N).is_none());
        // A modulus sharing a factor with the input (3 · 5 and 5): u reaches 0, and the
        // answer is None rather than a loop halving zero forever.
        assert!(
            invert_mod(
                &[5, 0, 0, 0, 0, 0, 0, 0],
                &[15, 0, 0, 0, 0, 0, 0, 0],
                [1, 0, 0, 0, 0, 0, 0, 0]
            )
            .is_none()
        );
        assert_eq!(
            invert_mod(
                &[2, 0, 0, 0, 0, 0, 0, 0],
                &[15, 0, 0, 0, 0, 0, 0, 0],
                [1, 0, 0, 0, 0, 0, 0, 0]
            ),
            Some([8, 0, 0, 0, 0, 0, 0, 0])
        );
        assert!(invert_mod(&[u32::MAX; 8], &N, R_MOD_N).is_none());
    }

    #[test]
    fn signature_halves_must_be_in_range_and_digests_are_reduced() {
        let one = [1, 0, 0, 0, 0, 0, 0, 0];
        let n_minus_one = sub_limbs(&N, &one).0;
        assert_eq!(signature_scalar(&to_bytes(&one)), Some(one));
        assert_eq!(signature_scalar(&to_bytes(&n_minus_one)), Some(n_minus_one));
        assert_eq!(signature_scalar(&[0; 32]), None);
        assert_eq!(signature_scalar(&to_bytes(&N)), None);
        assert_eq!(signature_scalar(&[0xff; 32]), None);
        assert_eq!(digest_scalar(&to_bytes(&N)), [0; 8]);
        assert_eq!(digest_scalar(&to_bytes(&n_minus_one)), n_minus_one);
        assert_eq!(
            digest_scalar(&[0xff; 32]),
            from_big(&((big(&[u32::MAX; 8])) % big(&N)))
        );
    }

    #[test]
    fn pieces_and_their_wnaf_digits_rebuild_the_scalar() {
        let mut scalars = samples(&N, 0x5eed_0004);
        scalars.push([u32::MAX; 8]);
        for k in scalars {
            let mut rebuilt = BigUint::from(0u8);
            for j in 0..SPLIT {
                let piece = piece(&k, j);
                assert!(big(&piece) < BigUint::from(1u8) << PIECE_BITS);
                rebuilt += big(&piece) << (PIECE_BITS * j);
                for w in [2, 4, Q_WINDOW, G_WINDOW] {
                    let digits = wnaf(&piece, w);
                    let (mut positive, mut negative) = (BigUint::from(0u8), BigUint::from(0u8));
                    let mut quiet_until = 0;
                    for (i, &d) in digits.iter().enumerate() {
                        if d == 0 {
                            continue;
                        }
                        assert!(
                            d % 2 != 0 && i32::from(d).abs() < 1 << (w - 1),
                            "{k:x?} w={w}"
                        );
                        assert!(i >= quiet_until, "{k:x?} w={w}: digits too close");
                        quiet_until = i + w as usize;
                        let term = BigUint::from(d.unsigned_abs()) << i;
                        if d > 0 {
                            positive += term;
                        } else {
                            negative += term;
                        }
                    }
                    assert_eq!(positive - negative, big(&piece), "{k:x?} w={w}");
                }
            }
            assert_eq!(rebuilt, big(&k));
        }
    }

    #[test]
    fn double_scalar_multiplication_matches_p256() {
        let mut rng = Rng(0x5eed_0005);
        for _ in 0..40 {
            let d = rng.below(&N);
            let q = ProjectivePoint::GENERATOR * scalar(&d);
            let q_affine = affine_from_p256(&q);
            let key = P256Key::from_coordinates(
                &to_bytes(&q_affine.x.to_limbs()),
                &to_bytes(&q_affine.y.to_limbs()),
            )
            .unwrap();
            let tables = key.tables().unwrap();
            assert_eq!(tables[0][0], q_affine);
            let (u1, u2) = (rng.below(&N), rng.below(&N));
            let expected = ProjectivePoint::GENERATOR * scalar(&u1) + q * scalar(&u2);
            let got = mul_add(&u1, &u2, tables).unwrap();
            assert_eq!(affine_of(&got), Some(affine_from_p256(&expected)));
            // u1 = 0, and u1·G = ±u2·Q, where the additions meet equal or opposite points.
            let u2d = scalar(&u2) * scalar(&d);
            for u1 in [Scalar::ZERO, u2d, -u2d] {
                let u1_limbs = limbs_from_be(&u1.to_bytes().into());
                let expected = ProjectivePoint::GENERATOR * u1 + q * scalar(&u2);
                let got = mul_add(&u1_limbs, &u2, tables).unwrap();
                if expected == ProjectivePoint::IDENTITY {
                    assert!(got.is_infinity());
                } else {
                    assert_eq!(affine_of(&got), Some(affine_from_p256(&expected)));
                }
            }
        }
    }

    #[test]
    fn mixed_addition_handles_equal_opposite_and_infinite_points() {
        let three_g = affine_from_p256(&(ProjectivePoint::GENERATOR * Scalar::from(3u64)));
        let six_g = affine_from_p256(&(ProjectivePoint::GENERATOR * Scalar::from(6u64)));
        // 3G with Z ≠ 1, so that equality is not a limb comparison.
        let z = Fe::from_limbs(&[9, 8, 7, 6, 5, 4, 3, 2]).unwrap();
        let p = Jacobian {
            x: three_g.x * z.square(),
            y: three_g.y * z.square() * z,
            z,
        };
        assert_eq!(affine_of(&p.add_affine(&three_g)), Some(six_g));
        assert_eq!(affine_of(&p.double()), Some(six_g));
        assert!(p.add_affine(&-three_g).is_infinity());
        assert_eq!(
            affine_of(&Jacobian::INFINITY.add_affine(&three_g)),
            Some(three_g)
        );
        assert!(Jacobian::INFINITY.double().is_infinity());
        assert_eq!(
            p.add_digit(0, &[G]).map(|q| affine_of(&q)),
            Some(Some(three_g))
        );
        assert!(p.add_digit(3, &[G]).is_none());
    }

    /// The first point with `x ≥ from`, seen from a random-looking Z (p ≡ 3 mod 4, so
    /// square roots are a power away).
    fn jacobian_with_x_from(from: &Limbs) -> (Affine, Jacobian) {
        let p = big(&P);
        let root_exponent = (&p + 1u8) >> 2;
        let point = (0u32..1000)
            .find_map(|k| {
                let x = Fe::from_limbs(&add_limbs(from, &[k, 0, 0, 0, 0, 0, 0, 0]).0)?;
                let rhs = (x.square() - Fe::ONE.times(3)) * x + B;
                let y =
                    Fe::from_limbs(&from_big(&big(&rhs.to_limbs()).modpow(&root_exponent, &p)))?;
                (y.square() == rhs).then_some(Affine { x, y })
            })
            .unwrap();
        assert!(point.is_on_curve());
        let z = Fe::from_limbs(&[7, 6, 5, 4, 3, 2, 1, 0]).unwrap();
        let jacobian = Jacobian {
            x: point.x * z.square(),
            y: point.y * z.square() * z,
            z,
        };
        (point, jacobian)
    }

    #[test]
    fn x_is_compared_mod_n_including_x_at_or_above_n() {
        let one = [1, 0, 0, 0, 0, 0, 0, 0];
        // n <= x < p: x mod n = x - n.
        let (point, jacobian) = jacobian_with_x_from(&N);
        let r = sub_limbs(&point.x.to_limbs(), &N).0;
        assert!(jacobian.x_mod_n_is(&r));
        assert!(!jacobian.x_mod_n_is(&add_limbs(&r, &one).0));
        assert!(!Jacobian::INFINITY.x_mod_n_is(&r));
        // A small x: r = x + (p - n) is below n, and r + n ≡ x (mod p), but r + n ≥ p is not
        // a field element, so r must not match.
        let (point, jacobian) = jacobian_with_x_from(&one);
        assert!(jacobian.x_mod_n_is(&point.x.to_limbs()));
        let r = add_limbs(&point.x.to_limbs(), &sub_limbs(&P, &N).0).0;
        assert!(less_than(&r, &N));
        assert!(!jacobian.x_mod_n_is(&r));
    }

    #[test]
    fn keys_off_the_curve_or_out_of_range_are_refused() {
        let (x, y) = (to_bytes(&G.x.to_limbs()), to_bytes(&G.y.to_limbs()));
        assert!(P256Key::from_coordinates(&x, &y).is_some());
        assert!(P256Key::from_coordinates(&x, &to_bytes(&(G.y + Fe::ONE).to_limbs())).is_none());
        assert!(P256Key::from_coordinates(&[0; 32], &[0; 32]).is_none());
        assert!(P256Key::from_coordinates(&to_bytes(&P), &y).is_none());
        assert!(P256Key::from_coordinates(&x, &[0xff; 32]).is_none());
    }
}
