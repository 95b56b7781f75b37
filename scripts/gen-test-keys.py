#!/usr/bin/env python3
"""Regenerates tests/fixtures/keys.json: private JWKs the native tests sign with.

Committed once so tests are deterministic and fast (no RSA key generation per run).
"""
import base64, json, pathlib
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64(n: int, length: int | None = None) -> str:
    raw = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_jwk(kid: str, bits: int) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    priv, pub = key.private_numbers(), key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "n": b64(pub.n), "e": b64(pub.e), "d": b64(priv.d),
            "p": b64(priv.p), "q": b64(priv.q)}


def ec_jwk(kid: str) -> dict:
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = key.private_numbers(), key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(pub.x, 32), "y": b64(pub.y, 32),
            "d": b64(priv.private_value, 32)}


keys = {"rsa": rsa_jwk("rsa-1", 2048), "rsa2": rsa_jwk("rsa-2", 2048),
        "rsa_small": rsa_jwk("rsa-small", 1024), "ec": ec_jwk("ec-1")}
out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keys.json"
out.write_text(json.dumps(keys, indent=1) + "\n")
print(f"wrote {out}")
