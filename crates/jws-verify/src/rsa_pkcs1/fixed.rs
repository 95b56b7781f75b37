//! Montgomery arithmetic for moduli of 2048 bits (256 bytes), the size of nearly every JWKS
//! RSA key: 74 limbs of 28 bits in fixed arrays, multiplied by product scanning. A limb
//! product is below 2^56, so a whole column of the schoolbook and reduction products (at most
//! 2 × 74 of them, plus the carry) fits in one u64 with no carry handling inside the loop, and
//! a squaring computes each cross product once. In V8 that inner loop is a load, a multiply
//! and an add per product, against the carry chain of 32-bit limbs.
//!
//! Indexing and arithmetic are on arrays of the fixed length; the column bounds are argued
//! below and `rsa_pkcs1`'s tests and the fuzz target check the results against `BigUint`.

use rsa::BigUint;

use super::less_than;

/// Bits per limb.
const BITS: u32 = 28;
const MASK: u32 = (1 << BITS) - 1;
/// Limbs: 74 × 28 = 2072 bits, so `R = 2^2072 > 4n` and a Montgomery product below `2n`
/// fits in the limbs with room to spare.
pub(super) const LIMBS: usize = 74;
/// The signature and modulus length this path serves.
pub(super) const BYTES: usize = 256;

// A column sums at most 2 × LIMBS products below 2^56, plus a carry below 2^36.
const _: () = assert!(2 * LIMBS < 256);
const _: () = assert!(LIMBS * BITS as usize >= 8 * BYTES + 2);

pub(super) type Limbs = [u32; LIMBS];

/// A 256-byte modulus in 28-bit limbs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fixed {
    n: Limbs,
    /// `n` in reverse limb order, so a column's products walk both operands upwards.
    n_rev: Limbs,
    /// `-n^-1 mod 2^28`.
    n0_inv: u32,
    /// `R^2 mod n`: converts into Montgomery form.
    r2: Limbs,
}

impl Fixed {
    /// `None` unless `n` is odd and exactly 256 bytes long.
    pub(super) fn new(n: &BigUint) -> Option<Self> {
        let bytes = n.to_bytes_be();
        if bytes.len() != BYTES {
            return None;
        }
        let n_limbs = from_bytes(&bytes)?;
        let n0 = n_limbs[0];
        if n0 & 1 == 0 {
            return None;
        }
        let mut n_rev = n_limbs;
        n_rev.reverse();
        Some(Self {
            n: n_limbs,
            n_rev,
            n0_inv: super::neg_inverse(n0) & MASK,
            r2: from_bytes(&super::r_squared(n, BITS as usize * LIMBS))?,
        })
    }

    /// `signature^65537 mod n` as 256 big-endian bytes; `None` unless the signature is 256
    /// bytes and below `n`.
    pub(super) fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != BYTES {
            return None;
        }
        let s = from_bytes(signature)?;
        if !less_than(&s, &self.n) {
            return None;
        }
        Some(to_bytes(&self.power(&s)))
    }

    /// `s^65537 mod n`: s·R, squared 16 times, is s^65536·R; times the plain s and R^-1 it
    /// is s^65537, out of Montgomery form without a conversion of its own. On wasm32 with
    /// SIMD128, so that [`dot`] inlines into the loops.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn power(&self, s: &Limbs) -> Limbs {
        let mut x = self.mul(s, &self.r2);
        for _ in 0..16 {
            x = self.square(&x);
        }
        self.mul(&x, s)
    }

    /// Montgomery product `a·b·R^-1 mod n`, for `a, b < n`.
    fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut b_rev = *b;
        b_rev.reverse();
        // Column i of a·b is the sum of a[j]·b[i-j] = a[j]·b_rev[LIMBS-1-i+j].
        self.reduce(|i, lo| dot(&a[lo..], &b_rev[LIMBS - 1 + lo - i..]))
    }

    /// Montgomery square `a²·R^-1 mod n`, for `a < n`: the cross products of a column once,
    /// doubled, plus the square on the diagonal.
    fn square(&self, a: &Limbs) -> Limbs {
        let mut a_rev = *a;
        a_rev.reverse();
        self.reduce(|i, lo| {
            // Pairs j < i - j; `half` is the first j with 2j >= i (at most LIMBS - 1).
            let half = i.div_ceil(2);
            let cross = dot(&a[lo..half], &a_rev[LIMBS - 1 + lo - i..]);
            let diagonal = if i % 2 == 0 {
                u64::from(a[half]) * u64::from(a[half])
            } else {
                0
            };
            2 * cross + diagonal
        })
    }

    /// Montgomery reduction by product scanning, with `column(i, lo)` giving the sum of the
    /// product's column `i`, whose terms `x[j]·y[i-j]` have `j` from `lo` (where `i - j`
    /// is the last limb) to `min(i, LIMBS - 1)`. Column by column, the low
    /// 28 bits of each of the first LIMBS columns are cancelled by `m[i]·n` (which adds its
    /// own products to the later columns), and the upper columns are the result, below `2n`;
    /// one conditional subtraction brings it below `n`.
    fn reduce(&self, column: impl Fn(usize, usize) -> u64) -> Limbs {
        let mut m = [0u32; LIMBS];
        let mut out = [0u32; LIMBS];
        // Never above (2·LIMBS products < 2^56) + (carry < 2^36) < 2^64: see the const asserts.
        let mut acc = 0u64;
        for i in 0..LIMBS {
            // m[j]·n[i-j] for j < i, then the m[i]·n[0] that cancels the column.
            acc += column(i, 0) + dot(&m[..i], &self.n_rev[LIMBS - 1 - i..]);
            let mi = (acc as u32).wrapping_mul(self.n0_inv) & MASK;
            m[i] = mi;
            acc += u64::from(mi) * u64::from(self.n[0]);
            debug_assert_eq!(acc as u32 & MASK, 0, "column {i} cancelled");
            acc >>= BITS;
        }
        for i in LIMBS..2 * LIMBS - 1 {
            let lo = i + 1 - LIMBS;
            acc += column(i, lo) + dot(&m[lo..], &self.n_rev[LIMBS - 1 + lo - i..]);
            out[i - LIMBS] = acc as u32 & MASK;
            acc >>= BITS;
        }
        // Below 2n < 2^2049: the last limb takes the rest.
        debug_assert!(acc < 1 << BITS, "the product stays below 2n");
        out[LIMBS - 1] = acc as u32;
        if !less_than(&out, &self.n) {
            let mut borrow = 0i64;
            for (o, nj) in out.iter_mut().zip(&self.n) {
                let diff = i64::from(*o) - i64::from(*nj) + borrow;
                *o = diff as u32 & MASK;
                borrow = diff >> BITS;
            }
        }
        out
    }
}

