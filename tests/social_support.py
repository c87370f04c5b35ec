"""What the social sign-in tests share: providers configured against the fake provider
(tests/fake_issuer.py) and the steps of the redirect flow as a browser takes them."""

from __future__ import annotations

from rest_framework.test import APIClient

from tessera.services.social import flow

from .fake_issuer import CLIENT_ID, CLIENT_SECRET, FakeIssuer, query_of

SOCIAL = "/api/auth/social/"
EXCHANGE_URL = SOCIAL + "exchange/"
ACCOUNTS_URL = SOCIAL + "accounts/"
CALLBACK_PAGE = "http://localhost:3000/social/callback?code="
ERROR_PAGE = "http://localhost:3000/social/callback?error="
LINKED_PAGE = "http://localhost:3000/social/linked?provider="


def provider_entry(fake: FakeIssuer, kind: str = "oidc", **entry) -> dict:
    base = {"type": kind, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    if kind == "github":
        base.update(fake.github_urls())
    else:
        base["issuer"] = fake.url
    return {**base, **entry}


def binding_cookie(params: dict[str, str]) -> str:
    """The name of the cookie binding the sign-in of these parameters to its browser."""
    return "tessera_social_" + flow.binding_key_of_state(params["state"])


def authorize(client: APIClient, name: str = "acme", **query):
    return client.get(f"{SOCIAL}{name}/authorize/", query)


def start(client: APIClient, name: str = "acme", **query) -> dict[str, str]:
    """Begin a sign-in; the parameters the provider's authorize page receives."""
    response = authorize(client, name, **query)
    assert response.status_code == 302, response.content
    return query_of(response["Location"])


def start_link(client: APIClient, name: str = "acme", **headers):
    """Begin the linking of an identity: POST, as the signed-in page's form does."""
    return client.post(
        f"{SOCIAL}{name}/authorize/",
        "mode=link",
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


def callback(client: APIClient, name: str = "acme", **params):
    return client.get(f"{SOCIAL}{name}/callback/", params)


def back_from_provider(client: APIClient, fake: FakeIssuer, name: str = "acme", **query):
    """Start, sign in at the provider, come back: the callback's response."""
    params = start(client, name, **query)
    return callback(client, name, code=fake.approve(params), state=params["state"])


def refusal(response) -> str:
    """The error code the callback sent the browser to the error page with."""
    assert response.status_code == 302, response.content
    location = response["Location"]
    assert location.startswith(ERROR_PAGE), location
    return query_of(location)["error"]


def one_time_code(response) -> str:
    assert response.status_code == 302, response.content
    location = response["Location"]
    assert location.startswith(CALLBACK_PAGE), location
    return query_of(location)["code"]


def sign_in_code(client: APIClient, fake: FakeIssuer, name: str = "acme", **query) -> str:
    return one_time_code(back_from_provider(client, fake, name, **query))


def exchange(client: APIClient, code: str, **headers):
    return client.post(EXCHANGE_URL, {"code": code}, format="json", **headers)


def sign_in(client: APIClient, fake: FakeIssuer, name: str = "acme", **query) -> dict:
    """The whole redirect flow; the body of exchange/'s (successful) answer."""
    response = exchange(client, sign_in_code(client, fake, name, **query))
    assert response.status_code == 200, response.content
    return response.json()


def native(client: APIClient, name: str = "acme", **body):
    return client.post(f"{SOCIAL}{name}/token/", body, format="json")
