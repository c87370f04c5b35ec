"""Start and stop the real servers: Redis, a PostgreSQL cluster, gunicorn, the control process.

Everything listens on a free loopback port and lives in a temporary directory removed
afterwards. :func:`running_site` starts the whole set and stops all of it, whatever
happened in between.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

import tessera

from .availability import as_root, postgres_bin_dir
from .client import Server

ROOT = Path(__file__).resolve().parents[2]
# The servers import the same tessera as this test run (a worktree's src/ comes first).
SOURCE = Path(tessera.__file__).resolve().parents[1]
SETTINGS = "tests.realservers.site_settings"
HOST = "127.0.0.1"
DATABASE = "tessera"
WORKERS = 2
THREADS = 2
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 4000


class StartError(RuntimeError):
    """A server did not start; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def tail(path: Path, size: int = LOG_TAIL) -> str:
    if not path.exists():
        return "(no log)"
    with path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - size))
        return log.read().decode(errors="replace")


def wait_for(ready, what: str, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise StartError(f"{what} did not start within {timeout:.0f} s. Its log:\n{tail(log)}")


class RedisServer:
    """One redis-server; stopping and starting it again keeps its port and directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.log = directory / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        """Start on the same port and directory, loading the data a ``SHUTDOWN SAVE`` left."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind", HOST,
                "--port", str(self.port),
                "--dir", str(self.directory),
                "--dbfilename", "dump.rdb",
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._answers, f"redis-server on port {self.port}", self.log)

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise StartError(f"redis-server exited at start. Its log:\n{tail(self.log)}")
        try:
            return self.client().ping()
        except redis.RedisError:  # not listening yet, or still loading its data
            return False

    def client(self) -> redis.Redis:
        # No retries: SHUTDOWN ends in a closed connection, which is its success.
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5, retry=None)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def shutdown(self, *, save: bool) -> None:
        """``SHUTDOWN SAVE`` (its data written to disk first) or ``SHUTDOWN NOSAVE``."""
        self.client().shutdown(save=save, nosave=not save)
        self.process.wait(timeout=STOP_TIMEOUT)

    def forget_data(self) -> None:
        """Remove what an earlier ``SHUTDOWN SAVE`` left, so the next start is empty."""
        (self.directory / "dump.rdb").unlink(missing_ok=True)

    def kill_clients(self, *, client_type: str | None = None, name: str | None = None) -> int:
        """``CLIENT KILL`` every client of a type (``normal``, ``pubsub``) or name; how many."""
        client = self.client()
        if client_type is not None:
            return client.client_kill_filter(_type=client_type, skipme=True)
        ids = [str(entry["id"]) for entry in client.client_list() if entry.get("name") == name]
        return sum(client.client_kill_filter(_id=client_id) for client_id in ids)

    def stop(self) -> None:
        if self.running:
            self.process.terminate()
            self.process.wait(timeout=STOP_TIMEOUT)


class PostgresCluster:
    """A throw-away PostgreSQL cluster: trust authentication, loopback TCP, no fsync."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.bin = postgres_bin_dir()
        self.port = free_port()
        self.data = directory / "data"
        self.log = directory / "postgres.log"

    def url(self, name: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{name}"

    def _run(self, *command: str) -> None:
        # initdb refuses root; the directory belongs to the postgres user for this.
        prefix = ["runuser", "-u", "postgres", "--"] if as_root() else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise StartError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}"
                f"{result.stderr}\n{tail(self.log)}"
            )

    def start(self) -> None:
        if as_root():
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.start_again()

    def start_again(self) -> None:
        """Start the cluster :meth:`start` created, after a :meth:`stop`, on the same port."""
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses={HOST} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", str(int(START_TIMEOUT)), "start",
        )  # fmt: skip

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')

    @property
    def running(self) -> bool:
        # The pid file exists from the server's start to its stop, even a failed start's.
        return (self.data / "postmaster.pid").exists()

    def stop(self) -> None:
        """Stop at once (``immediate``): every connection drops, as when the server dies."""
        if self.running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


class AppServer:
    """``gunicorn`` serving tests.urls: several worker processes with threads each.

    ``preload`` loads the application in the master before it forks the workers, so
    whatever the import builds is inherited by every worker.
    """

    def __init__(
        self, name: str, env: dict[str, str], log_dir: Path, *, preload: bool = False
    ) -> None:
        self.name = name
        self.preload = preload
        self.env = env
        self.port = free_port()
        self.log = log_dir / f"gunicorn-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn", "tests.realservers.wsgi:application",
                    "--bind", f"{HOST}:{self.port}",
                    "--worker-class", "gthread",
                    "--workers", str(WORKERS),
                    "--threads", str(THREADS),
                    # Each worker listens on its own socket and the kernel spreads new
                    # connections over them: the tests need one to each worker.
                    "--reuse-port",
                    # Long enough for the tests' connections to stay with their worker.
                    "--keep-alive", "120",
                    "--timeout", "60",
                    "--graceful-timeout", "5",
                    "--error-logfile", "-",
                    *(["--preload"] if self.preload else []),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so its workers can be killed with it at the end.
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self) -> Server:
        """The server once every worker answers, reached by one connection per worker."""
        server = Server(self.name, HOST, self.port)
        wait_for(self._answers, f"gunicorn {self.name} on port {self.port}", self.log)
        server.connect_each_worker(WORKERS, timeout=START_TIMEOUT)
        return server

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise StartError(f"gunicorn {self.name} exited at start:\n{tail(self.log)}")
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                return True
        except OSError:
            return False

    def terminate(self) -> None:
        """Ask for a graceful stop; :meth:`wait` for it (servers stop side by side)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)


