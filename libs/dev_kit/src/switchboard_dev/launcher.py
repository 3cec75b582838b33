"""Starts the whole suite on one machine: ``python -m switchboard_dev.launcher run|migrate|stop``.

``make run`` calls ``run``: embedded PostgreSQL (data in ``.data/postgres``) and the embedded
tansu broker unless real ones are configured, then for each service of ``suite.toml``
(:mod:`switchboard_dev.manifest`) its own database, its migrations, its own uvicorn process,
health checks and demo data. Ctrl-C stops it all.

The e2e tests use the same code through :class:`Suite`, on free ports and a temporary
data directory, so they never collide with a ``make run`` on the default ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

import httpx

from .infra import Broker, EmbeddedPostgres, ensure_database, free_port, start_postgres
from .issuer import LocalIssuer
from .manifest import MANIFEST, REPO_ROOT, SERVICES, ServiceSpec, import_target

__all__ = [
    "REPO_ROOT",
    "SERVICES",
    "ServiceSpec",
    "Suite",
    "SuiteError",
    "main",
    "service_spec",
]


DEFAULT_KAFKA_PORT = 9092
HOST = "127.0.0.1"
# uvicorn's event loop and HTTP parser in make run, the image and the chart (uvicorn[standard]).
SERVER_OPTIONS = ("--loop", "uvloop", "--http", "httptools")


def service_spec(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in SERVICES)
    raise SuiteError(f"unknown service {name!r} (known: {known}; see {MANIFEST.name})")


class SuiteError(RuntimeError):
    """A step of starting the suite failed, or a service died."""


# --------------------------------------------------------------------------- progress


class _Progress:
    """Prints "Starting PostgreSQL… done (2.1s)" lines; silent when ``enabled`` is false."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        if self.enabled:
            print(f"{text}…", end=" ", flush=True)
        started = time.monotonic()
        try:
            yield
        except BaseException:
            if self.enabled:
                print("failed", flush=True)
            raise
        if self.enabled:
            print(f"done ({time.monotonic() - started:.1f}s)", flush=True)


# --------------------------------------------------------------------------- the suite


