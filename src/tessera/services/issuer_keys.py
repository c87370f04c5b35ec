"""The signing keys of external issuers (``TRUSTED_ISSUERS``): fetched, held, shared.

- Keys come only from the entry's ``jwks_uri`` or the one the issuer's own discovery
  document names; never from a URL or key a token carries. No redirects.
- A refresh (discovery and keys together) has one deadline, ``EXTERNAL_JWKS_TIMEOUT``:
  when it passes the connection is shut down, however the server trickles its answer.
  A socket timeout alone bounds each wait, not their sum. Bodies are capped in size.
- One thread per process refreshes an issuer at a time. Every other request goes on
  with the keys held (a kid not among them is refused at once); only while no key is
  held at all does a request wait for the fetch under way, no longer than its deadline.
- Refreshes are rationed: after a failure none before ``EXTERNAL_JWKS_REFRESH_INTERVAL``
  (``NO_KEYS_RETRY_SECONDS`` while nothing is held); for a kid not among the keys, one per
  interval. In between, a kid not held is refused from memory: no lock, no cache read,
  and nothing remembered per kid, so endless made-up kids cost nothing.
- Keys are kept per process and in Tessera's cache (one process's fetch serves the
  others), refreshed after ``EXTERNAL_JWKS_MAX_AGE``, and kept when the issuer is down.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.core.cache import caches
from django.core.signals import setting_changed
from django.utils import timezone

from ..conf import tessera_settings
from ..tokens.external import InvalidKeySet, VerificationKey, parse_key_set

logger = logging.getLogger("tessera")

# Far above any real key set or discovery document; a larger answer is refused.
MAX_DOCUMENT_BYTES = 256 * 1024
# With no keys held, a failed fetch is tried again after this many seconds at the soonest.
NO_KEYS_RETRY_SECONDS = 1.0
DISCOVERY_PATH = "/.well-known/openid-configuration"
_SHARED_KEY_PREFIX = "tessera:jwks:"
_tls = ssl.create_default_context()


class IssuerUnreachable(Exception):
    """No keys are held for the issuer and they could not be fetched."""


def now() -> float:
    """Wall-clock seconds (Django's clock, which tests move): key sets carry the time they
    were fetched to other processes through the cache."""
    return timezone.now().timestamp()


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")


def acceptable_url(url: Any) -> bool:
    """An https URL, or http on this machine only (for development and tests)."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return bool(parts.hostname) and (
        parts.scheme == "https" or (parts.scheme == "http" and is_loopback(url))
    )


def fetch_timeout() -> float:
    return tessera_settings.EXTERNAL_JWKS_TIMEOUT.total_seconds()


class Deadline:
    """The end of a refresh: when it comes, every connection it watches is shut down.

    A shutdown wakes a thread blocked in connect, TLS handshake or read at once, which a
    timeout per socket operation cannot do for a server sending a byte a second.
    Name resolution is the system resolver's and is not cut.
    """

    def __init__(self, seconds: float) -> None:
        self._ends_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self.passed = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._timer.cancel()
        with self._lock:
            for watched in self._watched:
                watched.close()
            self._watched.clear()

    def remaining(self) -> float:
        left = self._ends_at - time.monotonic()
        if self.passed or left <= 0:
            raise IssuerUnreachable("The deadline of the fetch passed.")
        return left

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.passed:
                raise IssuerUnreachable("The deadline of the fetch passed.")
            # A duplicate stays valid after TLS takes the socket over, and shutting it
            # down shuts the one connection both name.
            self._watched.append(sock.dup())

    def _cut(self) -> None:
        with self._lock:
            self.passed = True
            for watched in self._watched:
                try:
                    watched.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the fetch itself


def fetch_json(url: str, deadline: Deadline) -> Any:
    """The JSON document at ``url`` within ``deadline``, or IssuerUnreachable.

    One GET, answered 200 with at most MAX_DOCUMENT_BYTES; any other answer (a redirect
    included: it could lead off the configured URL) is a failure.
    """
    status, document = request_json(url, deadline)
    if status != 200:
        raise IssuerUnreachable(f"{url}: HTTP {status}.")
    return document


