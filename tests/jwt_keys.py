"""Key material generated once per test run (never committed, never reused)."""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def _pem_pair(private_key) -> tuple[str, str]:
    private = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@cache
def rsa_pair(bits: int = 2048) -> tuple[str, str]:
    return _pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=bits))


@cache
def ec_pair() -> tuple[str, str]:
    return _pem_pair(ec.generate_private_key(ec.SECP256R1()))


@cache
def ed_pair() -> tuple[str, str]:
    return _pem_pair(ed25519.Ed25519PrivateKey.generate())


def entry(kid: str, algorithm: str) -> dict:
    if algorithm.startswith("HS"):
        return {"kid": kid, "algorithm": algorithm, "secret": f"{kid}-" + "s" * 64}
    private, _public = {"RS": rsa_pair, "ES": ec_pair, "Ed": ed_pair}[algorithm[:2]]()
    return {"kid": kid, "algorithm": algorithm, "private_key": private}
