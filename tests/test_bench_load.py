"""The load scenario's judgement (bench/load_checks.py, bench/load.py), without locust
or a server: each checker on sample answers, the counting hasher, the verdicts on a
made-up run, and how its section of bench/RESULTS.md is written."""

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def bench():
    """bench/'s modules, imported as the scripts import them (bench/ on sys.path)."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        return {
            name: importlib.import_module(name)
            for name in ("load_checks", "load", "run", "benchsite.hashers")
        }
    finally:
        sys.path.remove(str(BENCH_DIR))


@pytest.fixture
def checks(bench):
    return bench["load_checks"]


def body(payload) -> bytes:
    return json.dumps(payload).encode()


def test_the_right_login_answer_gives_the_header(checks):
    answer = body({"token": "tsr1_abc", "user": {"username": "load-3-1"}})

    assert checks.token_login(200, answer, "load-3-1") == "Token tsr1_abc"


@pytest.mark.parametrize(
    ("status", "payload", "why"),
    [
        (200, {"token": "tsr1_abc", "user": {"username": "load-3-2"}}, "not 'load-3-1'"),
        (200, {"user": {"username": "load-3-1"}}, "no token"),
        (429, {"code": "throttled"}, "429 throttled, expected 200"),
    ],
)
def test_a_wrong_login_answer_says_why(checks, status, payload, why):
    with pytest.raises(checks.WrongAnswer, match=why) as raised:
        checks.token_login(status, body(payload), "load-3-1")

    assert not raised.value.server_error


def test_a_5xx_is_a_server_error_whatever_was_expected(checks):
    checkers = [lambda *a: checks.profile(*a, "u"), checks.refused, checks.burst_attempt]
    for checker in checkers:
        with pytest.raises(checks.WrongAnswer, match=r"503 \(server error\)") as raised:
            checker(503, body({"code": "service_unavailable"}))
        assert raised.value.server_error


def test_a_protected_endpoint_must_answer_for_the_user_who_logged_in(checks):
    checks.profile(200, body({"username": "load-0-0", "id": 1}), "load-0-0")

    with pytest.raises(checks.WrongAnswer, match="answered for 'load-0-1'"):
        checks.profile(200, body({"username": "load-0-1"}), "load-0-0")
    with pytest.raises(checks.WrongAnswer, match="401 token_revoked, expected 200"):
        checks.profile(401, body({"code": "token_revoked"}), "load-0-0")
    with pytest.raises(checks.WrongAnswer, match="not JSON"):
        checks.profile(200, b"<html>", "load-0-0")


def test_a_jwt_pair_is_checked_and_returned(checks):
    answer = body({"access": "a.b.c", "refresh": "r.s.t", "user": {"username": "load-1-0"}})

    assert checks.jwt_pair(200, answer, "load-1-0") == ("Bearer a.b.c", "r.s.t")
    assert checks.jwt_pair(200, body({"access": "d.e.f", "refresh": "u.v.w"})) == (
        "Bearer d.e.f",
        "u.v.w",
    )
    with pytest.raises(checks.WrongAnswer, match="no refresh"):
        checks.jwt_pair(200, body({"access": "a.b.c"}))


def test_the_session_list_must_mark_exactly_one_current_session(checks):
    checks.session_list(200, body([{"current": True}, {"current": False}]))

    with pytest.raises(checks.WrongAnswer, match="0 sessions marked current"):
        checks.session_list(200, body([{"current": False}]))
    with pytest.raises(checks.WrongAnswer, match="2 sessions marked current"):
        checks.session_list(200, body([{"current": True}, {"current": True}]))
    with pytest.raises(checks.WrongAnswer, match="not a list"):
        checks.session_list(200, body({"current": True}))


def test_after_logout_only_401_is_right(checks):
    checks.logged_out(204, b"")
    checks.refused(401, body({"code": "token_revoked"}))

    with pytest.raises(checks.WrongAnswer, match="200, expected 401"):
        checks.refused(200, body({"username": "load-0-0"}))
    with pytest.raises(checks.WrongAnswer, match="200, expected 204"):
        checks.logged_out(200, b"{}")
    with pytest.raises(checks.WrongAnswer, match="404, expected 204"):
        checks.logged_out(404, b"<html>Not Found</html>")


def test_burst_answers_are_sorted_by_whether_the_hasher_ran(checks):
    assert checks.burst_attempt(401, body({"code": "invalid_credentials"})) == checks.RAN_HASHER
    assert checks.burst_attempt(429, body({"code": "throttled"})) == checks.REFUSED
    # Failure-based lockout answers with its own code; it too refuses before the hasher.
    assert checks.burst_attempt(429, body({"code": "locked_out"})) == checks.REFUSED


@pytest.mark.parametrize(
    ("status", "payload", "why"),
    [
        (200, {"token": "tsr1_x", "user": {"username": "load-victim"}}, "200, expected 401"),
        (401, {"code": "token_revoked"}, "401 with code 'token_revoked'"),
        (429, {"code": "slow_down"}, "429 with code 'slow_down'"),
        (400, {"code": "invalid"}, "400 invalid, expected 401"),
    ],
)
def test_any_other_burst_answer_is_wrong(checks, status, payload, why):
    with pytest.raises(checks.WrongAnswer, match=why):
        checks.burst_attempt(status, body(payload))


def test_clients_and_burst_attempts_have_addresses_and_accounts_of_their_own(checks):
    clients = [checks.client_address(n) for n in range(300)]
    attempts = [checks.burst_address(n) for n in range(1000)]

    assert len(set(clients)) == 300 and len(set(attempts)) == 1000
    assert not set(clients) & set(attempts)
    assert checks.client_address(257) == "10.0.1.1"
    assert len(set(checks.accounts(200))) == 200 * checks.ACCOUNTS_PER_CLIENT
    assert checks.VICTIM not in checks.accounts(200)
    assert checks.account(7, checks.ACCOUNTS_PER_CLIENT) == checks.account(7, 0)


def test_a_sliding_limit_allows_its_burst_plus_one_per_interval_elapsed(checks):
    assert checks.gcra_allowance(120.0, 126.8, 5, 900) == 5
    assert checks.gcra_allowance(0.0, 179.9, 5, 900) == 5
    assert checks.gcra_allowance(0.0, 180.0, 5, 900) == 6


def test_the_counting_hasher_counts_each_run_once_by_whose_it_is(bench, monkeypatch):
    hashers = bench["benchsite.hashers"]
    counted = []

    class Counters:
        def incr(self, key):
            counted.append(key)

    monkeypatch.setattr(hashers, "counters", Counters)
    hasher = hashers.CountingPasswordHasher()

    encoded = hasher.encode("load-password-0123456789", hasher.salt())
    assert hasher.verify("load-password-0123456789", encoded)
    assert not hasher.verify(bench["load_checks"].burst_password(3), encoded)

    assert counted == [hashers.OTHER_RUNS_KEY, hashers.OTHER_RUNS_KEY, hashers.BURST_RUNS_KEY]


STATS_CSV = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
    "POST,POST login/,400,0,16,20.1,3.2,140.5,650,6.6,0.0,"
    "16,20,24,27,40,58,84,110,140,140,140\n"
    "POST,POST jwt/,250,2,18,21.0,3.9,99.1,1200,4.1,0.03,"
    "18,21,25,28,41,60,80,95,99,99,99\n"
    "GET,GET me/ after logout (JWT),0,0,0,0,0,0,0,0.0,0.0,"
    "N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\n"
    ",Aggregated,650,2,17,20.5,3.2,140.5,860,10.7,0.03,"
    "17,20,24,27,40,59,82,100,140,140,140\n"
)


@pytest.fixture
def stats(checks, tmp_path):
    path = tmp_path / "load_stats.csv"
    path.write_text(STATS_CSV)
    return checks.read_stats(path)


def test_locust_stats_are_read_per_endpoint_then_in_total(stats):
    login, jwt, empty, total = stats

    assert (login.name, login.requests, login.p50_ms, login.p99_ms) == ("POST login/", 400, 16, 110)
    assert login.max_ms == 140.5 and login.requests_per_second == 6.6
    assert empty.requests == 0 and empty.p50_ms != empty.p50_ms  # NaN: no request
    assert (total.name, total.failures) == ("All requests", 2)
    assert jwt.failures == 2


def made_up_run(bench, stats, **changes):
    load, checks = bench["load"], bench["load_checks"]
    summary = {
        "answers": {checks.RAN_HASHER: 5, checks.REFUSED: 295},
        "wrong": [],
        "started": 1_000_020.0,
        "ended": 1_000_021.5,
        "logins_sent": 660,
    }
    fields = {
        "stats": stats,
        "failures": [],
        "exceptions": [],
        "summary": summary,
        "burst_hasher_runs": 5,
        "other_hasher_runs": 648,
        "seconds": 61.0,
        **changes,
    }
    return load.Outcome(**fields)


@pytest.fixture
def judge(bench):
    args = bench["load"].parse_args(["--burst-attempts", "300"])
    with override_settings(TESSERA={"LOCKOUT_RATES": {"account": "5/15min"}}):
        yield lambda outcome: bench["load"].judge(outcome, args)


def test_a_clean_run_meets_every_target(bench, stats, judge):
    verdicts = judge(made_up_run(bench, stats))

    assert verdicts.met, verdicts.lines
    assert not any("missed" in line for line in verdicts.lines)


def test_a_burst_past_the_per_account_limit_is_missed(bench, stats, judge):
    checks = bench["load_checks"]
    summary = {
        "answers": {checks.RAN_HASHER: 6, checks.REFUSED: 294},
        "wrong": [],
        "started": 1_000_020.0,
        "ended": 1_000_021.5,
        "logins_sent": 660,
    }

    verdicts = judge(made_up_run(bench, stats, summary=summary, burst_hasher_runs=6))

    assert not verdicts.met
    assert any("ran the hasher" in line and "**missed**" in line for line in verdicts.lines)


def test_hasher_runs_not_seen_as_401s_are_missed(bench, stats, judge):
    verdicts = judge(made_up_run(bench, stats, burst_hasher_runs=4))

    assert not verdicts.met


def test_5xx_and_wrong_answers_are_counted_apart(bench, stats, judge):
    load = bench["load"]
    failures = [
        load.Failure("GET me/ (token)", "CatchResponseError('502 (server error)')", 2),
        load.Failure("GET me/ after logout (token)", "CatchResponseError('200, expected 401')", 1),
    ]

    verdicts = judge(made_up_run(bench, stats, failures=failures))

    assert not verdicts.met
    assert "- 5xx answers: 2 (target 0): **missed**" in verdicts.lines
    assert "- Wrong answers (and transport errors): 1 (target 0): **missed**" in verdicts.lines


def test_an_exception_in_the_scenario_itself_is_missed(bench, stats, judge):
    crash = bench["load"].Failure("scenario", "KeyError('token')", 1)

    verdicts = judge(made_up_run(bench, stats, exceptions=[crash]))

    assert not verdicts.met
    assert "- Exceptions in the scenario's own code: 1 (target 0): **missed**" in verdicts.lines


def test_logins_hashed_twice_are_missed(bench, stats, judge):
    # 648 logins answered 200 (400 + 250 - 2 failed), at most 660 sent.
    assert judge(made_up_run(bench, stats, other_hasher_runs=660)).met
    assert not judge(made_up_run(bench, stats, other_hasher_runs=661)).met
    assert not judge(made_up_run(bench, stats, other_hasher_runs=647)).met


def test_the_load_section_replaces_its_previous_run_and_leaves_the_rest(bench, tmp_path):
    load, run = bench["load"], bench["run"]
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nwrk tables\n")

    load.write_section(results, f"{run.LOAD_SECTION_HEADING}\n\nfirst\n")
    load.write_section(results, f"{run.LOAD_SECTION_HEADING}\n\nsecond\n")

    assert results.read_text() == (
        f"# Benchmark results\n\nwrk tables\n\n{run.LOAD_SECTION_HEADING}\n\nsecond\n"
    )


def test_the_benchmark_keeps_the_load_section_when_it_rewrites_the_file(bench, tmp_path):
    run = bench["run"]
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Benchmark results\n\nold\n\n{run.LOAD_SECTION_HEADING}\n\nload\n")

    run.write_results(results, "# Benchmark results\n\nnew\n")

    assert results.read_text() == (
        f"# Benchmark results\n\nnew\n\n{run.LOAD_SECTION_HEADING}\n\nload\n"
    )


def test_the_command_line_refuses_a_burst_after_the_end(bench, capsys):
    with pytest.raises(SystemExit):
        bench["load"].parse_args(["--duration", "10", "--burst-delay", "10"])

    assert "--burst-delay must be shorter than --duration" in capsys.readouterr().err


def test_a_quick_run_writes_no_file_and_a_full_one_writes_results(bench):
    load, run = bench["load"], bench["run"]

    assert load.parse_args(["--quick"]).output is None
    full = load.parse_args([])
    assert full.output == run.RESULTS_PATH
    assert (full.users, full.spawn_rate, full.duration) == (200, 50, 60)


@pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="locust (the bench extra) is not installed"
)
def test_the_locustfile_imports_and_defines_the_clients_and_the_burst():
    # In a process of its own: importing locust patches the standard library for gevent.
    probe = (
        "import locust, locustfile as f; "
        "assert issubclass(f.Client, locust.FastHttpUser); "
        "assert f.StuffingBurst.fixed_count == 7 and f.BURST_ATTEMPTS == 30; "
        "print('ok')"
    )
    env = {**os.environ, "LOAD_BURST_USERS": "7", "LOAD_BURST_ATTEMPTS": "30"}
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=BENCH_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"
