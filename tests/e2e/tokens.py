"""Signing keys, JWKS documents and JWT minting for the end-to-end tests.

Keys are generated fresh for every test run so nothing secret lives in the
repository, and so a "wrong key" is simply another freshly generated key.
"""

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class SigningKey:
    """A private key plus the `kid`/`alg` it is published under."""

    def __init__(self, private_key, alg, kid=None):
        self.private_key = private_key
        self.alg = alg
        self.kid = kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}"

    @classmethod
    def rsa(cls, kid=None):
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", kid)

    @classmethod
    def rsa_pss(cls, kid=None):
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), "PS256", kid)

    @classmethod
    def p256(cls, kid=None):
        return cls(ec.generate_private_key(ec.SECP256R1()), "ES256", kid)

    def public_jwk(self):
        """The public half as a JWK dict with kid, alg and use=sig."""
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk


def jwks(*keys):
    """A JWKS document (dict) publishing the public halves of `keys`."""
    return {"keys": [key.public_jwk() for key in keys]}


def jwks_json(*keys):
    return json.dumps(jwks(*keys))


def mint(key, *, iss, aud, lifetime=300, nbf_offset=0, kid=None, extra=None):
    """Sign a token with `key`.

    `lifetime` is seconds from now until `exp` (negative => already expired);
    `nbf_offset` is seconds from now for `nbf` (positive => not yet valid);
    `kid` overrides the header kid (e.g. to claim a key that did not sign it).
    """
    now = int(time.time())
    claims = {
        "iss": iss,
        "aud": aud,
        "sub": "e2e-user",
        "iat": now,
        "nbf": now + nbf_offset,
        "exp": now + lifetime,
    }
    claims.update(extra or {})
    headers = {"kid": kid or key.kid}
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers=headers)
