"""Bench keys, JWKS and token pools.

Keys are the fixed test keys in tests/fixtures/keys.json (`rsa` = RS256 2048-bit, `ec` = ES256), so
the native jwt_authn listeners and the filter's listeners verify against the same key set.

Token pools are minted with `cryptography` (+ PyJWT) in parallel worker processes and cached under
target/bench/, reused while every token still has at least `MIN_REMAINING` seconds to live.
"""

import base64
import hashlib
import json
import multiprocessing
import os
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
KEYS_PATH = os.path.join(ROOT, "tests", "fixtures", "keys.json")

ISSUER = "https://idp.bench.example"
RESOURCE = "https://mcp.bench.example/mcp"
TOKEN_LIFETIME = 4 * 3600  # seconds; a pool is reminted when less than MIN_REMAINING is left
MIN_REMAINING = 3600

ALGS = {"RS256": "rsa", "ES256": "ec"}


def _b64int(value):
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _load_jwks_file():
    with open(KEYS_PATH) as f:
        return json.load(f)


def private_key(alg):
    """(cryptography private key, kid) for `alg`."""
    jwk = _load_jwks_file()[ALGS[alg]]
    if alg == "RS256":
        n, e, d, p, q = (_b64int(jwk[k]) for k in ("n", "e", "d", "p", "q"))
        numbers = rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=d,
            dmp1=rsa.rsa_crt_dmp1(d, p),
            dmq1=rsa.rsa_crt_dmq1(d, q),
            iqmp=rsa.rsa_crt_iqmp(p, q),
            public_numbers=rsa.RSAPublicNumbers(e, n),
        )
        return numbers.private_key(), jwk["kid"]
    x, y, d = (_b64int(jwk[k]) for k in ("x", "y", "d"))
    numbers = ec.EllipticCurvePrivateNumbers(d, ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()))
    return numbers.private_key(), jwk["kid"]


def public_jwks():
    """The JWKS (dict) with the public halves of the RS256 and ES256 keys."""
    keys = []
    for alg, name in ALGS.items():
        jwk = _load_jwks_file()[name]
        if alg == "RS256":
            public = {"kty": "RSA", "kid": jwk["kid"], "n": jwk["n"], "e": jwk["e"]}
        else:
            public = {"kty": "EC", "kid": jwk["kid"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]}
        public.update(alg=alg, use="sig")
        keys.append(public)
    return {"keys": keys}


def _claims(index, now):
    return {
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": f"bench-user-{index}",
        "jti": f"bench-{now}-{index}",
        "iat": now,
        "nbf": now - 60,
        "exp": now + TOKEN_LIFETIME,
    }


def _mint_chunk(args):
    alg, start, stop, now = args
    key, kid = private_key(alg)
    return [jwt.encode(_claims(i, now), key, algorithm=alg, headers={"kid": kid}) for i in range(start, stop)]


def mint(alg, count, now=None):
    """`count` distinct valid tokens for `alg` (list of str)."""
    now = int(now or time.time())
    workers = max(1, min(os.cpu_count() or 1, 8))
    step = max(1, -(-count // (workers * 4)))
    chunks = [(alg, s, min(s + step, count), now) for s in range(0, count, step)]
    if workers == 1 or count < 200:
        return [t for chunk in map(_mint_chunk, chunks) for t in chunk]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return [t for chunk in pool.map(_mint_chunk, chunks) for t in chunk]


def _key_fingerprint():
    with open(KEYS_PATH, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def pool_file(alg, count, cache_dir):
    """Path of a file with `count` distinct tokens (one per line), minting it if needed."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"tokens-{alg.lower()}-{count}.txt")
    meta_path = path + ".meta.json"
    want = {"alg": alg, "count": count, "keys": _key_fingerprint(), "issuer": ISSUER, "audience": RESOURCE}
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        if (
            {k: meta.get(k) for k in want} == want
            and meta["exp"] - time.time() >= MIN_REMAINING
            and os.path.exists(path)
        ):
            return path
    except (OSError, ValueError, KeyError):
        pass
    now = int(time.time())
    started = time.monotonic()
    tokens = mint(alg, count, now)
    if len(set(tokens)) != count:
        raise RuntimeError(f"{alg} pool has duplicate tokens")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(tokens) + "\n")
    os.replace(path + ".tmp", path)
    with open(meta_path, "w") as f:
        json.dump(dict(want, exp=now + TOKEN_LIFETIME), f)
    print(f"minted {count} {alg} tokens in {time.monotonic() - started:.1f}s -> {path}", flush=True)
    return path


def single(alg="RS256"):
    """One valid token (the cached case)."""
    return mint(alg, 1)[0]