def request_json(
    url: str,
    deadline: Deadline,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """The status and JSON body of one request to ``url`` within ``deadline``.

    A 4xx answer is returned, JSON or not (None), for the caller to judge: an OAuth
    endpoint refuses a grant that way. A 5xx, a redirect, a body over MAX_DOCUMENT_BYTES,
    a 2xx that is not JSON or no answer in time is IssuerUnreachable.
    """
    if not acceptable_url(url):
        raise IssuerUnreachable(f"{url!r} is not an https URL.")
    parts = urlsplit(url)
    https = parts.scheme == "https"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        port = parts.port or (443 if https else 80)
        connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
        connection = connection_class(parts.hostname, port)
    except ValueError as exc:
        raise IssuerUnreachable(f"{url}: {exc}") from exc
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=deadline.remaining())
        connection.sock = sock
        deadline.watch(sock)
        if https:
            connection.sock = _tls.wrap_socket(sock, server_hostname=parts.hostname)
        connection.request(
            method, target, body=body, headers={"Accept": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        status = response.status
        data = response.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = "the deadline of the fetch passed" if deadline.passed else exc
        raise IssuerUnreachable(f"{url}: {reason}") from exc
    finally:
        connection.close()
    if deadline.passed:
        raise IssuerUnreachable(f"{url}: the deadline of the fetch passed.")
    if not (200 <= status < 300 or 400 <= status < 500):
        raise IssuerUnreachable(f"{url}: HTTP {status}.")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise IssuerUnreachable(f"{url}: the document is too large.")
    try:
        return status, json.loads(data)
    except (ValueError, RecursionError) as exc:
        if status >= 400:
            return status, None
        raise IssuerUnreachable(f"{url}: not JSON.") from exc


class HeldDocument:
    """What a process holds of one issuer (its keys, its discovery document), refreshed
    by one thread at a time; ``fetched_at`` and ``retry_at`` are :func:`now`'s times.

    A subclass says whether it holds anything usable (``holds_something``) and refreshes
    under ``lock``, re-checking there what another thread did meanwhile.
    """

    issuer: str
    fetched_at: float
    retry_at: float
    lock: threading.Lock

    def holds_something(self) -> bool:
        raise NotImplementedError

    def _stale(self, moment: float) -> bool:
        return moment - self.fetched_at >= tessera_settings.EXTERNAL_JWKS_MAX_AGE.total_seconds()

    def _refresh_or_wait(self, refresh: Callable[[], None]) -> None:
        """``refresh()`` under the lock, unless another thread holds it: then go on with
        what is held, or, while nothing is, wait for that fetch, as long as one may last."""
        if self.lock.acquire(blocking=False):
            try:
                refresh()
            finally:
                self.lock.release()
        elif not self.holds_something() and self.lock.acquire(timeout=fetch_timeout()):
            self.lock.release()

    def _failed(self, what: str, exc: Exception) -> None:
        """No refresh before the back-off: a failing issuer costs one fetch per interval,
        not one per request."""
        interval = tessera_settings.EXTERNAL_JWKS_REFRESH_INTERVAL.total_seconds()
        self.retry_at = now() + (interval if self.holds_something() else NO_KEYS_RETRY_SECONDS)
        logger.warning("%s of issuer %s not refreshed: %s", what, self.issuer, exc)


@dataclass
class IssuerKeys(HeldDocument):
    """The keys of one issuer as this process holds them; times are :func:`now`'s."""

    issuer: str
    jwks_uri: str | None
    keys: dict[str, VerificationKey] = field(default_factory=dict)
    fetched_at: float = float("-inf")
    # No refresh at all before this (set by a failure)…
    retry_at: float = float("-inf")
    # …and none for a kid not held before this.
    kid_refresh_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self, kid: str) -> VerificationKey | None:
        """The key ``kid`` (None: not the issuer's), refreshing the set when that is due.

        IssuerUnreachable when no key is held and none could be fetched.
        """
        moment = now()
        held = self.keys
        stale = self._stale(moment)
        if kid in held and not stale:
            return held[kid]
        if moment < self.retry_at or (not stale and moment < self.kid_refresh_at):
            return self._held(kid)
        self._refresh_or_wait(lambda: self._refresh(kid))
        return self._held(kid)

    def holds_something(self) -> bool:
        return bool(self.keys)

    def _held(self, kid: str) -> VerificationKey | None:
        held = self.keys
        if not held:
            raise IssuerUnreachable(f"No keys of {self.issuer} could be fetched.")
        return held.get(kid)

    def _refresh(self, kid: str) -> None:
        """Under the lock: take another process's newer set, else fetch, unless another
        thread of this one refreshed or failed meanwhile."""
        moment = now()
        stale = self._stale(moment)
        if (kid in self.keys and not stale) or moment < self.retry_at:
            return
        interval = tessera_settings.EXTERNAL_JWKS_REFRESH_INTERVAL.total_seconds()
        if not stale:
            if moment < self.kid_refresh_at:
                return
            # Anyone can send a made-up kid: those refreshes are rationed.
            self.kid_refresh_at = moment + interval
        if self._adopt_shared(kid):
            return
        try:
            with Deadline(fetch_timeout()) as deadline:
                document = fetch_json(self._jwks_uri(deadline), deadline)
            keys = parse_key_set(document)
        except (IssuerUnreachable, InvalidKeySet) as exc:
            # A set without a usable key counts as a failure too.
            self._failed("Keys", exc)
            return
        fetched_at = now()
        self.keys, self.fetched_at = keys, fetched_at
        _share(self.issuer, fetched_at, document)

    def _jwks_uri(self, deadline: Deadline) -> str:
        if self.jwks_uri is None:
            discovery = fetch_json(self.issuer.rstrip("/") + DISCOVERY_PATH, deadline)
            if not isinstance(discovery, dict) or discovery.get("issuer") != self.issuer:
                raise IssuerUnreachable(f"The discovery document of {self.issuer} is not its own.")
            jwks_uri = discovery.get("jwks_uri")
            if not acceptable_url(jwks_uri):
                raise IssuerUnreachable(f"The discovery document of {self.issuer} has no jwks_uri.")
            self.jwks_uri = jwks_uri
        return self.jwks_uri

    def _adopt_shared(self, kid: str) -> bool:
        """Takes the set another process fetched after ours; True if it serves ``kid``."""
        shared = _shared(self.issuer)
        if shared is None:
            return False
        fetched_at, document = shared
        if fetched_at <= self.fetched_at:
            return False
        try:
            keys = parse_key_set(document)
        except InvalidKeySet:
            return False
        self.keys, self.fetched_at = keys, fetched_at
        return kid in keys and not self._stale(now())


def _shared(issuer: str) -> tuple[float, Any] | None:
    try:
        value = caches[tessera_settings.CACHE_ALIAS].get(_SHARED_KEY_PREFIX + issuer)
    except Exception:  # noqa: BLE001 - the cache is an optimisation; the issuer still answers
        return None
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], float)):
        return None
    return value


def _share(issuer: str, fetched_at: float, document: Any) -> None:
    timeout = tessera_settings.EXTERNAL_JWKS_MAX_AGE.total_seconds()
    try:
        caches[tessera_settings.CACHE_ALIAS].set(
            _SHARED_KEY_PREFIX + issuer, (fetched_at, document), timeout
        )
    except Exception:  # noqa: BLE001 - see _shared
        logger.warning("Keys of issuer %s could not be shared through the cache.", issuer)


_issuer_keys: dict[str, IssuerKeys] = {}
_issuer_keys_lock = threading.Lock()


def issuer_keys(entry: dict[str, Any]) -> IssuerKeys:
    """This process's keys of ``entry``'s issuer."""
    held = _issuer_keys.get(entry["issuer"])
    if held is None:
        with _issuer_keys_lock:
            held = _issuer_keys.setdefault(
                entry["issuer"], IssuerKeys(entry["issuer"], entry.get("jwks_uri"))
            )
    return held


def forget_keys() -> None:
    _issuer_keys.clear()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "TESSERA":
        forget_keys()


setting_changed.connect(_settings_changed)
os.register_at_fork(after_in_child=forget_keys)
