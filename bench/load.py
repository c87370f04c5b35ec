"""Bounded load scenario, run by ``make load``: many clients and a stuffing burst.

Serves ``bench/benchsite`` (its BENCH_LOAD configuration) with gunicorn on loopback,
as bench/run.py does, and runs bench/locustfile.py against it headless: simulated
clients log in, call protected endpoints, refresh JWTs and log out, every answer
checked, while a credential-stuffing burst is sent against one account. The server's
password hasher counts its runs in Redis, so the run tells how many attempts of the
burst reached it. Writes the section "Load (locust)" of bench/RESULTS.md (the rest of
the file is bench/run.py's) and exits non-zero if any answer was wrong or the burst got
further than the per-account limit allows. bench/README.md explains what is measured.

It uses bench/run.py's database and Redis db (BENCH_DATABASE_URL, BENCH_REDIS_URL) and
wipes both at the start.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import load_checks as checks
import run

LOCUSTFILE = run.BENCH_DIR / "locustfile.py"
LOAD_SERVER = {"BENCH_LOAD": "1"}
# Longer than any pause of a client between two requests, so that gunicorn never closes
# a connection just as the client sends on it.
KEEP_ALIVE_SECONDS = 10
# The share of all connections one worker may hold: together the workers take every
# client's, however unevenly they share them.
WORKER_CONNECTION_SHARE = 0.6
# Seconds locust may take beyond the run (start-up, stopping the users, the report).
LOCUST_GRACE_SECONDS = 120

FULL = {
    "users": 200,
    "spawn_rate": 50,
    "duration": 60,
    "burst_users": 20,
    "burst_attempts": 300,
    "burst_delay": 20,
}
# Long enough for every client to go through both journeys.
QUICK = {
    "users": 20,
    "spawn_rate": 20,
    "duration": 40,
    "burst_users": 5,
    "burst_attempts": 50,
    "burst_delay": 5,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load Tessera with locust: clients logging in and out, and a "
        "credential-stuffing burst against one account.",
    )
    parser.add_argument("--users", type=int, help="simulated clients (200)")
    parser.add_argument("--spawn-rate", type=int, help="clients started per second (50)")
    parser.add_argument("--duration", type=int, help="seconds of load (60)")
    parser.add_argument("--burst-users", type=int, help="users sending the burst (20)")
    parser.add_argument("--burst-attempts", type=int, help="wrong passwords in the burst (300)")
    parser.add_argument("--burst-delay", type=int, help="seconds into the run it starts (20)")
    parser.add_argument("--port", type=int, help="the server's port (default: a free one)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20 clients for 40 s, a burst of 50; writes no file unless --output",
    )
    parser.add_argument(
        "--output", type=Path, help="where to write the section (default bench/RESULTS.md)"
    )
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.output is None and not args.quick:
        args.output = run.RESULTS_PATH
    limits = {
        "users": (1, 2_000),
        "spawn_rate": (1, 1_000),
        "duration": (5, 600),
        "burst_users": (1, 200),
        "burst_attempts": (1, 100_000),
        "burst_delay": (0, 600),
    }
    for name, (low, high) in limits.items():
        if not low <= getattr(args, name) <= high:
            parser.error(f"--{name.replace('_', '-')} must be between {low} and {high}")
    if args.burst_delay >= args.duration:
        parser.error("--burst-delay must be shorter than --duration")
    return args


# --- Data ---------------------------------------------------------------------------


def prepare(clients: int) -> None:
    """Fresh schema, the clients' accounts and the victim's; no hasher run counted."""
    from benchsite.hashers import BURST_RUNS_KEY, OTHER_RUNS_KEY, counters
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    cache.clear()
    # One hash for every account: the password is the same, and the hasher is cheap.
    encoded = make_password(checks.PASSWORD)
    User.objects.bulk_create(
        User(username=username, password=encoded)
        for username in [*checks.accounts(clients), checks.VICTIM]
    )
    counters().delete(BURST_RUNS_KEY, OTHER_RUNS_KEY)


def hasher_runs() -> tuple[int, int]:
    """The server's hasher runs so far: for the burst, for everything else."""
    from benchsite.hashers import BURST_RUNS_KEY, OTHER_RUNS_KEY, counters

    burst, other = counters().mget([BURST_RUNS_KEY, OTHER_RUNS_KEY])
    return int(burst or 0), int(other or 0)


