"""Side-by-side benchmark of DRF authentication schemes, run by ``make bench``.

Serves ``bench/benchsite`` with gunicorn on loopback, loads each scheme's URL in turn
with wrk, interleaved over several rounds, and tabulates median requests/s, p50/p99
latency and the ratio to the unauthenticated ceiling. Then it sets the cost of a login
beside the password hasher's alone, and times how long a logout on one server takes to
be refused by another. It prints the report and writes it to bench/RESULTS.md.
bench/README.md explains what is measured.

The database (BENCH_DATABASE_URL, default ``tessera_bench`` on local PostgreSQL) and the
Redis database (BENCH_REDIS_URL, default db 9) are the benchmark's own: both are wiped
at the start of every run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import math
import multiprocessing
import os
import platform
import queue
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
# bench/load.py's section of RESULTS.md, written by that script only.
LOAD_SECTION_HEADING = "## Load (locust)"
DATABASE_URL = os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tessera_bench"
)
REDIS_URL = os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
sys.path.insert(0, str(BENCH_DIR))

HOST = "127.0.0.1"
WORKERS = 2
# Each server configuration is one gunicorn process tree; the value is the environment
# it adds (read by benchsite.settings).
SERVERS: dict[str, dict[str, str]] = {
    "main": {},
    "no-near-cache": {"BENCH_NEAR_CACHE": "off"},
    "uncached": {"BENCH_TESSERA_CACHE": "none"},
    "stateless": {"BENCH_TESSERA_JWT_STATELESS": "1"},
}
# Servers A and B of the revocation test: the main configuration with a fast hasher, so
# that the login opening each trial does not take most of its time.
REVOCATION_SERVER = {"BENCH_FAST_HASHER": "1"}
# Variants measured with many live tokens for the user (knox reads all of them per
# request) and with a large Session table.
TOKEN_SCENARIO = ("tessera", "knox")
ROW_SCENARIO = ("tessera", "tessera-uncached")
FILLER_USERS = 1_000
# The accounts that log in: one with the configured hasher, one for the revocation test.
LOGIN_USER = "bench-login"
REVOCATION_USER = "bench-revoke"
PASSWORD = "bench-password-0123456789"
# The revocation test presents its tokens to this variant's URL on B.
REVOCATION_VARIANT = "tessera"
# Requests each of B's workers serves a token before it is revoked, and how long B may
# keep accepting it before the trial counts as never refused.
WARM_REQUESTS = 3
POLL_LIMIT_SECONDS = 2.0
TARGET_TESSERA_CEILING_RATIO = 0.88
TARGET_JWT_CEILING_RATIO = 0.85
TARGET_KNOX_RATIO = 3.0
TARGET_REVOCATION_P99_MS = 5.0
TARGET_LOGIN_HASHER_RATIO = 0.90
READY_ATTEMPTS = 150
READY_INTERVAL = 0.1

# Many short rounds rather than a few long ones: a burst of load from another process
# then spoils one round of a few URLs, and the medians pass over it.
FULL = {
    "duration": 3,
    "warmup": 2,
    "rounds": 7,
    "large_rows": 1_000_000,
    # A login takes about 0.1 s of a worker: in long runs the requests wrk cuts off at
    # the end (at most one per worker) cost the login rate 1 % at most.
    "login_duration": 10,
    "login_rounds": 3,
    "revocation_trials": 1_000,
    "revocation_time_cap": 180,
}
QUICK = {
    "duration": 1,
    "warmup": 1,
    "rounds": 1,
    "large_rows": 10_000,
    "login_duration": 2,
    "login_rounds": 1,
    "revocation_trials": 100,
    "revocation_time_cap": 20,
}


class BenchError(Exception):
    """A condition that makes the numbers meaningless; the run stops and says why."""


# --- Command line -------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark Tessera against DRF token, knox and simplejwt on gunicorn.",
    )
    parser.add_argument("--duration", type=int, help="seconds per measured run (default 3)")
    parser.add_argument("--warmup", type=int, help="seconds of discarded load per URL (2)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds, medians reported (7)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--many-tokens", type=int, default=100, help="live tokens (100)")
    parser.add_argument("--small-rows", type=int, default=1_000, help="session rows (1000)")
    parser.add_argument("--large-rows", type=int, help="session rows in the second phase (1000000)")
    parser.add_argument("--login-duration", type=int, help="seconds per login run (10)")
    parser.add_argument("--login-rounds", type=int, help="rounds of login vs hasher (3)")
    parser.add_argument("--revocation-trials", type=int, help="revocation trials (1000)")
    parser.add_argument(
        "--revocation-time-cap", type=int, help="seconds after which trials stop (180)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: one round of 1 s, 10000 rows, 100 revocation trials; writes no "
        "file unless --output",
    )
    parser.add_argument(
        "--output", type=Path, help="where to write the table (default bench/RESULTS.md)"
    )
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.output is None and not args.quick:
        args.output = RESULTS_PATH
    limits = {
        "duration": (1, 300),
        "warmup": (0, 60),
        "rounds": (1, 20),
        # Fewer than two per worker would leave a worker idle (see Server).
        "connections": (2 * WORKERS, 256),
        "many_tokens": (2, 10_000),
        "small_rows": (args.many_tokens + 10, 10_000_000),
        "large_rows": (args.small_rows + 1, 10_000_000),
        "login_duration": (1, 300),
        "login_rounds": (1, 20),
        "revocation_trials": (1, 100_000),
        "revocation_time_cap": (1, 3_600),
    }
    for name, (low, high) in limits.items():
        if not low <= getattr(args, name) <= high:
            parser.error(f"--{name.replace('_', '-')} must be between {low} and {high}")
    return args


# --- Load generation ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One URL under load: a variant, possibly in a scenario (many tokens, many rows)."""

    key: str
    url: str
    header: str | None
    # A wrk Lua script, for requests other than a GET.
    script: Path | None = None
    # Longest a response may take before wrk counts an error; None for wrk's 2 s.
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def require_wrk() -> str:
    if shutil.which("wrk") is None:
        raise BenchError(
            "wrk is not installed. On Debian or Ubuntu: `apt-get update && apt-get install "
            "-y wrk` (as root); on macOS: `brew install wrk`. `make bench` installs it "
            "itself where apt-get is available."
        )
    banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    first_line = (banner.stdout or banner.stderr).splitlines()[0]
    return first_line.split()[1] if len(first_line.split()) > 1 else first_line


