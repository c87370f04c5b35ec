"""What Tessera records about the client making a request."""

from __future__ import annotations

import ipaddress
import logging

from ..conf import tessera_settings

logger = logging.getLogger("tessera")

USER_AGENT_MAX_LENGTH = 255


def client_ip(request) -> str | None:
    """The client's address, trusting X-Forwarded-For only as far as NUM_PROXIES says.

    Without configured proxies the header is ignored: anyone can send it, and an
    attacker-chosen IP would defeat per-IP throttling.
    """
    proxies = tessera_settings.NUM_PROXIES
    candidate = request.META.get("REMOTE_ADDR")
    if proxies is None and "HTTP_X_FORWARDED_FOR" in request.META:
        _warn_forwarded_without_proxies()
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None


_warned_forwarded = False


def _warn_forwarded_without_proxies() -> None:
    """Once per process: a proxy is likely in front while every client shares its address."""
    global _warned_forwarded
    if not _warned_forwarded:
        _warned_forwarded = True
        logger.warning(
            "A request carries X-Forwarded-For but TESSERA['NUM_PROXIES'] is not set: the "
            "header is ignored, so behind a proxy every client shares one address for the "
            "per-IP throttles and lockout. Set NUM_PROXIES to the number of proxies."
        )


def client_key(request) -> str:
    """The client's address for per-IP throttles.

    Clients whose address cannot be read (a unix socket, a proxy header that is not an
    address) share one key instead of escaping the limit.
    """
    return client_ip(request) or "unknown"


def user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX_LENGTH]