class Suite:
    """The running suite: infrastructure, databases, migrations and service processes.

    ``database_url=None`` starts embedded PostgreSQL in ``data_dir/postgres``; otherwise it is
    the server on which each service gets its own database. ``kafka_bootstrap=None`` starts
    the embedded broker on ``broker_port`` (producer idempotence then goes off). A URL in
    ``service_database_urls`` is used as-is for that service. ``env`` is added to every
    service's environment (e.g. ``{"ORDERING_PROVISIONING_DELAY_SECONDS": "0"}``).

    In tests::

        async with Suite.ephemeral(tmp_path, ["ordering"]) as suite:
            httpx.get(suite.urls["ordering"] + "/health/ready")
            await suite.broker.stop(); await suite.broker.start()  # fault injection
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        services: Sequence[str] | None = None,
        *,
        ports: Mapping[str, int] | None = None,
        broker_port: int = DEFAULT_KAFKA_PORT,
        database_url: str | None = None,
        service_database_urls: Mapping[str, str] | None = None,
        kafka_bootstrap: str | None = None,
        env: Mapping[str, str] | None = None,
        seed: bool = False,
        log_dir: Path | None = None,
        progress: bool = False,
        ready_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir or REPO_ROOT / ".data").resolve()
        names = list(services) if services is not None else [s.name for s in SERVICES]
        self.specs = [service_spec(n) for n in names]
        self.ports = {s.name: (ports or {}).get(s.name, s.port) for s in self.specs}
        self.broker_port = broker_port
        self.server_url = database_url
        self.service_database_urls = dict(service_database_urls or {})
        self.kafka_bootstrap = kafka_bootstrap
        self.extra_env = dict(env or {})
        self.seed = seed
        self.log_dir = log_dir
        self.ready_timeout = ready_timeout
        self.progress = _Progress(progress)

        self.postgres: EmbeddedPostgres | None = None
        self.broker: Broker | None = None
        self.database_urls: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        # The local identity provider: its key and JWKS live in the data folder, so tokens from
        # `make token` stay valid across restarts. An AUTH_JWKS_URL in the environment (a real
        # provider) takes its place.
        self.issuer = LocalIssuer(self.data_dir / "auth")

    def token(self, role: str = "integration", **kw: Any) -> str:
        """A bearer token the suite's services accept (from the local issuer)."""
        return self.issuer.token(role, **kw)

    def auth_headers(self, role: str = "integration", **kw: Any) -> dict[str, str]:
        return self.issuer.headers(role, **kw)

    @classmethod
    def ephemeral(cls, data_dir: Path, services: Sequence[str] | None = None, **kwargs: Any) -> Suite:
        """A suite on free ports with everything embedded: for tests, next to a ``make run``."""
        names = list(services) if services is not None else [s.name for s in SERVICES]
        kwargs.setdefault("ports", {n: free_port() for n in names})
        kwargs.setdefault("broker_port", free_port())
        kwargs.setdefault("log_dir", Path(data_dir) / "logs")
        return cls(data_dir, names, **kwargs)

    # -- what it exposes

    @property
    def urls(self) -> dict[str, str]:
        """Service name -> ``http://127.0.0.1:PORT`` (no base path)."""
        return {s.name: f"http://{HOST}:{self.ports[s.name]}" for s in self.specs}

    @property
    def api_urls(self) -> dict[str, str]:
        """Service name -> its TMF API root, e.g. ``…/tmf-api/productOrderingManagement/v4``."""
        return {s.name: self.urls[s.name] + s.base_path for s in self.specs}

    @property
    def bootstrap(self) -> str | None:
        """The Kafka bootstrap servers the services use."""
        return self.kafka_bootstrap or (self.broker.bootstrap if self.broker else None)

    # -- lifecycle

    async def __aenter__(self) -> Suite:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Starts everything and returns once every service is ready (and seeded)."""
        self._check_ports()
        await self.prepare_databases()
        await self.migrate()
        await self.start_broker()
        for spec in self.specs:
            self._start_service(spec)
        with self.progress.step(f"Waiting for {', '.join(s.name for s in self.specs)}"):
            await asyncio.gather(*(self._wait_ready(spec) for spec in self.specs))
        if self.seed:
            await self.run_seeds()

    async def prepare_databases(self) -> None:
        """Starts embedded PostgreSQL if some service has no URL, then creates missing databases."""
        need_server = [s for s in self.specs if s.name not in self.service_database_urls]
        if need_server and self.server_url is None and self.postgres is None:
            where = self.data_dir / "postgres"
            with self.progress.step(f"Starting PostgreSQL ({where})"):
                self.data_dir.mkdir(parents=True, exist_ok=True)
                self.postgres = await asyncio.to_thread(start_postgres, where)
        server_url = self.server_url or (self.postgres.url if self.postgres else None)
        with self.progress.step("Creating databases"):
            for spec in self.specs:
                given = self.service_database_urls.get(spec.name)
                if given is not None:
                    self.database_urls[spec.name] = given
                    continue
                assert server_url is not None
                self.database_urls[spec.name] = await ensure_database(server_url, spec.database)

    async def migrate(self) -> None:
        """``alembic upgrade head`` for each service, as a subprocess with its database URL."""
        for spec in self.specs:
            with self.progress.step(f"Migrating {spec.name}"):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "alembic",
                    "-c",
                    str(REPO_ROOT / spec.alembic_ini),
                    "upgrade",
                    "head",
                    cwd=str(REPO_ROOT),
                    env=self._env(spec),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
                output, _ = await proc.communicate()
                if proc.returncode != 0:
                    raise SuiteError(
                        f"migrations of {spec.name} failed (exit {proc.returncode}):\n{output.decode(errors='replace')}"
                    )

    async def start_broker(self) -> None:
        """Starts the embedded broker unless ``kafka_bootstrap`` points at a real one."""
        if self.kafka_bootstrap is not None or self.broker is not None:
            return
        topics = [t for spec in self.specs for t in spec.topics]
        self.broker = Broker(
            self.broker_port,
            topics=topics,
            log_path=(self.log_dir or self.data_dir / "logs") / "broker.log",
        )
        with self.progress.step(f"Starting Kafka-protocol broker (tansu on {self.broker.bootstrap})"):
            await self.broker.start()

    async def run_seeds(self) -> None:
        for spec in self.specs:
            if spec.seed is None:
                continue
            with self.progress.step(f"Seeding {spec.name}"):
                seed: Callable[[str, dict[str, str]], Awaitable[None]] = import_target(spec.seed)
                await seed(self.urls[spec.name], self.auth_headers("integration"))

    async def stop(self) -> None:
        """Stops services (SIGTERM, then SIGKILL), the broker and PostgreSQL. Safe to call twice."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self.broker is not None:
            await self.broker.stop()
            self.broker = None
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop)
            self.postgres = None

    def kill_service(self, name: str) -> None:
        """SIGKILL one service process, as a crash would (fault tests)."""
        process = self.processes[name]
        if process.poll() is None:
            process.kill()
            process.wait()

    async def restart_service(self, name: str) -> None:
        """Starts a stopped or crashed service again and waits until it is ready."""
        spec = service_spec(name)
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            raise SuiteError(f"{name} is still running")
        self._start_service(spec)
        await self._wait_ready(spec)

    def dead_services(self) -> dict[str, int]:
        """Services whose process has exited, with their exit codes."""
        return {
            name: code for name, process in self.processes.items() if (code := process.poll()) is not None
        }

    def check(self) -> None:
        """Raises :class:`SuiteError` if a service process (or the embedded broker) has died."""
        dead = self.dead_services()
        if dead:
            raise SuiteError(
                "; ".join(
                    f"{name} exited with code {code}{self._log_hint(name)}" for name, code in dead.items()
                )
            )

    # -- internals

    def _check_ports(self) -> None:
        # Fail before doing anything: otherwise the health check could pass against
        # another process on the port (another `make run`, another checkout).
        wanted = [(f"{p.env_prefix}PORT", self.ports[p.name]) for p in self.specs]
        if self.kafka_bootstrap is None and self.broker is None:
            wanted.append(("SWITCHBOARD_KAFKA_PORT", self.broker_port))
        busy = [f"{port} (set {var} to use another)" for var, port in wanted if not _port_free(port)]
        if busy:
            raise SuiteError(f"port already in use: {', '.join(busy)}; is the suite already running?")

    def _env(self, spec: ServiceSpec) -> dict[str, str]:
        p = spec.env_prefix
        env = {**os.environ, **self.extra_env}
        env[f"{p}DATABASE_URL"] = self.database_urls[spec.name]
        env[f"{p}PUBLIC_BASE_URL"] = f"http://localhost:{self.ports[spec.name]}"
        bootstrap = self.bootstrap
        if bootstrap is not None:
            env.setdefault(f"{p}KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        if self.broker is not None:
            # tansu has no InitProducerId; real Kafka keeps the service's default (on).
            env[f"{p}KAFKA_ENABLE_IDEMPOTENCE"] = "false"
            # It keeps nothing across its restarts: the relays publish their retained outbox again.
            env[f"{p}RELAY_REPLAY_ON_EMPTY_TOPICS"] = "true"
        if not os.environ.get("AUTH_JWKS_URL"):
            for name, value in self.issuer.env(p).items():
                env.setdefault(name, value)
        for other in self.specs:
            # The sibling services it may call (switchboard_kit.clients), unless set already.
            if other.name != spec.name:
                env.setdefault(f"{p}SIBLINGS__{other.name.upper()}", self.api_urls[other.name])
        env["PYTHONUNBUFFERED"] = "1"  # logs appear as they happen
        return env

    def _start_service(self, spec: ServiceSpec) -> None:
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = (self.log_dir / f"{spec.name}.log").open("ab")
            self._logs.append(output)
        self.processes[spec.name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                spec.app,
                "--host",
                HOST,
                "--port",
                str(self.ports[spec.name]),
                # The production server, as in the image and the chart: uvloop and httptools.
                *SERVER_OPTIONS,
            ],
            cwd=str(REPO_ROOT),
            env=self._env(spec),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            # Own process group: Ctrl-C reaches the launcher only, which stops services in order.
            start_new_session=True,
        )

    async def _wait_ready(self, spec: ServiceSpec) -> None:
        url = f"{self.urls[spec.name]}/health/ready"
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                self.check()
                try:
                    response = await client.get(url)
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                await asyncio.sleep(0.2)
        raise SuiteError(
            f"{spec.name} not ready after {self.ready_timeout:.0f}s ({last}){self._log_hint(spec.name)}"
        )

    def _log_hint(self, name: str) -> str:
        return f"; log: {self.log_dir / f'{name}.log'}" if self.log_dir else ""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option uvicorn and tansu use, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- CLI