def load(target: Target, seconds: int, connections: int) -> Run:
    """Run wrk once against ``target``; every response must be a 2xx."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if target.header:
        command += ["-H", f"Authorization: {target.header}"]
    if target.script:
        command += ["-s", str(target.script)]
    if target.timeout_seconds:
        command += ["--timeout", f"{target.timeout_seconds}s"]
    try:
        completed = subprocess.run(
            [*command, target.url],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"wrk failed on {target.key}: {exc}") from exc
    return parse_wrk(target.key, completed.stdout)


def parse_wrk(key: str, output: str) -> Run:
    rejected = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if rejected:
        raise BenchError(f"{key}: {rejected[1]} responses were not 2xx:\n{output}")
    errors = re.search(r"Socket errors: (.*)", output)
    if errors:
        raise BenchError(f"{key}: socket errors ({errors[1]}):\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    percentiles = {
        match[1]: float(match[2]) * LATENCY_UNITS_MS[match[3]]
        for match in re.finditer(r"^\s*(50|99)\.?0*%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    if rate is None or set(percentiles) != {"50", "99"}:
        raise BenchError(f"{key}: could not read wrk's output:\n{output}")
    if float(rate[1]) == 0:
        raise BenchError(f"{key}: no request completed:\n{output}")
    return Run(float(rate[1]), percentiles["50"], percentiles["99"])


def measure(targets: list[Target], args: argparse.Namespace, phase: str) -> dict[str, list[Run]]:
    """Warm every target up, then run them all once per round, starting each round one
    target later, so that drift in the machine's speed is spread over all of them."""
    if args.warmup:
        for target in targets:
            load(target, args.warmup, args.connections)
    results: dict[str, list[Run]] = {target.key: [] for target in targets}
    for round_index in range(args.rounds):
        shift = round_index % len(targets)
        for target in targets[shift:] + targets[:shift]:
            results[target.key].append(load(target, args.duration, args.connections))
        progress(f"{phase}: round {round_index + 1}/{args.rounds} done")
    return results