class Control:
    """The control process: changes made outside any request (see ``control.py``)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.log = log_dir / "control.log"
        # One command at a time, whichever thread sends it.
        self.lock = threading.Lock()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.realservers.control"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )

    def __call__(self, op: str, **arguments):
        with self.lock:
            self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"The control process exited:\n{tail(self.log)}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"control {op} {arguments} failed:\n{answer['error']}")
        return answer["result"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


@dataclass
class Site:
    """The running set: Redis, PostgreSQL, the app servers, the control process."""

    directory: Path
    redis: RedisServer
    postgres: PostgresCluster
    env: dict[str, str]
    apps: dict[str, AppServer] = field(default_factory=dict)
    servers: dict[str, Server] = field(default_factory=dict)
    control: Control | None = None

    @property
    def mailbox(self) -> Path:
        return Path(self.env["TESSERA_MAILBOX_DIR"])

    def logs(self) -> dict[str, Path]:
        logs = {"redis": self.redis.log, "postgres": self.postgres.log}
        logs.update({f"gunicorn {name}": app.log for name, app in self.apps.items()})
        if self.control is not None:
            logs["control"] = self.control.log
        return logs

    def run_django(self, *arguments: str) -> subprocess.CompletedProcess:
        """``django-admin`` with the servers' settings, as a separate process."""
        return subprocess.run(
            [sys.executable, "-m", "django", *arguments],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def server_env(cache: RedisServer, postgres: PostgresCluster, mailbox: Path) -> dict[str, str]:
    path = [str(SOURCE), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": postgres.url(DATABASE),
        "REDIS_URL": cache.url,
        "TESSERA_MAILBOX_DIR": str(mailbox),
        "PYTHONPATH": os.pathsep.join(path),
    }


def wait_for_stops(apps: dict[str, AppServer]) -> None:
    for app in apps.values():
        app.wait()


@contextmanager
def running_site(server_names: tuple[str, ...] = ("A", "B")) -> Iterator[Site]:
    """Redis, PostgreSQL (migrated), one gunicorn per name and the control process.

    All of them are stopped and their directory removed on the way out, whatever
    happened: the caller's failure, or one of them failing to start.
    """
    with ExitStack() as stack:
        directory = Path(tempfile.mkdtemp(prefix="tessera-realservers-"))
        # The postgres user must be able to reach its own directory inside.
        directory.chmod(0o711)
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        for name in ("redis", "postgres", "mail"):
            (directory / name).mkdir()
        cache = RedisServer(directory / "redis")
        postgres = PostgresCluster(directory / "postgres")
        # Registered before starting: a server that half started is stopped too.
        stack.callback(cache.stop)
        cache.start()
        stack.callback(postgres.stop)
        postgres.start()
        postgres.create_database(DATABASE)
        site = Site(directory, cache, postgres, server_env(cache, postgres, directory / "mail"))
        migrated = site.run_django("migrate", "--noinput", "-v", "0")
        if migrated.returncode != 0:
            raise StartError(f"migrate failed:\n{migrated.stdout}{migrated.stderr}")
        stack.callback(wait_for_stops, site.apps)
        for name in server_names:
            # B preloads, A does not: every trial crosses both ways of forking workers.
            app = site.apps[name] = AppServer(name, site.env, directory, preload=name == "B")
            stack.callback(app.terminate)
            app.start()
        for name, app in site.apps.items():
            site.servers[name] = app.wait_ready()
            stack.callback(site.servers[name].close)
        site.control = Control(site.env, directory)
        stack.callback(site.control.stop)
        yield site