def _data_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_DATA_DIR") or REPO_ROOT / ".data")


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "launcher.pid"


def _suite_from_env(args: argparse.Namespace, *, progress: bool = True) -> Suite:
    names = [n.strip() for n in args.services.split(",") if n.strip()] if args.services else None
    specs = [service_spec(n) for n in names] if names else SERVICES
    ports = {s.name: int(os.environ.get(f"{s.env_prefix}PORT", s.port)) for s in specs}
    given = {
        s.name: url for s in specs if (url := os.environ.get(f"{s.env_prefix}DATABASE_URL"))
    }  # used as-is
    return Suite(
        _data_dir(),
        [s.name for s in specs],
        ports=ports,
        broker_port=int(os.environ.get("SWITCHBOARD_KAFKA_PORT", DEFAULT_KAFKA_PORT)),
        database_url=os.environ.get("DATABASE_URL") or None,
        service_database_urls=given,
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        seed=not getattr(args, "no_seed", True),
        progress=progress,
    )


def _banner(suite: Suite) -> None:
    print()
    print("Switchboard is running:")
    for spec in suite.specs:
        public = f"http://localhost:{suite.ports[spec.name]}"
        resource = f"{public}{spec.base_path}/{spec.resource}" if spec.resource else public + spec.base_path
        print(f"  {spec.name:<15} {resource}")
        print(f"  {'':<15} {public}/docs  ({spec.api})")
    if suite.postgres is not None:
        print(f"  PostgreSQL      {unquote(suite.postgres.url)}  (data in {suite.postgres.data_dir})")
    if suite.broker is not None:
        print(f"  Kafka protocol  {suite.broker.bootstrap}  (tansu, in memory)")
    print("Every API call needs a bearer token; get one with:")
    print("  make token ROLE=agent        (or manager, integration, customer PARTY=CUST-1001)")
    print('  curl -H "Authorization: Bearer $(make -s token ROLE=agent)" ...')
    print("Press Ctrl-C to stop.", flush=True)