# --- Servers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def status_of(url: str, header: str | None, json_body: bytes | None = None) -> int:
    """The status of a GET, or of a POST of ``json_body``, on a new connection."""
    headers = {"Authorization": header} if header else {}
    if json_body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=json_body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Connection:
    """One keep-alive HTTP/1.1 connection. Sending and reading the answer are separate
    steps, so requests on several connections can be in flight at once."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection(HOST, port, timeout=30)
        self.request: tuple[str, str, str | None, dict[str, str]] | None = None

    def send(self, method: str, path: str, header: str | None = None, body: str | None = None):
        headers = {"Authorization": header} if header else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.request = (method, path, body, headers)
        try:
            self.http.request(method, path, body=body, headers=headers)
        except ConnectionError:
            self.resend()

    def receive(self) -> tuple[int, bytes]:
        try:
            response = self.http.getresponse()
        except ConnectionError:
            self.resend()
            response = self.http.getresponse()
        return response.status, response.read()

    def resend(self) -> None:
        # gunicorn closes a connection left idle past its keep-alive timeout without
        # reading the request that arrives as it closes: sending it again is safe.
        self.http.close()
        method, path, body, headers = self.request
        self.http.request(method, path, body=body, headers=headers)

    def exchange(
        self, method: str, path: str, header: str | None = None, body: str | None = None
    ) -> tuple[int, bytes]:
        self.send(method, path, header, body)
        return self.receive()

    def close(self) -> None:
        self.http.close()


def check_settings(configurations: dict[str, dict[str, str]]) -> None:
    """Django's system checks under each server configuration's settings.

    gunicorn does not run them, and Tessera ignores a setting it does not know, so a
    misspelt or unsupported one would otherwise leave its rows measuring the defaults.
    """
    checks = {
        name: subprocess.Popen(
            [sys.executable, "-m", "django", "check", "--fail-level", "ERROR"],
            cwd=BENCH_DIR,
            env={**os.environ, **extra_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, extra_env in configurations.items()
    }
    failures = []
    for name, check in checks.items():
        _, errors = check.communicate(timeout=120)
        if check.returncode != 0:
            failures.append(f"the {name} server's settings fail Django's checks:\n{errors}")
    if failures:
        raise BenchError("".join(failures))


class Server:
    """gunicorn serving benchsite on a free loopback port.

    Workers are gthread with one thread each: the thread pool of one keeps a worker to
    one request at a time (two workers, two cores, no GIL contention inside a worker),
    while gthread, unlike the sync worker, keeps client connections alive, so the run
    measures request handling rather than TCP set-up and tear-down. A gthread worker
    accepts connections until it holds ``worker_connections``, so one would take all of
    wrk's and leave the other idle unless that cap is about its share.
    """

    def __init__(
        self,
        name: str,
        extra_env: dict[str, str],
        log_dir: Path,
        worker_connections: int,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.log_path = log_dir / f"gunicorn-{name}.log"
        command = [
            sys.executable, "-m", "gunicorn", "benchsite.wsgi:application",
            "--chdir", str(BENCH_DIR),
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(WORKERS),
            "--worker-class", "gthread",
            "--threads", "1",
            "--worker-connections", str(worker_connections),
            "--log-level", "warning",
            *extra_args,
        ]  # fmt: skip
        if Path("/dev/shm").is_dir():
            command += ["--worker-tmp-dir", "/dev/shm"]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        for _ in range(READY_ATTEMPTS):
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn ({self.name}) exited:\n{self.log_tail()}")
            try:
                if status_of(f"{self.base_url}/ceiling/", None) == 200:
                    return
            except OSError:
                pass
            time.sleep(READY_INTERVAL)
        raise BenchError(f"gunicorn ({self.name}) did not answer:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


@contextlib.contextmanager
def running_servers(
    configurations: dict[str, dict[str, str]],
    worker_connections: int,
    base_port: int | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[dict[str, Server]]:
    """One gunicorn per configuration (name: extra environment), stopped on the way out;
    on consecutive ports from ``base_port`` if given, else on free ones."""
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as log_dir:
        servers: dict[str, Server] = {}
        try:
            for index, (name, extra_env) in enumerate(configurations.items()):
                port = base_port + index if base_port else None
                servers[name] = Server(
                    name, extra_env, Path(log_dir), worker_connections, port, extra_args
                )
            for server in servers.values():
                server.wait_ready()
            yield servers
        finally:
            for server in servers.values():
                server.stop()


# --- Data ---------------------------------------------------------------------------


def ensure_database() -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    maintenance_url = parts._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(maintenance_url, autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL at {DATABASE_URL} is not usable: {exc}") from exc


@dataclass(frozen=True)
class Credentials:
    one_token: dict[str, str]  # slug -> header, for a user with one live credential
    many_tokens: dict[str, str]  # slug -> header, for a user with --many-tokens of them
    login_password_hash: str  # LOGIN_USER's, as the configured hasher stored it


def prepare(args: argparse.Namespace) -> Credentials:
    """Fresh schema and data: the benchmark's database and Redis db are wiped."""
    from benchsite.variants import BY_SLUG, VARIANTS
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.core.management import call_command
    from django.utils.module_loading import import_string

    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    cache.clear()
    login_user = User.objects.create_user(LOGIN_USER, password=PASSWORD)
    fast_hasher = import_string(settings.FAST_PASSWORD_HASHER)()
    User.objects.create(
        username=REVOCATION_USER, password=make_password(PASSWORD, hasher=fast_hasher)
    )
    one = User.objects.create_user("bench-one")
    many = User.objects.create_user("bench-many")
    one_token = {v.slug: v.issue(one) for v in VARIANTS if v.issue is not None}
    many_tokens = {}
    for slug in TOKEN_SCENARIO:
        headers = [BY_SLUG[slug].issue(many) for _ in range(args.many_tokens)]
        many_tokens[slug] = headers[-1]
    User.objects.bulk_create(
        User(username=f"filler-{index}", password="!") for index in range(FILLER_USERS)
    )
    fill_sessions(args.small_rows)
    return Credentials(one_token, many_tokens, login_user.password)


