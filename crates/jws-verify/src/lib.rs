//! RS256/384/512 and ES256 verification written for wasm32 (32-bit limbs, 64-bit products),
//! where the general-purpose `rsa` and `p256` arithmetic is 3 to 13 times slower. Each
//! verifier implements jwt-compact's `Algorithm`. See README.md for what is checked and what
//! is not; the filter (the workspace root) checks both against `rsa` and `p256` continuously.

pub mod ecdsa_p256;
pub mod rsa_pkcs1;
