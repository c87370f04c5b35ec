from __future__ import annotations

import json
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tessera.tokens.jwt import HMAC_ALGORITHMS

GENERATORS = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}
HMAC_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class Command(BaseCommand):
    help = (
        "Generate a JWT signing key and print it as one TESSERA['JWT_KEYS'] entry (JSON). "
        "The output contains a private key: store it in your secret store, not in git."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--algorithm",
            default="EdDSA",
            choices=[*GENERATORS, *HMAC_ALGORITHMS],
            help="Signing algorithm (default EdDSA: small, fast, deterministic).",
        )
        parser.add_argument("--kid", help="Key id (default: today's date and a random suffix).")

    def handle(self, *args, algorithm: str, kid: str | None, **options):
        kid = kid or f"{timezone.now():%Y-%m-%d}-{secrets.token_hex(4)}"
        if not kid.isprintable() or len(kid) > 64:
            raise CommandError("--kid must be printable and at most 64 characters.")
        entry = {"kid": kid, "algorithm": algorithm}
        if algorithm in HMAC_ALGORITHMS:
            entry["secret"] = secrets.token_urlsafe(HMAC_BYTES[algorithm] + 16)
        else:
            private_key = GENERATORS[algorithm]()
            entry["private_key"] = private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        self.stdout.write(json.dumps(entry, indent=2))
