"""A WebAuthn authenticator and browser in software, for the passkey tests.

It does what a browser and a platform authenticator do between them: builds the client
data, the authenticator data and a ``none`` attestation (CBOR), signs assertions with an
ES256 key from ``cryptography``, and answers in the JSON form of
``PublicKeyCredential.toJSON()``. Every field can be bent, so each check the server makes
can be failed on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

RP_ID = "example.com"
ORIGIN = "https://example.com"

FLAG_USER_PRESENT = 0x01
FLAG_USER_VERIFIED = 0x04
FLAG_ATTESTED_DATA = 0x40
# COSE: key type EC2, algorithm ES256, curve P-256 (RFC 9053).
COSE_KTY, COSE_ALG, COSE_CRV, COSE_X, COSE_Y = 1, 3, -1, -2, -3
EC2, ES256, P256 = 2, -7, 1


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """One credential on one authenticator. ``counter_step`` 0 is a key without a counter."""

    counter_step: int = 1
    sign_count: int = 0
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    # The user handle the relying party gave at creation, kept like a resident key.
    user_handle: bytes | None = None

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def clone(self) -> SoftAuthenticator:
        """The same key and counter on a second device, as a cloned key would be."""
        return SoftAuthenticator(
            counter_step=self.counter_step,
            sign_count=self.sign_count,
            private_key=self.private_key,
            credential_id=self.credential_id,
            user_handle=self.user_handle,
        )

    # --- navigator.credentials.create() --------------------------------------------------

    def create(
        self,
        options: dict,
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        challenge: str | None = None,
        user_verified: bool = True,
        discoverable: bool | None = True,
    ) -> dict:
        """The registration response to creation ``options``."""
        self.user_handle = unb64url(options["user"]["id"])
        client_data = self.client_data("webauthn.create", challenge or options["challenge"], origin)
        attested = self.credential_id_and_key()
        auth_data = self.authenticator_data(
            rp_id or options["rp"]["id"], user_verified=user_verified, attested=attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        extensions = {} if discoverable is None else {"credProps": {"rk": discoverable}}
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            },
            "clientExtensionResults": extensions,
        }

    # --- navigator.credentials.get() -----------------------------------------------------

    def get(
        self,
        options: dict,
        *,
        origin: str = ORIGIN,
        rp_id: str | None = None,
        challenge: str | None = None,
        user_verified: bool = True,
        user_present: bool = True,
        cross_origin: bool = False,
    ) -> dict:
        """The assertion answering request ``options``, signed, the counter moved on."""
        self.sign_count += self.counter_step
        client_data = self.client_data(
            "webauthn.get", challenge or options["challenge"], origin, cross_origin=cross_origin
        )
        auth_data = self.authenticator_data(
            rp_id or options.get("rpId", RP_ID),
            user_verified=user_verified,
            present=user_present,
        )
        signature = self.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if self.user_handle is not None:
            response["userHandle"] = b64url(self.user_handle)
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": response,
            "clientExtensionResults": {},
        }

    # --- The pieces ----------------------------------------------------------------------

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str, *, cross_origin: bool = False):
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": cross_origin}
        ).encode()

    def authenticator_data(
        self, rp_id: str, *, user_verified: bool, attested: bytes = b"", present: bool = True
    ) -> bytes:
        flags = FLAG_USER_PRESENT if present else 0
        flags |= FLAG_USER_VERIFIED if user_verified else 0
        flags |= FLAG_ATTESTED_DATA if attested else 0
        rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
        return rp_id_hash + bytes([flags]) + struct.pack(">I", self.sign_count) + attested

    def credential_id_and_key(self) -> bytes:
        """Attested credential data: AAGUID (zeros: no attestation), id, COSE public key."""
        numbers = self.private_key.public_key().public_numbers()
        cose_key = cbor2.dumps(
            {
                COSE_KTY: EC2,
                COSE_ALG: ES256,
                COSE_CRV: P256,
                COSE_X: numbers.x.to_bytes(32, "big"),
                COSE_Y: numbers.y.to_bytes(32, "big"),
            }
        )
        id_length = struct.pack(">H", len(self.credential_id))
        return bytes(16) + id_length + self.credential_id + cose_key


def tampered(credential: dict, field_name: str, change) -> dict:
    """``credential`` with one base64url field of its response passed through ``change``."""
    response = dict(credential["response"])
    response[field_name] = b64url(change(unb64url(response[field_name])))
    return {**credential, "response": response}


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])