def per_account_rate():
    from tessera.conf import tessera_settings
    from tessera.services.buckets import Rate

    return Rate.parse(tessera_settings.LOCKOUT_RATES["account"])


# --- The run ------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    name: str
    error: str
    occurrences: int

    @property
    def server_error(self) -> bool:
        return "(server error)" in self.error


@dataclass(frozen=True)
class Outcome:
    stats: list[checks.EndpointStats]
    failures: list[Failure]
    exceptions: list[Failure]
    summary: dict  # what locust wrote to LOAD_SUMMARY
    burst_hasher_runs: int
    other_hasher_runs: int
    seconds: float


def read_failures(path: Path) -> list[Failure]:
    with path.open(newline="") as handle:
        return [
            Failure(row["Name"], row["Error"], int(row["Occurrences"]))
            for row in csv.DictReader(handle)
        ]


def read_exceptions(path: Path) -> list[Failure]:
    """Exceptions raised by the scenario's own code (a bug in it, not an answer)."""
    with path.open(newline="") as handle:
        return [
            Failure("scenario", row["Message"], int(row["Count"])) for row in csv.DictReader(handle)
        ]


def run_locust(base_url: str, args: argparse.Namespace, directory: Path) -> Outcome:
    summary_path = directory / "summary.json"
    prefix = directory / "load"
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--users", str(args.users + args.burst_users),
        "--spawn-rate", str(args.spawn_rate),
        "--run-time", f"{args.duration}s",
        "--host", base_url,
        "--csv", str(prefix),
        "--only-summary",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    env = {
        **os.environ,
        "LOAD_CLIENTS": str(args.users),
        "LOAD_BURST_USERS": str(args.burst_users),
        "LOAD_BURST_ATTEMPTS": str(args.burst_attempts),
        "LOAD_BURST_DELAY": str(args.burst_delay),
        "LOAD_SUMMARY": str(summary_path),
    }
    started = time.monotonic()
    log = directory / "locust.log"
    with log.open("w") as output:
        try:
            # Locust exits 1 when a request failed: the failures are read from its files.
            subprocess.run(
                command,
                cwd=run.BENCH_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=args.duration + LOCUST_GRACE_SECONDS,
            )
        except subprocess.TimeoutExpired as exc:
            raise run.BenchError(f"locust did not finish:\n{tail(log)}") from exc
    seconds = time.monotonic() - started
    stats_path = Path(f"{prefix}_stats.csv")
    if not stats_path.exists() or not summary_path.exists():
        raise run.BenchError(f"locust wrote no results:\n{tail(log)}")
    burst_runs, other_runs = hasher_runs()
    return Outcome(
        checks.read_stats(stats_path),
        read_failures(Path(f"{prefix}_failures.csv")),
        read_exceptions(Path(f"{prefix}_exceptions.csv")),
        json.loads(summary_path.read_text()),
        burst_runs,
        other_runs,
        seconds,
    )