/// `Σ x[j]·y[j]` over the shorter of the two (a column's `y` slice ends its terms).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn dot(x: &[u32], y: &[u32]) -> u64 {
    dot_scalar(x, y)
}

/// [`dot`] a product at a time: natively, and for the last few products on wasm32.
#[inline(always)]
fn dot_scalar(x: &[u32], y: &[u32]) -> u64 {
    x.iter()
        .zip(y)
        .map(|(&a, &b)| u64::from(a) * u64::from(b))
        .sum()
}

/// [`dot`] four products at a time in SIMD128 (`i64x2.extmul_{low,high}_i32x4_u`), each
/// lane summing half of them, so no lane passes the column bound. In V8 this is about
/// 2.5 times as fast as the scalar loop.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
#[inline]
fn dot(x: &[u32], y: &[u32]) -> u64 {
    use core::arch::wasm32::{
        u64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4, u64x2_extract_lane,
        u64x2_splat, v128_load,
    };
    let len = x.len().min(y.len());
    let (x4, x_rest) = x[..len].as_chunks::<4>();
    let (y4, y_rest) = y[..len].as_chunks::<4>();
    let mut lanes = u64x2_splat(0);
    for (a, b) in x4.iter().zip(y4) {
        // SAFETY: each chunk is 16 readable bytes, and `v128.load` needs no alignment. (Built
        // from the four limbs instead, LLVM splits the vector into lane loads and the loop is
        // no faster than the scalar one in V8.)
        let (a, b) = unsafe { (v128_load(a.as_ptr().cast()), v128_load(b.as_ptr().cast())) };
        lanes = u64x2_add(lanes, u64x2_extmul_low_u32x4(a, b));
        lanes = u64x2_add(lanes, u64x2_extmul_high_u32x4(a, b));
    }
    u64x2_extract_lane::<0>(lanes) + u64x2_extract_lane::<1>(lanes) + dot_scalar(x_rest, y_rest)
}

/// Big-endian bytes (at most 259) to 28-bit limbs.
fn from_bytes(bytes: &[u8]) -> Option<Limbs> {
    let mut out = [0u32; LIMBS];
    let mut acc = 0u64;
    let mut bits = 0;
    let mut i = 0;
    for &b in bytes.iter().rev() {
        acc |= u64::from(b) << bits;
        bits += 8;
        if bits >= BITS {
            *out.get_mut(i)? = acc as u32 & MASK;
            acc >>= BITS;
            bits -= BITS;
            i += 1;
        }
    }
    if acc != 0 {
        *out.get_mut(i)? = acc as u32;
    }
    Some(out)
}

/// 28-bit limbs of a value below 2^2048 to 256 big-endian bytes.
fn to_bytes(limbs: &Limbs) -> Vec<u8> {
    let mut out = Vec::with_capacity(LIMBS * 4);
    let mut acc = 0u64;
    let mut bits = 0;
    for &limb in limbs {
        acc |= u64::from(limb) << bits;
        bits += BITS;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    out.truncate(BYTES);
    out.reverse();
    out
}

/// The SIMD128 [`dot`] against the scalar one, on wasm32 (scripts/wasm-tests.sh); natively
/// they are the same function. The whole path is checked against `BigUint` in `rsa_pkcs1`.
#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;

    #[test]
    fn simd_dot_matches_the_scalar_one() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut limb = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u32 & MASK
        };
        let random: Vec<u32> = (0..2 * LIMBS + 1).map(|_| limb()).collect();
        let full = [MASK; LIMBS];
        for x_len in 0..=LIMBS {
            for y_len in [x_len.saturating_sub(1), x_len, x_len + 1] {
                let (x, y) = (&random[..x_len], &random[LIMBS..LIMBS + y_len]);
                assert_eq!(dot(x, y), dot_scalar(x, y), "{x_len} × {y_len}");
                let (x, y) = (&full[..x_len], &full[..y_len.min(LIMBS)]);
                assert_eq!(dot(x, y), dot_scalar(x, y), "MASK, {x_len} × {y_len}");
            }
        }
        assert_eq!(dot(&full, &full), LIMBS as u64 * u64::from(MASK).pow(2));
    }
}
