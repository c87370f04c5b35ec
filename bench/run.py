"""Side-by-side benchmark of DRF authentication schemes, run by ``make bench``.

Serves ``bench/benchsite`` with gunicorn on loopback, loads each scheme's URL in turn
with wrk, interleaved over several rounds, prints a Markdown table of median
requests/s, p50/p99 latency and the ratio to the unauthenticated ceiling, and writes
it to bench/RESULTS.md. bench/README.md explains what is measured.

The database (BENCH_DATABASE_URL, default ``tessera_bench`` on local PostgreSQL) and the
Redis database (BENCH_REDIS_URL, default db 9) are the benchmark's own: both are wiped
at the start of every run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
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
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
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
    "uncached": {"BENCH_TESSERA_CACHE": "none"},
    "stateless": {"BENCH_TESSERA_JWT_STATELESS": "1"},
}
# Variants measured with many live tokens for the user (knox reads all of them per
# request) and with a large Session table.
TOKEN_SCENARIO = ("tessera", "knox")
ROW_SCENARIO = ("tessera", "tessera-uncached")
FILLER_USERS = 1_000
TARGET_CEILING_RATIO = 0.85
TARGET_KNOX_RATIO = 2.0
READY_ATTEMPTS = 150
READY_INTERVAL = 0.1

# Many short rounds rather than a few long ones: a burst of load from another process
# then spoils one round of a few URLs, and the medians pass over it.
FULL = {"duration": 3, "warmup": 2, "rounds": 7, "large_rows": 1_000_000}
QUICK = {"duration": 1, "warmup": 1, "rounds": 1, "large_rows": 10_000}


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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: one round of 1 s, 10000 rows; writes no file unless --output",
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


def status_of(url: str, header: str | None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": header} if header else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Server:
    """gunicorn serving benchsite on a free loopback port.

    Workers are gthread with one thread each: the thread pool of one keeps a worker to
    one request at a time (two workers, two cores, no GIL contention inside a worker),
    while gthread, unlike the sync worker, keeps client connections alive, so the run
    measures request handling rather than TCP set-up and tear-down. A gthread worker
    accepts every connection it can, so one would take all of wrk's and leave the other
    idle; capping each worker at just over its share keeps both busy.
    """

    def __init__(
        self, name: str, extra_env: dict[str, str], log_dir: Path, connections: int
    ) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.log_path = log_dir / f"gunicorn-{name}.log"
        command = [
            sys.executable, "-m", "gunicorn", "benchsite.wsgi:application",
            "--chdir", str(BENCH_DIR),
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(WORKERS),
            "--worker-class", "gthread",
            "--threads", "1",
            "--worker-connections", str(connections // WORKERS + 1),
            "--log-level", "warning",
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
def running_servers(connections: int) -> Iterator[dict[str, Server]]:
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as log_dir:
        servers: dict[str, Server] = {}
        try:
            for name, extra_env in SERVERS.items():
                servers[name] = Server(name, extra_env, Path(log_dir), connections)
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


def prepare(args: argparse.Namespace) -> Credentials:
    """Fresh schema and data: the benchmark's database and Redis db are wiped."""
    from benchsite.variants import BY_SLUG, VARIANTS
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("check", fail_level="ERROR", stdout=sys.stderr)
    call_command("flush", verbosity=0, interactive=False)
    cache.clear()
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
    return Credentials(one_token, many_tokens)


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
                revoke_reason
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
                CASE WHEN i %% 10 = 0 THEN 'logout' ELSE '' END
            FROM generate_series(%s, %s) AS i
            """,
            [filler_ids, len(filler_ids), existing + 1, total_rows],
        )
        # Fresh statistics, as autovacuum would eventually give a table this size.
        cursor.execute(f"VACUUM ANALYZE {Session._meta.db_table}")
    progress(f"session table: {total_rows:,} rows ({time.monotonic() - started:.1f} s)")


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
    tessera = small["tessera"].requests_per_second
    knox = small["knox"].requests_per_second
    checks = [
        ("Tessera tokens ÷ ceiling", tessera / ceiling, TARGET_CEILING_RATIO),
        ("Tessera tokens ÷ knox", tessera / knox, TARGET_KNOX_RATIO),
    ]
    lines += ["", "### Targets", ""]
    for label, value, target in checks:
        verdict = "met" if value >= target else "**missed**"
        lines.append(f"- {label}: {value:.2f} (target ≥ {target:g}): {verdict}")
    return "\n".join(lines) + "\n"


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- Main ---------------------------------------------------------------------------


def benchmark(args: argparse.Namespace) -> str:
    wrk_version = require_wrk()
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
        f"persistent connections; Redis cache; wrk, 1 thread, {args.connections} "
        f"keep-alive connections on 127.0.0.1; {args.rounds} interleaved rounds of "
        f"{args.duration} s after {args.warmup} s of warm-up per URL; medians of the rounds.",
    ]
    load_before = os.getloadavg()[0]
    # This process's connection would sit idle, holding a backend, for the whole run.
    connections.close_all()
    with running_servers(args.connections) as servers:

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
        args.output.write_text(report)
        progress(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
