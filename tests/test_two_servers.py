"""Revoked on server A, refused by server B at once: two gunicorn servers, one Redis.

Each kind of revocation runs TRIALS times. A trial creates a credential, has every
worker process of B serve it (so whatever a process keeps in memory is warm), revokes
it through A or through a process outside any server, then asks every worker of B
again: each must refuse it, with no delay allowed. Trials run in THREADS accounts at
once, each with its own user and connections.
"""

from __future__ import annotations

import pytest

from .realservers.flows import (
    JWT_REFRESH,
    LOGOUT,
    LOGOUT_ALL,
    NOT_ME,
    PASSWORD_CHANGE,
    PASSWORD_RESET_CONFIRM,
    SESSIONS,
    TOKENS,
    Account,
    assert_no_wrong_answers,
    expect,
    open_accounts,
    run_trials,
)
from .realservers.reporting import site_for_tests

pytestmark = pytest.mark.realservers

TRIALS = 200
THREADS = 4
ROLE_URL = "/api/manager-content/"
ROLE = "Manager"
ADMIN_SESSIONS = "/admin/tessera/session/"


@pytest.fixture(scope="module")
def site(request):
    with site_for_tests(request.config) as running:
        yield running


@pytest.fixture
def accounts(site, request):
    """THREADS accounts named after the test, each with a user of its own."""
    opened: list[Account] = []

    def open_for_test(**fields) -> list[Account]:
        new = open_accounts(site, request.node.name, THREADS, **fields)
        opened.extend(new)
        return new

    yield open_for_test
    for account in opened:
        account.close()


def test_logout(accounts):
    def trial(account: Account, number: int):
        credential = account.login(account.a)
        account.warm(account.b, credential.token)
        expect(account.a.request("POST", LOGOUT, token=credential.token), 204)
        return account.wrong_answers(account.b, credential.token)

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_logout_all(accounts):
    def trial(account: Account, number: int):
        this, other = account.login(account.a), account.login(account.a)
        account.warm(account.b, this.token, other.token)
        expect(account.a.request("POST", LOGOUT_ALL, token=this.token), 204)
        return [
            *account.wrong_answers(account.b, this.token),
            *account.wrong_answers(account.b, other.token),
        ]

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_deleting_a_session(accounts):
    managers: dict[str, str] = {}

    def trial(account: Account, number: int):
        if account.username not in managers:
            managers[account.username] = account.login(account.a).token
        credential = account.login(account.a)
        account.warm(account.b, credential.token)
        path = f"{SESSIONS}{credential.session_id}/"
        expect(account.a.request("DELETE", path, token=managers[account.username]), 204)
        return account.wrong_answers(account.b, credential.token)

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_deleting_a_personal_access_token(accounts):
    logins: dict[str, str] = {}

    def trial(account: Account, number: int):
        if account.username not in logins:
            logins[account.username] = account.login(account.a)
        login = logins[account.username]
        credential = account.personal_token(account.a, login)
        account.warm(account.b, credential.token)
        path = f"{TOKENS}{credential.session_id}/"
        expect(account.a.request("DELETE", path, token=login.token), 204)
        return account.wrong_answers(account.b, credential.token)

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_password_change_ends_the_other_sessions(accounts):
    def trial(account: Account, number: int):
        this, other = account.login(account.a), account.login(account.a)
        account.warm(account.b, other.token)
        new_password = account.next_password()
        body = {"current_password": account.password, "new_password": new_password}
        expect(account.a.request("POST", PASSWORD_CHANGE, token=this.token, body=body), 204)
        account.password = new_password
        return [
            *account.wrong_answers(account.b, other.token),
            # The session that changed the password goes on.
            *account.wrong_answers(account.b, this.token, status=200),
        ]

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_password_reset(accounts):
    def trial(account: Account, number: int):
        credential = account.login(account.a)
        link = account.reset_link(account.a)
        account.warm(account.b, credential.token)
        new_password = account.next_password()
        body = {**link, "new_password": new_password}
        expect(account.a.request("POST", PASSWORD_RESET_CONFIRM, body=body), 204)
        account.password = new_password
        return account.wrong_answers(account.b, credential.token)

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_the_link_of_a_new_device_email(accounts):
    def trial(account: Account, number: int):
        # Each login is from a new device (none is presented) but the account's first.
        credential = account.login(account.a)
        token = account.not_me_link(credential.session_id)
        account.warm(account.b, credential.token)
        expect(account.a.request("POST", NOT_ME, body={"token": token}), 200)
        return account.wrong_answers(account.b, credential.token)

    accounts_with_a_first_login = accounts()
    for account in accounts_with_a_first_login:
        account.login(account.a)
    assert_no_wrong_answers(run_trials(accounts_with_a_first_login, trial, TRIALS))