async def _run(args: argparse.Namespace) -> int:
    suite = _suite_from_env(args)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    main_task = asyncio.current_task()
    starting = True

    def on_signal() -> None:
        stopping.set()
        if starting and main_task is not None:
            main_task.cancel()  # interrupt a slow start; the finally block cleans up

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    pid_file = _pid_file(suite.data_dir)
    code = 0
    try:
        suite.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(os.getpid()))
        await suite.start()
        starting = False
        _banner(suite)
        while not stopping.is_set():
            if suite.broker is not None and not suite.broker.running:
                raise SuiteError(f"the embedded broker exited; see {suite.broker.log_path}")
            suite.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.5)
    except asyncio.CancelledError:
        pass
    except SuiteError as exc:
        print(f"\nError: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        print("\nStopping…", end=" ", flush=True)
        started = time.monotonic()
        await asyncio.shield(suite.stop())
        pid_file.unlink(missing_ok=True)
        print(f"done ({time.monotonic() - started:.1f}s)", flush=True)
    return code


async def _migrate(args: argparse.Namespace) -> int:
    suite = _suite_from_env(args)
    try:
        await suite.prepare_databases()
        await suite.migrate()
    except SuiteError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    finally:
        await suite.stop()
    return 0


def _stop(args: argparse.Namespace) -> int:
    """Stops a suite started by ``run`` in another terminal (or PostgreSQL a killed run left behind)."""
    data_dir = _data_dir()
    pid_file = _pid_file(data_dir)
    if pid_file.exists():
        pid = int(pid_file.read_text().strip() or 0)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid_file.unlink(missing_ok=True)
        else:
            print(f"Stopping launcher (pid {pid})…", end=" ", flush=True)
            deadline = time.monotonic() + 60
            while pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            print("done" if not pid_file.exists() else "still running", flush=True)
            return 0 if not pid_file.exists() else 1
    pgdata = data_dir / "postgres"
    if (pgdata / "postmaster.pid").exists():
        print("Stopping leftover embedded PostgreSQL…", end=" ", flush=True)
        start_postgres(pgdata).stop()
        print("done", flush=True)
    else:
        print("Nothing is running.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m switchboard_dev.launcher", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the suite and keep it running until Ctrl-C")
    names = ", ".join(s.name for s in SERVICES)
    run.add_argument("--services", help=f"comma-separated subset of the services in suite.toml ({names})")
    run.add_argument("--no-seed", action="store_true", help="do not create demo data")
    migrate = sub.add_parser("migrate", help="only apply database migrations")
    migrate.add_argument("--services", help="comma-separated subset")
    sub.add_parser("stop", help="stop a suite started by `run`")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return asyncio.run(_run(args))
        if args.command == "migrate":
            return asyncio.run(_migrate(args))
        return _stop(args)
    except SuiteError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