def children_cpu_seconds(parent: int) -> float | None:
    """CPU time (user and system) used so far by the children of process ``parent``
    (gunicorn's workers), from /proc; None where there is no /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The fields after the command name, which is in parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            total += int(fields[11]) + int(fields[12])
            found = True
    return total / ticks if found else None


def tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-30:])


# --- Report -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdicts:
    lines: list[str]
    met: bool


def judge(outcome: Outcome, args: argparse.Namespace) -> Verdicts:
    rate = per_account_rate()
    burst = outcome.summary
    answers = burst["answers"]
    ran_hasher = answers.get(checks.RAN_HASHER, 0)
    refused = answers.get(checks.REFUSED, 0)
    lasted = burst["ended"] - burst["started"] if burst["started"] and burst["ended"] else 0.0
    allowed = checks.gcra_allowance(0.0, lasted, rate.count, rate.seconds)
    server_errors = sum(f.occurrences for f in outcome.failures if f.server_error)
    wrong = sum(f.occurrences for f in outcome.failures if not f.server_error)
    crashes = sum(e.occurrences for e in outcome.exceptions)
    logins = logins_served(outcome.stats)
    sent = burst["logins_sent"]
    results = [
        ("5xx answers", server_errors, "0", server_errors == 0),
        ("Wrong answers (and transport errors)", wrong, "0", wrong == 0),
        ("Exceptions in the scenario's own code", crashes, "0", crashes == 0),
        (
            "Burst attempts answered",
            f"{ran_hasher + refused + len(burst['wrong'])} of {args.burst_attempts}",
            f"{args.burst_attempts}",
            ran_hasher + refused + len(burst["wrong"]) == args.burst_attempts,
        ),
        (
            "Burst attempts that ran the hasher (the server's count)",
            outcome.burst_hasher_runs,
            f"≤ {allowed}: {rate.count} per {rate.seconds} s, sliding, over {lasted:.1f} s",
            outcome.burst_hasher_runs <= allowed,
        ),
        (
            "Burst attempts answered 401 (password checked) vs the hasher's count",
            f"{ran_hasher} vs {outcome.burst_hasher_runs}",
            "equal",
            ran_hasher == outcome.burst_hasher_runs,
        ),
        (
            "Hasher runs for the clients' logins",
            f"{outcome.other_hasher_runs} for {logins} logins answered 200, {sent} sent",
            "one run per login: from the logins answered to those sent, some being in "
            "flight when the run stopped",
            logins <= outcome.other_hasher_runs <= sent,
        ),
    ]
    lines = [
        f"- {label}: {shown} (target {target}): {'met' if met else '**missed**'}"
        for label, shown, target, met in results
    ]
    return Verdicts(lines, all(met for *_, met in results))


LOGIN_NAMES = ("POST login/", "POST jwt/")


def logins_served(stats: list[checks.EndpointStats]) -> int:
    return sum(s.requests - s.failures for s in stats if s.name in LOGIN_NAMES)


def format_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}"


def versions() -> str:
    import redis
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    redis_server = redis.Redis.from_url(run.REDIS_URL).info("server")["redis_version"]
    packages = ["drf-tessera", "Django", "locust", "gunicorn", "psycopg", "redis"]
    listed = [f"Python {platform.python_version()}"]
    listed += [f"{name} {version(name)}" for name in packages]
    listed += [f"PostgreSQL {postgres}", f"Redis {redis_server}"]
    return ", ".join(listed)


def render(args: argparse.Namespace, outcome: Outcome, verdicts: Verdicts, header: list[str]):
    from django.conf import settings

    rates = {
        "ip": settings.TESSERA["LOGIN_THROTTLE_RATES"]["ip"],
        "account": settings.TESSERA["LOCKOUT_RATES"]["account"],
    }
    low, high = checks.PAUSE_SECONDS
    calls = checks.CALLS_PER_LOGIN
    shortest_journey = checks.PAUSES_PER_JOURNEY * low
    burst = outcome.summary
    answers = burst["answers"]
    lasted = (
        f"{burst['ended'] - burst['started']:.2f} s"
        if burst["started"] and burst["ended"]
        else "unfinished"
    )
    lines = [
        *header,
        f"- Setup: gunicorn, {run.WORKERS} gthread workers × 1 thread, keep-alive "
        f"{KEEP_ALIVE_SECONDS} s; PostgreSQL with persistent connections; Redis cache "
        "behind Tessera's near cache; locust headless in one process (`FastHttpUser`), "
        f"{args.users} clients started at {args.spawn_rate} a second, {args.duration} s "
        f"in all, each pausing {low:g}–{high:g} s between two requests; all on 127.0.0.1.",
        "- Password hasher: `MD5PasswordHasher`, counting its runs in Redis (the cost of "
        "Argon2 is in the login section above, and would make this run measure it); the "
        "accounts' hashes have its full-length salt, so no login rehashes.",
        f"- Login rates: failures per account `{rates['account']}` (the lockout), "
        f"attempts per IP `{rates['ip']}` (Tessera's defaults). All requests come from "
        "127.0.0.1, so each client sends an address of its own in X-Forwarded-For "
        "(`NUM_PROXIES` 1, locust standing for the reverse proxy) and logs in at most "
        f"{60 / shortest_journey:.0f} times a "
        f"minute (a journey pauses {shortest_journey:g} s or more), to its own "
        f"{checks.ACCOUNTS_PER_CLIENT} accounts in turn: no client is throttled. The "
        "burst's attempts come from other addresses, one each, so only the per-account "
        "rate can stop them, and their failures count against no client.",
        "",
        "Each client repeats two journeys in turn (half of them start with each), every "
        "answer checked (the status, and "
        "the user it is for): log in for an opaque token, `GET me/` and `GET sessions/` "
        f"{calls} times each, log out, then the token again (401); log in for a JWT pair, "
        f"`GET me/` {calls} times, refresh, `GET me/` {calls} times with the new access "
        "token, log out, then the access token (401) and the refresh token (401) again.",
        "",
        "#### Answers and the burst",
        "",
        *verdicts.lines,
        "",
        f"The burst: {args.burst_attempts} wrong passwords for one account from "
        f"{args.burst_users} users at once, {args.burst_delay} s into the run, each attempt "
        f"from a new address; it lasted {lasted}. Answers: "
        f"{answers.get(checks.RAN_HASHER, 0)} × 401 `invalid_credentials`, "
        f"{answers.get(checks.REFUSED, 0)} × 429 (`throttled` or `locked_out`), "
        f"{len(burst['wrong'])} other.",
    ]
    if outcome.failures or outcome.exceptions:
        lines += ["", "Failures (at most 10 kinds):", ""]
        lines += [
            f"- {f.name}: {f.error} × {f.occurrences}"
            for f in sorted([*outcome.failures, *outcome.exceptions], key=lambda f: -f.occurrences)[
                :10
            ]
        ]
    lines += [
        "",
        "#### Latency per endpoint",
        "",
        "Locust's percentiles (it rounds response times above 100 ms to two significant digits).",
        "",
        "| Endpoint | requests | requests/s | failures | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s.name} | {s.requests:,} | {s.requests_per_second:.1f} | {s.failures:,} | "
        f"{format_ms(s.p50_ms)} | "
        f"{format_ms(s.p99_ms)} | {format_ms(s.max_ms)} |"
        for s in outcome.stats
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Put ``section`` in place of the load section of ``path``, or after its end."""
    previous = path.read_text() if path.exists() else ""
    start = previous.find(run.LOAD_SECTION_HEADING)
    kept = previous[:start] if start >= 0 else previous
    path.write_text((kept.rstrip("\n") + "\n\n" if kept else "") + section)