def test_deactivation_by_another_process(site, accounts):
    def trial(account: Account, number: int):
        credential = account.login(account.a)
        account.warm(account.b, credential.token)
        site.control("set_active", username=account.username, active=False)
        problems = account.wrong_answers(account.b, credential.token)
        site.control("set_active", username=account.username, active=True)
        return problems

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_user_deletion_by_another_process(site, accounts):
    def trial(account: Account, number: int):
        account.new_user(f"{account.name}.{number}")
        credential = account.login(account.a)
        account.warm(account.b, credential.token)
        site.control("delete_user", username=account.username)
        return account.wrong_answers(account.b, credential.token)

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_role_added_then_removed_by_another_process(site, accounts):
    def trial(account: Account, number: int):
        credential = account.login(account.a)
        account.warm(account.b, credential.token, path=ROLE_URL, status=403)
        site.control("add_role", username=account.username, role=ROLE)
        granted = account.wrong_answers(account.b, credential.token, path=ROLE_URL, status=200)
        site.control("remove_role", username=account.username, role=ROLE)
        removed = account.wrong_answers(account.b, credential.token, path=ROLE_URL, status=403)
        return [*granted, *removed]

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_refresh_token_reuse_ends_the_session(accounts):
    def trial(account: Account, number: int):
        first = account.jwt_login(account.a)
        account.warm(account.b, first.token)
        second = account.rotate(account.a, first)
        # Rotation drops the session's cached copy, which both access tokens share.
        account.warm(account.b, second.token)
        reused = account.a.request("POST", JWT_REFRESH, body={"refresh": first.refresh})
        expect(reused, 401)
        assert reused.code == "token_reused", reused
        return [
            *account.wrong_answers(account.b, first.token),
            *account.wrong_answers(account.b, second.token),
        ]

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def test_jwt_access_token_after_logout(accounts):
    def trial(account: Account, number: int):
        credential = account.jwt_login(account.a)
        account.warm(account.b, credential.token)
        expect(account.a.request("POST", LOGOUT, token=credential.token), 204)
        return account.wrong_answers(account.b, credential.token)

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))


def admin_login(account: Account) -> dict[str, str]:
    """Sign in to the Django admin on A; the cookies of that browser session."""
    page = expect(account.a.request("GET", "/admin/login/"), 200)
    cookies = dict(page.cookies)
    form = {
        "username": account.username,
        "password": account.password,
        "csrfmiddlewaretoken": cookies["csrftoken"],
        "next": "/admin/",
    }
    signed_in = account.a.request("POST", "/admin/login/", form=form, headers=cookie(cookies))
    expect(signed_in, 302)
    return {**cookies, **signed_in.cookies}


def cookie(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def test_the_admin_revoke_action(accounts):
    admin_cookies: dict[str, dict[str, str]] = {}

    def trial(account: Account, number: int):
        if account.username not in admin_cookies:
            admin_cookies[account.username] = admin_login(account)
        cookies = admin_cookies[account.username]
        credential = account.login(account.a)
        account.warm(account.b, credential.token)
        form = {
            "action": "revoke",
            "_selected_action": credential.session_id,
            "csrfmiddlewaretoken": cookies["csrftoken"],
        }
        revoked = account.a.request("POST", ADMIN_SESSIONS, form=form, headers=cookie(cookies))
        expect(revoked, 302)
        return account.wrong_answers(account.b, credential.token)

    assert_no_wrong_answers(run_trials(accounts(superuser=True), trial, TRIALS))


def test_a_session_ended_long_ago_and_deleted_by_clearsessions(site, accounts):
    def trial(account: Account, number: int):
        credential = account.login(account.a)
        account.warm(account.b, credential.token)
        site.control("end_long_ago", session_id=credential.session_id, days=30)
        # The other thread's run of the command may be the one that deletes it.
        report = site.control("clearsessions")
        assert site.control("session_state", session_id=credential.session_id) == "gone", report
        return account.wrong_answers(account.b, credential.token)

    assert_no_wrong_answers(run_trials(accounts(), trial, TRIALS))
