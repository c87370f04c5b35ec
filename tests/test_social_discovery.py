"""The discovery documents of sign-in providers: held per issuer, refreshed by one
thread while the others go on, rationed after a failure, and the endpoints they name
judged before any request goes there."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from tessera.errors import SocialProviderUnavailable
from tessera.models import SocialLogin
from tessera.services.issuer_keys import IssuerUnreachable
from tessera.services.social import providers

from .fake_issuer import DISCOVERY_PATH, FakeIssuer
from .social_support import authorize, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def hung():
    """A provider that takes connections and answers nothing until released."""
    fake = FakeIssuer().start()
    fake.hold()
    yield fake
    fake.stop()


def short_deadline(settings, seconds: float = 1) -> None:
    settings.TESSERA = {**settings.TESSERA, "EXTERNAL_JWKS_TIMEOUT": timedelta(seconds=seconds)}


def in_threads(count: int, target) -> list[threading.Thread]:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def unavailable(name: str) -> None:
    with pytest.raises(SocialProviderUnavailable):
        providers.endpoints(providers.get(name))


def test_a_hung_provider_does_not_hold_up_another(issuer, hung, social, settings):
    social(hung, name="slow")
    social(issuer, name="fast")
    short_deadline(settings, 3)
    threads = in_threads(1, lambda: unavailable("slow"))
    assert hung.arrived.wait(5)
    began = time.monotonic()
    found = providers.endpoints(providers.get("fast"))
    assert time.monotonic() - began < 1
    assert found.token == issuer.url + "/token"
    for thread in threads:
        thread.join()


def test_requests_to_a_hung_provider_wait_for_one_fetch_not_in_turn(hung, social, settings):
    social(hung, name="slow")
    short_deadline(settings, 1)
    began = time.monotonic()
    for thread in in_threads(4, lambda: unavailable("slow")):
        thread.join()
    # One after the other, four fetches would take four deadlines.
    assert time.monotonic() - began < 2
    assert hung.requests.count(DISCOVERY_PATH) == 1


def test_an_old_document_is_served_while_its_refresh_hangs(issuer, social, settings, clock):
    social(issuer)
    short_deadline(settings, 3)
    provider = providers.get("acme")
    held = providers.endpoints(provider)
    clock.advance(hours=2)
    issuer.hold()
    threads = in_threads(1, lambda: providers.endpoints(provider))
    assert issuer.arrived.wait(5)
    began = time.monotonic()
    assert providers.endpoints(provider) == held
    assert time.monotonic() - began < 1
    issuer.release()
    for thread in threads:
        thread.join()
    assert issuer.requests.count(DISCOVERY_PATH) == 2


def test_after_a_failed_refresh_none_before_the_interval(issuer, social, clock):
    social(issuer)
    provider = providers.get("acme")
    held = providers.endpoints(provider)
    clock.advance(hours=2)
    issuer.down = True
    assert providers.endpoints(provider) == held
    assert providers.endpoints(provider) == held
    assert issuer.requests.count(DISCOVERY_PATH) == 2
    clock.advance(minutes=4)
    providers.endpoints(provider)
    assert issuer.requests.count(DISCOVERY_PATH) == 2
    issuer.down = False
    clock.advance(minutes=2)
    assert providers.endpoints(provider) == held
    assert issuer.requests.count(DISCOVERY_PATH) == 3


def test_with_nothing_held_a_failure_is_retried_after_a_second(issuer, social, clock):
    social(issuer)
    issuer.down = True
    unavailable("acme")
    unavailable("acme")
    assert issuer.requests.count(DISCOVERY_PATH) == 1
    issuer.down = False
    clock.advance(seconds=2)
    assert providers.endpoints(providers.get("acme")).token == issuer.url + "/token"


# --- The endpoints a document may name ----------------------------------------------------


def document(issuer: str, **endpoints: str) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/authorize",
        "token_endpoint": issuer + "/token",
        "jwks_uri": issuer + "/keys",
        **endpoints,
    }


@pytest.mark.parametrize(
    "token_endpoint",
    [
        "http://127.0.0.1:18851/token",
        "https://127.0.0.1:18851/token",
        "https://localhost/token",
        "http://[::1]:18851/token",
        "http://other.example.test/token",
    ],
)
def test_an_https_issuer_cannot_name_this_machine_or_plain_http(token_endpoint):
    issuer = "https://id.example.test"
    with pytest.raises(IssuerUnreachable):
        providers._check_discovery(issuer, document(issuer, token_endpoint=token_endpoint))


def test_an_issuer_on_this_machine_may_name_http_endpoints_on_it_and_others_any_https_host():
    issuer = "http://127.0.0.1:18850"
    local = document(issuer, token_endpoint="http://localhost:18851/token")
    providers._check_discovery(issuer, local)
    remote, token_endpoint = "https://id.example.test", "https://oauth2.example.test/token"
    providers._check_discovery(remote, document(remote, token_endpoint=token_endpoint))


class OffHost(FakeIssuer):
    """A provider whose document sends the token request to another host."""

    def __init__(self, token_url: str) -> None:
        super().__init__()
        self.token_url = token_url

    def discovery(self) -> dict:
        return {**super().discovery(), "token_endpoint": self.token_url}


@pytest.fixture
def off_host():
    sink = FakeIssuer().start()
    # The same machine under another name: another host to Tessera.
    fake = OffHost(sink.url.replace("127.0.0.1", "localhost") + "/token").start()
    yield fake, sink
    fake.stop()
    sink.stop()


def test_endpoint_hosts_pins_the_endpoints(api, off_host, social):
    fake, sink = off_host
    social(fake, endpoint_hosts=[])
    response = authorize(api)
    assert response.status_code == 503
    assert response.json()["code"] == "social_provider_unavailable"
    assert SocialLogin.objects.count() == 0
    assert sink.requests == []


def test_endpoint_hosts_names_the_hosts_allowed(api, off_host, social):
    fake, _ = off_host
    social(fake, endpoint_hosts=["localhost"])
    assert start(api)["client_id"]
    social(fake)  # no list: any host the issuer's document names over https
    assert start(api)["client_id"]
