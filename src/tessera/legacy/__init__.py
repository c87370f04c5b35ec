"""Tokens issued by DRF's ``authtoken`` or by knox, carried over into Tessera sessions.

A project moving to Tessera runs ``tessera_import_drf_tokens`` or
``tessera_import_knox_tokens`` once; each existing token becomes a Tessera Session and
:class:`tessera.authentication.ImportedTokenAuthentication` keeps accepting the old
token string, so no client has to log in again. From then on the old tokens are
ordinary sessions: listed, revoked by logout, logout-all and password changes,
expired, cached, like any other.

Only digests are stored, never a usable token:

- DRF keeps its keys in clear, so the import stores ``sha256(key)``, as Tessera stores
  its own tokens: 160 random bits are as far beyond search as Tessera's 256, so a plain
  digest is enough here too.
- knox keeps only ``sha512(token)`` (``SECURE_HASH_ALGORITHM``, its default); the clear
  token cannot be recovered, so the import copies that digest and authentication
  computes the same one.

A token of a legacy shape that no session has answers ``None``, not 401: during a
migration a token minted by the old login view after the import ran is still accepted
by the library's own class further down DEFAULT_AUTHENTICATION_CLASSES. A token that a
session has but that is revoked or expired raises 401, so a logout through Tessera
cannot be undone by the old class finding the original row.

- :mod:`.digests`: which strings DRF or knox issued, and the digests they are stored under.
- :mod:`.importer`: turning the old rows into sessions, batch by batch.
- :mod:`.command`: what the two import commands share.
"""