# --- Main ---------------------------------------------------------------------------


def load_test(args: argparse.Namespace) -> tuple[str, bool]:
    run.check_settings({"load": LOAD_SERVER})
    run.ensure_database()
    os.environ.update(LOAD_SERVER)

    import django

    django.setup()
    from django.db import connections

    prepare(args.users)
    header = [
        run.LOAD_SECTION_HEADING,
        "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {run.machine()}",
        f"- Versions: {versions()}",
        f"- Code: {run.code_revision()}",
        f"- Command: `{shlex.join(['bench/load.py', *sys.argv[1:]])}` (as run by "
        "`make load`: `.venv/bin/python bench/load.py`)",
    ]
    connections.close_all()
    connections_per_worker = math.ceil((args.users + args.burst_users) * WORKER_CONNECTION_SHARE)
    extra_args = ("--keep-alive", str(KEEP_ALIVE_SECONDS))
    with (
        run.running_servers(
            {"load": LOAD_SERVER}, connections_per_worker, args.port, extra_args
        ) as servers,
        tempfile.TemporaryDirectory(prefix="tessera-load-") as directory,
    ):
        run.progress(f"locust: {args.users} clients for {args.duration} s")
        load_before = os.getloadavg()[0]
        master = servers["load"].process.pid
        cpu_before = children_cpu_seconds(master)
        outcome = run_locust(servers["load"].base_url, args, Path(directory))
        cpu_after = children_cpu_seconds(master)
        load_after = os.getloadavg()[0]
    run.progress(f"finished in {outcome.seconds:.0f} s")
    # Anything else running on the machine slows every answer: say how busy it was.
    header.append(
        f"- Duration of the locust run: {outcome.seconds:.0f} s; load average (1 min) "
        f"before it: {load_before:.2f}, at its end (the run's own load included): "
        f"{load_after:.2f}."
    )
    total = outcome.stats[-1].requests if outcome.stats else 0
    if cpu_before is not None and cpu_after is not None and total:
        # The number that carries over to a machine shared with other work: latencies
        # grow with what else runs, the work per request does not.
        header.append(
            f"- Server CPU: {cpu_after - cpu_before:.1f} s for {total:,} requests, "
            f"{(cpu_after - cpu_before) / total * 1000:.1f} ms a request (gunicorn's "
            "workers; PostgreSQL and Redis not included)."
        )
    verdicts = judge(outcome, args)
    return render(args, outcome, verdicts, header), verdicts.met


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        section, met = load_test(args)
    except run.BenchError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    print(section)
    if args.output is not None:
        write_section(args.output, section)
        run.progress(f"written to {args.output}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