def fill_sessions(total_rows: int) -> None:
    """Top the Session table up to ``total_rows`` with other users' sessions, in SQL.

    One row in ten is revoked, as in a table that has seen logouts; the rest are live.
    """
    from django.contrib.auth.models import User
    from django.db import connection

    from tessera.models import Session

    existing = Session.objects.count()
    if existing >= total_rows:
        return
    filler_ids = list(
        User.objects.filter(username__startswith="filler-").values_list("pk", flat=True)
    )
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Session._meta.db_table} (
                id, user_id, kind, token_digest, device_name, user_agent, ip, scopes,
                created_at, last_used_at, idle_expires_at, expires_at, revoked_at,
                revoke_reason, amr, mfa_enrolment_required, provider, device_key
            )
            SELECT
                gen_random_uuid(),
                (%s::integer[])[1 + i %% %s],
                'token',
                encode(sha256(('filler-' || i)::bytea), 'hex'),
                '', '', NULL, NULL,
                now() - interval '1 hour', now() - interval '1 minute',
                now() + interval '10 hours', now() + interval '30 days',
                CASE WHEN i %% 10 = 0 THEN now() - interval '5 minutes' END,
                CASE WHEN i %% 10 = 0 THEN 'logout' ELSE '' END,
                '["pwd"]'::jsonb, false, '', 'filler-' || i
            FROM generate_series(%s, %s) AS i
            """,
            [filler_ids, len(filler_ids), existing + 1, total_rows],
        )
        # Fresh statistics, as autovacuum would eventually give a table this size.
        cursor.execute(f"VACUUM ANALYZE {Session._meta.db_table}")
    progress(f"session table: {total_rows:,} rows ({time.monotonic() - started:.1f} s)")


# --- Login cost ---------------------------------------------------------------------


@dataclass(frozen=True)
class LoginCost:
    hasher: str
    logins: list[Run]
    hashes_per_second: list[float]  # per round, all processes together

    @property
    def ratio(self) -> float:
        """Median logins per second ÷ median hasher calls per second."""
        logins = statistics.median(run.requests_per_second for run in self.logins)
        return logins / statistics.median(self.hashes_per_second)


def describe_hasher(encoded: str) -> str:
    from django.contrib.auth.hashers import identify_hasher

    hasher = identify_hasher(encoded)
    parameters = ", ".join(
        f"{name} {value}"
        for name, value in hasher.safe_summary(encoded).items()
        if name not in ("algorithm", "salt", "hash")
    )
    name = f"`{type(hasher).__module__}.{type(hasher).__qualname__}`"
    return f"{name} ({parameters})" if parameters else name


def check_password_loop(
    seconds: int, password: str, encoded: str, start, rates: multiprocessing.Queue
) -> None:
    """Run in a child process: ``check_password`` over and over for ``seconds``, once
    every process is ready; puts the calls per second completed within them.

    The call still running at the end is not counted, as wrk does not count the
    requests still in flight, so that the edges cost both rates the same.
    """
    import django

    django.setup()
    from django.contrib.auth.hashers import check_password

    # The first call also loads the hasher's library: it is left out of the time.
    check_password(password, encoded)
    start.wait(timeout=60)
    deadline = time.perf_counter() + seconds
    calls = 0
    while True:
        check_password(password, encoded)
        if time.perf_counter() > deadline:
            break
        calls += 1
    rates.put(calls / seconds)


def hasher_rate(seconds: int, encoded: str) -> float:
    """``check_password`` calls per second in as many processes at once as the server has
    workers: the login rate if a login cost its hash and nothing else."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    rates = context.Queue()
    processes = [
        context.Process(target=check_password_loop, args=(seconds, PASSWORD, encoded, start, rates))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        per_process = [rates.get(timeout=seconds + 120) for _ in processes]
    except queue.Empty as exc:
        raise BenchError("a check_password process did not report") from exc
    finally:
        for process in processes:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
    return sum(per_process)


def wait_idle(server: Server) -> None:
    """Return once every worker of ``server`` has finished what it was doing.

    wrk stops with a request in flight on each connection, and the server still serves
    it. A server whose workers hold one connection each accepts a new one only on an
    idle worker; each of these is held open until all have been answered.
    """
    probes = [Connection(server.port) for _ in range(WORKERS)]
    try:
        for probe in probes:
            probe.send("GET", "/ceiling/")
        for probe in probes:
            probe.receive()
    finally:
        for probe in probes:
            probe.close()


def measure_login(server: Server, encoded: str, args: argparse.Namespace) -> LoginCost:
    """Logins per second under wrk and the hasher alone, once each per round, each
    first in every other round, so drift in the machine's speed falls on both alike.

    ``server`` holds one connection per worker, and wrk opens one per worker: a login
    takes a worker long enough that nothing waits on the client between two.
    """
    url = f"{server.base_url}/auth/login/"
    body = json.dumps({"username": LOGIN_USER, "password": PASSWORD})
    if status_of(url, None, body.encode()) != 200:
        raise BenchError(f"{LOGIN_USER} cannot log in")
    logins: list[Run] = []
    hashes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as directory:
        script = Path(directory) / "login.lua"
        # JSON's quoting of an ASCII string is Lua's too.
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        # A login may take over wrk's 2 s on a slow machine, which is no error.
        target = Target("login", url, None, script, timeout_seconds=60)

        def run_logins() -> None:
            logins.append(load(target, args.login_duration, WORKERS))
            wait_idle(server)

        if args.warmup:
            load(target, args.warmup, WORKERS)
            wait_idle(server)
        for round_index in range(args.login_rounds):
            if round_index % 2:
                hashes.append(hasher_rate(args.login_duration, encoded))
            run_logins()
            if not round_index % 2:
                hashes.append(hasher_rate(args.login_duration, encoded))
            progress(f"login: round {round_index + 1}/{args.login_rounds} done")
    return LoginCost(describe_hasher(encoded), logins, hashes)


# --- Revocation across two servers --------------------------------------------------


@dataclass(frozen=True)
class Trial:
    # From A's logout response to B's 401 on every connection; infinite when B still
    # accepted the token POLL_LIMIT_SECONDS later.
    latency_ms: float
    # B's 200 answers to requests sent after A's logout response had been read.
    accepted_after: int
    # The last round of requests to B with the live token: one round of the polling,
    # the least latency_ms can be.
    live_round_ms: float


@dataclass(frozen=True)
class Revocation:
    requested: int
    trials: list[Trial]  # never empty: the first trial starts before the time cap is read
    seconds: float

    @property
    def accepted_after(self) -> int:
        return sum(trial.accepted_after for trial in self.trials)

    def percentile(self, field: str, fraction: float) -> float:
        """Nearest rank of a Trial field: a value that was measured, never interpolated."""
        ordered = sorted(getattr(trial, field) for trial in self.trials)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def ask_all(connections: list[Connection], path: str, header: str) -> list[int]:
    """GET ``path`` on every connection at once; their statuses, in order."""
    for connection in connections:
        connection.send("GET", path, header)
    return [connection.receive()[0] for connection in connections]


def revocation_trial(to_a: Connection, to_b: list[Connection], login_body: str) -> Trial:
    """Log in on A, have B serve the token, log out on A, then ask B until it refuses."""
    protected = f"/{REVOCATION_VARIANT}/"
    status, body = to_a.exchange("POST", "/auth/login/", body=login_body)
    if status != 200:
        raise BenchError(f"revocation: login on A answered {status}: {body[:300]!r}")
    header = f"Token {json.loads(body)['token']}"
    # Each connection is held by its own worker of B (see measure_revocation).
    for _ in range(WARM_REQUESTS):
        began = time.perf_counter()
        statuses = ask_all(to_b, protected, header)
        live_round_ms = (time.perf_counter() - began) * 1000
        if set(statuses) != {200}:
            raise BenchError(f"revocation: B answered {statuses} to a live token")
    status, body = to_a.exchange("POST", "/auth/logout/", header)
    revoked = time.perf_counter()
    if status != 204:
        raise BenchError(f"revocation: logout on A answered {status}: {body[:300]!r}")
    accepted = 0
    waiting = to_b
    while True:
        statuses = ask_all(waiting, protected, header)
        answered = time.perf_counter()
        if set(statuses) - {200, 401}:
            raise BenchError(f"revocation: B answered {statuses} to a revoked token")
        waiting = [conn for conn, status in zip(waiting, statuses, strict=True) if status == 200]
        accepted += len(waiting)
        if not waiting:
            return Trial((answered - revoked) * 1000, accepted, live_round_ms)
        if answered - revoked > POLL_LIMIT_SECONDS:
            return Trial(math.inf, accepted, live_round_ms)


def measure_revocation(a: Server, b: Server, args: argparse.Namespace) -> Revocation:
    """Trials one after another until there are enough or the time cap is reached."""
    login_body = json.dumps({"username": REVOCATION_USER, "password": PASSWORD})
    to_a = Connection(a.port)
    to_b = [Connection(b.port) for _ in range(WORKERS)]
    trials: list[Trial] = []
    try:
        # Open every connection to B before the first trial: B's workers hold one
        # connection each at most (see benchmark), so each connection has its own worker.
        for connection in to_b:
            connection.send("GET", "/ceiling/")
        for connection in to_b:
            if connection.receive()[0] != 200:
                raise BenchError("revocation: B does not answer")
        started = time.monotonic()
        while (
            len(trials) < args.revocation_trials
            and time.monotonic() - started < args.revocation_time_cap
        ):
            trials.append(revocation_trial(to_a, to_b, login_body))
            if len(trials) % 250 == 0:
                progress(f"revocation: {len(trials)} trials")
        elapsed = time.monotonic() - started
    finally:
        for connection in (to_a, *to_b):
            connection.close()
    return Revocation(args.revocation_trials, trials, elapsed)


# --- Report -------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    per_round: list[float]


def summarise(runs: list[Run]) -> Summary:
    return Summary(
        statistics.median(r.requests_per_second for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        [r.requests_per_second for r in runs],
    )


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    memory = "unknown memory"
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)[1]
    with contextlib.suppress(OSError, TypeError):
        kib = int(re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)[1])
        memory = f"{kib / 1024**2:.1f} GiB RAM"
    return f"{os.cpu_count()} CPUs ({cpu}), {memory}, {platform.platform()}"


def versions(wrk_version: str) -> str:
    import redis
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    redis_server = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    packages = [
        ("drf-tessera", "drf-tessera"),
        ("Django", "Django"),
        ("DRF", "djangorestframework"),
        ("knox", "django-rest-knox"),
        ("simplejwt", "djangorestframework-simplejwt"),
        ("gunicorn", "gunicorn"),
        ("psycopg", "psycopg"),
        ("redis-py", "redis"),
    ]
    listed = [f"Python {platform.python_version()}"]
    listed += [f"{label} {version(dist)}" for label, dist in packages]
    listed += [f"PostgreSQL {postgres}", f"Redis {redis_server}", f"wrk {wrk_version}"]
    return ", ".join(listed)


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=BENCH_DIR, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def code_revision() -> str:
    """The commit measured, and whether the work tree differed from it."""
    try:
        commit = git("rev-parse", "--short", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with uncommitted changes" if changes else "")


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference else "n/a"


def render(
    args: argparse.Namespace,
    small: dict[str, Summary],
    large: dict[str, Summary],
    login: LoginCost,
    revocation: Revocation,
    header_lines: list[str],
) -> str:
    from benchsite.variants import BY_SLUG, CEILING, VARIANTS

    ceiling = small[CEILING].requests_per_second
    lines = [*header_lines, ""]
    lines += [
        f"### Schemes ({args.small_rows:,} session rows, one live token per user)",
        "",
        "| Scheme | requests/s | p50 ms | p99 ms | × ceiling | requests/s per round |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for variant in VARIANTS:
        s = small[variant.slug]
        rounds = ", ".join(f"{r:.0f}" for r in s.per_round)
        lines.append(
            f"| {variant.label} | {s.requests_per_second:.0f} | {s.p50_ms:.2f} | "
            f"{s.p99_ms:.2f} | {ratio(s.requests_per_second, ceiling)} | {rounds} |"
        )
    many = args.many_tokens
    lines += [
        "",
        f"### Live tokens of the user: 1 vs {many}",
        "",
        f"| Scheme | requests/s, 1 token | requests/s, {many} tokens | {many} ÷ 1 | "
        f"p99 ms, 1 → {many} |",
        "|---|---:|---:|---:|---:|",
    ]
    for slug in TOKEN_SCENARIO:
        one, lots = small[slug], small[f"{slug}@{many}"]
        lines.append(
            f"| {BY_SLUG[slug].label} | {one.requests_per_second:.0f} | "
            f"{lots.requests_per_second:.0f} | "
            f"{ratio(lots.requests_per_second, one.requests_per_second)} | "
            f"{one.p99_ms:.2f} → {lots.p99_ms:.2f} |"
        )
    lines += [
        "",
        f"### Session rows in the table: {args.small_rows:,} vs {args.large_rows:,}",
        "",
        "Measured in two phases (the rows are inserted in between), so compare the "
        "× ceiling columns: each is relative to the ceiling measured in the same phase.",
        "",
        f"| Scheme | requests/s, {args.small_rows:,} | requests/s, {args.large_rows:,} | "
        f"× ceiling, {args.small_rows:,} | × ceiling, {args.large_rows:,} | "
        f"p99 ms, {args.small_rows:,} → {args.large_rows:,} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    large_ceiling = large[CEILING].requests_per_second
    for slug in (CEILING, *ROW_SCENARIO):
        before, after = small[slug], large[slug]
        lines.append(
            f"| {BY_SLUG[slug].label} | {before.requests_per_second:.0f} | "
            f"{after.requests_per_second:.0f} | "
            f"{ratio(before.requests_per_second, ceiling)} | "
            f"{ratio(after.requests_per_second, large_ceiling)} | "
            f"{before.p99_ms:.2f} → {after.p99_ms:.2f} |"
        )
    lines += render_login(args, login)
    lines += render_revocation(revocation)
    lines += render_targets(small, login, revocation)
    return "\n".join(lines) + "\n"


def render_login(args: argparse.Namespace, login: LoginCost) -> list[str]:
    logins = summarise(login.logins)
    return [
        "",
        "### Login: `POST auth/login/` vs its password hasher alone",
        "",
        f"Hasher: {login.hasher}, as the bench settings configure it. Logins: a gunicorn "
        f"configured as the one that serves Tessera tokens ({WORKERS} workers) and wrk, "
        f"1 thread, {WORKERS} connections (one per worker), the JSON body from a Lua "
        "script, the login throttles raised out of the way (still counted on every "
        "login). Hasher alone: "
        f"`check_password` in a loop in {WORKERS} processes at once, as many as the server "
        f"has workers. {args.login_rounds} interleaved rounds of {args.login_duration} s "
        "each; medians.",
        "",
        "| | per second | p50 ms | p99 ms | per round |",
        "|---|---:|---:|---:|---|",
        f"| Logins | {logins.requests_per_second:.1f} | {logins.p50_ms:.0f} | "
        f"{logins.p99_ms:.0f} | {', '.join(f'{r:.1f}' for r in logins.per_round)} |",
        f"| `check_password` alone, {WORKERS} processes | "
        f"{statistics.median(login.hashes_per_second):.1f} | | | "
        f"{', '.join(f'{r:.1f}' for r in login.hashes_per_second)} |",
        "",
        f"Logins ÷ hasher alone: {login.ratio:.2f}.",
    ]


def format_latency(milliseconds: float) -> str:
    if math.isinf(milliseconds):
        return f"over {POLL_LIMIT_SECONDS * 1000:.0f} ms"
    return f"{milliseconds:.2f} ms"


def render_revocation(revocation: Revocation) -> list[str]:
    from django.conf import settings

    fast_hasher = settings.FAST_PASSWORD_HASHER.rsplit(".", 1)[1]
    trials = revocation.trials
    count = f"{len(trials):,} in {revocation.seconds:.1f} s"
    if len(trials) < revocation.requested:
        count += f" (stopped at the time cap, short of the {revocation.requested:,} asked)"
    never = sum(math.isinf(trial.latency_ms) for trial in trials)
    accepting = sum(trial.accepted_after > 0 for trial in trials)
    return [
        "",
        "### Revocation across two servers",
        "",
        f"Servers A and B: two more gunicorns ({WORKERS} workers each), configured as the "
        f"one that serves Tessera tokens but for a fast password hasher ({fast_hasher}), so "
        "that the login opening each trial stays cheap; the same PostgreSQL and Redis. "
        "Each trial: log in "
        f"on A (opaque token); B serves the token {WARM_REQUESTS} times on each of "
        f"{WORKERS} keep-alive connections, one per worker; log out on A; from the moment "
        "A's response has been read, B is asked on every connection at once, again and "
        "again, until each has answered 401.",
        "",
        f"- Trials: {count}",
        "- From A's logout response to B's 401 on every worker: p50 "
        f"{format_latency(revocation.percentile('latency_ms', 0.50))}, p99 "
        f"{format_latency(revocation.percentile('latency_ms', 0.99))}, max "
        f"{format_latency(revocation.percentile('latency_ms', 1.0))}",
        "- One round of requests to B with the live token, the least the above can "
        f"measure: p50 {format_latency(revocation.percentile('live_round_ms', 0.50))}, "
        f"p99 {format_latency(revocation.percentile('live_round_ms', 0.99))}",
        f"- B's 200 answers to requests sent after A's logout response: "
        f"{revocation.accepted_after} (in {accepting} trials)",
        f"- Trials where B still accepted the token {POLL_LIMIT_SECONDS:g} s later: {never}",
    ]


def verdict(label: str, shown: str, target: str, met: bool) -> str:
    return f"- {label}: {shown} (target {target}): {'met' if met else '**missed**'}"


def render_targets(
    small: dict[str, Summary], login: LoginCost, revocation: Revocation
) -> list[str]:
    from benchsite.variants import CEILING

    tokens = small["tessera"].requests_per_second
    jwt = small["tessera-jwt"].requests_per_second
    ceiling = small[CEILING].requests_per_second
    stateless = small["simplejwt-stateless"].requests_per_second
    knox = small["knox"].requests_per_second
    p99 = revocation.percentile("latency_ms", 0.99)
    return [
        "",
        "### Targets",
        "",
        verdict(
            "Tessera tokens ÷ ceiling",
            f"{tokens / ceiling:.2f}",
            f"≥ {TARGET_TESSERA_CEILING_RATIO:g}",
            tokens / ceiling >= TARGET_TESSERA_CEILING_RATIO,
        ),
        verdict(
            "Tessera JWT (session checked) ÷ ceiling",
            f"{jwt / ceiling:.2f}",
            f"≥ {TARGET_JWT_CEILING_RATIO:g}",
            jwt / ceiling >= TARGET_JWT_CEILING_RATIO,
        ),
        verdict(
            "Tessera tokens ÷ simplejwt stateless",
            f"{tokens / stateless:.2f}",
            "> 1",
            tokens > stateless,
        ),
        verdict(
            "Tessera JWT (session checked) ÷ simplejwt stateless",
            f"{jwt / stateless:.2f}",
            "> 1",
            jwt > stateless,
        ),
        verdict(
            "Tessera tokens ÷ knox",
            f"{tokens / knox:.2f}",
            f"≥ {TARGET_KNOX_RATIO:g}",
            tokens / knox >= TARGET_KNOX_RATIO,
        ),
        verdict(
            f"B's 200 answers after A's revoking response, {len(revocation.trials):,} trials",
            str(revocation.accepted_after),
            "0",
            revocation.accepted_after == 0,
        ),
        verdict(
            "Revocation latency p99",
            format_latency(p99),
            f"< {TARGET_REVOCATION_P99_MS:g} ms",
            p99 < TARGET_REVOCATION_P99_MS,
        ),
        verdict(
            "Logins ÷ hasher alone",
            f"{login.ratio:.2f}",
            f"≥ {TARGET_LOGIN_HASHER_RATIO:g}",
            login.ratio >= TARGET_LOGIN_HASHER_RATIO,
        ),
    ]


def write_results(path: Path, report: str) -> None:
    """Write the benchmark's report to ``path``, keeping the load scenario's section
    (bench/load.py), which this run did not measure."""
    previous = path.read_text() if path.exists() else ""
    kept = previous.find(LOAD_SECTION_HEADING)
    path.write_text(report + ("\n" + previous[kept:] if kept >= 0 else ""))


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- Main ---------------------------------------------------------------------------


def benchmark(args: argparse.Namespace) -> str:
    wrk_version = require_wrk()
    check_settings({**SERVERS, "revocation": REVOCATION_SERVER})
    ensure_database()

    import django

    django.setup()
    from benchsite.variants import BY_SLUG, CEILING, VARIANTS
    from django.db import connections

    started = time.monotonic()
    credentials = prepare(args)
    header_lines = [
        "# Benchmark results",
        "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Versions: {versions(wrk_version)}",
        f"- Code: {code_revision()}",
        f"- Command: `{shlex.join(['bench/run.py', *sys.argv[1:]])}` (as run by "
        f"`make bench`: `.venv/bin/python bench/run.py`)",
        f"- Setup: gunicorn, {WORKERS} gthread workers × 1 thread; PostgreSQL with "
        f"persistent connections; Redis cache behind Tessera's near cache (on by default, "
        f"off in the rows that say so); wrk, 1 thread, {args.connections} "
        f"keep-alive connections on 127.0.0.1; {args.rounds} interleaved rounds of "
        f"{args.duration} s after {args.warmup} s of warm-up per URL; medians of the rounds.",
    ]
    load_before = os.getloadavg()[0]
    # This process's connection would sit idle, holding a backend, for the whole run.
    connections.close_all()
    with running_servers(SERVERS, args.connections // WORKERS + 1) as servers:

        def target(slug: str, key: str, header: str | None) -> Target:
            variant = BY_SLUG[slug]
            return Target(key, f"{servers[variant.server].base_url}/{slug}/", header)

        for variant in VARIANTS:
            url = target(variant.slug, variant.slug, None).url
            header = credentials.one_token.get(variant.slug)
            if status_of(url, header) != 200:
                raise BenchError(f"{variant.slug}: the credential is refused")
            if variant.issue is not None and status_of(url, None) != 401:
                raise BenchError(f"{variant.slug}: answers without a credential")

        small_targets = [
            target(v.slug, v.slug, credentials.one_token.get(v.slug)) for v in VARIANTS
        ]
        small_targets += [
            target(slug, f"{slug}@{args.many_tokens}", credentials.many_tokens[slug])
            for slug in TOKEN_SCENARIO
        ]
        small = measure(small_targets, args, f"{args.small_rows:,} rows")

        fill_sessions(args.large_rows)
        connections.close_all()
        large_targets = [t for t in small_targets if t.key in (CEILING, *ROW_SCENARIO)]
        large = measure(large_targets, args, f"{args.large_rows:,} rows")

    # From here on servers whose workers hold one connection each, so that a client's
    # connection has a worker to itself.
    with running_servers({"login": SERVERS["main"]}, 1) as login_servers:
        login = measure_login(login_servers["login"], credentials.login_password_hash, args)
    with running_servers({"A": REVOCATION_SERVER, "B": REVOCATION_SERVER}, 1) as pair:
        revocation = measure_revocation(pair["A"], pair["B"], args)

    elapsed = time.monotonic() - started
    progress(f"finished in {elapsed:.0f} s")
    # Anything else running on the machine lowers every number: say how busy it was.
    header_lines.append(
        f"- Duration: {elapsed / 60:.1f} min; load average (1 min) before the first run: "
        f"{load_before:.2f}."
    )
    return render(
        args,
        {key: summarise(runs) for key, runs in small.items()},
        {key: summarise(runs) for key, runs in large.items()},
        login,
        revocation,
        header_lines,
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        report = benchmark(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print(report)
    if args.output is not None:
        write_results(args.output, report)
        progress(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
