"""A small closed-loop HTTP/1.1 load generator for the benchmarks.

Each client owns one keep-alive connection and sends its next request as soon as the previous
response has been read. Requests are pre-encoded bytes and responses are parsed just enough to
find their end, so the generator costs a few tens of microseconds per request: on a two-core
machine it shares the CPU with the server and PostgreSQL, and httpx would cost several times
more (its CPU share is reported with every run so the overhead stays visible).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Extra header lines every request carries (the bench sets a bearer token: the service needs one, and
# the floor gets the same bytes so that both parse the same request).
EXTRA_HEADERS: dict[str, str] = {}


def _extra() -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in EXTRA_HEADERS.items())


def post_request(
    host: str, port: int, path: str, body: bytes, *, content_type: str = "application/json"
) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Accept: application/json\r\n{_extra()}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def get_request(host: str, port: int, path: str) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n{_extra()}\r\n"
    return head.encode("latin-1")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(parts)
    return status, await reader.readexactly(length) if length > 0 else b""


@dataclass
class LoadResult:
    """What one measured window produced: latencies in seconds of the requests completed in it."""

    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    client_cpu: float  # CPU seconds the load generator itself used during the window
    server_cpu: float  # CPU seconds of the server process tree during the window
    db_cpu: float  # CPU seconds of the PostgreSQL backends connected to the bench database
    db_connects: int  # backends that connected during the window (pool churn)
    machine_busy: float  # fraction of all cores busy during the window (whole machine)
    aborted: bool = False  # an open-loop window stopped early: its p99 was already over the limit

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    def per_request(self, cpu_seconds: float) -> float:
        return cpu_seconds / max(1, self.count)

    def summary(self) -> str:
        return (
            f"{self.throughput:7.0f} req/s  p50 {self.percentile(50) * 1e3:6.1f} ms  p99 {self.percentile(99) * 1e3:6.1f} ms"
            f"  CPU/req app {self.per_request(self.server_cpu) * 1e3:.2f} ms, db {self.per_request(self.db_cpu) * 1e3:.2f} ms"
            f" ({self.db_connects} new db connections)"
            f"  machine busy {self.machine_busy:.0%}  load generator {self.client_cpu / self.seconds:.0%} of a core"
        )

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class _Snapshot:
    server: float  # CPU seconds of the server process tree
    backends: dict[int, float]  # CPU seconds of each PostgreSQL backend of the database, by pid


def _cpu_snapshot(pid: int | None, database: str | None) -> _Snapshot:
    """utime + stime (seconds) of a process with all its descendants (uvicorn --workers N forks),
    and of each local PostgreSQL backend connected to ``database``. Other databases' backends (the
    machine is shared) and the server's own background processes (WAL writer, checkpointer) are
    left out."""
    marker = f" {database} ".encode() if database else None
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    backends: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(entry.name))
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        stats[int(entry.name)] = cpu
        if marker and raw[raw.index("(") + 1 : raw.rindex(")")] == "postgres":
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in title:
                backends[int(entry.name)] = cpu
    total, todo = 0.0, [pid] if pid else []
    while todo:
        current = todo.pop()
        total += stats.get(current, 0.0)
        todo.extend(children.get(current, []))
    return _Snapshot(total, backends)


def _backend_cpu(before: _Snapshot, after: _Snapshot) -> tuple[float, int]:
    """CPU the backends used between two snapshots, and how many connected in between. A backend
    that disconnected in between is missing from ``after``: its last share is lost (undercount)."""
    used = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items())
    return used, len(after.backends.keys() - before.backends.keys())


def _machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


async def _measure(
    start: float, end: float, server_pid: int | None, database: str | None
) -> tuple[float, float, float, int, float]:
    """CPU of the load generator, the server and the database backends, connections opened, and how
    busy the machine was, between the loop times ``start`` and ``end``."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start - loop.time()))
    c0, s0, m0 = time.process_time(), _cpu_snapshot(server_pid, database), _machine_ticks()
    await asyncio.sleep(max(0.0, end - loop.time()))
    c1, s1, m1 = time.process_time(), _cpu_snapshot(server_pid, database), _machine_ticks()
    busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    db_cpu, connects = _backend_cpu(s0, s1)
    return c1 - c0, s1.server - s0.server, db_cpu, connects, busy


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    server_pid: int | None = None,
    database: str | None = None,
) -> LoadResult:
    """Closed loop: ``concurrency`` connections, ``warmup`` seconds discarded, then ``duration`` measured.

    Requests are taken round-robin from ``requests``. A request counts when it completes inside
    the measured window; its latency runs from the first byte written to the last byte read.
    """
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + duration
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0
    perf = time.perf_counter

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_index
        while loop.time() < end:
            request = requests[next_index % len(requests)]
            next_index += 1
            t0 = perf()
            writer.write(request)
            status, _ = await _read_response(reader)
            t1 = perf()
            now = loop.time()
            if start <= now <= end:
                latencies.append(t1 - t0)
                statuses[status] = statuses.get(status, 0) + 1

    try:
        tasks = [asyncio.create_task(client(r, w)) for r, w in connections]
        client_cpu, server_cpu, db_cpu, connects, busy = await _measure(start, end, server_pid, database)
        await asyncio.gather(*tasks)
    finally:
        for _, writer in connections:
            writer.close()
    return LoadResult(duration, latencies, statuses, client_cpu, server_cpu, db_cpu, connects, busy)


async def run_open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    duration: float,
    warmup: float,
    connections: int = 64,
    server_pid: int | None = None,
    database: str | None = None,
    abort_over: float | None = None,
) -> LoadResult:
    """Open loop: requests are sent on a fixed schedule, ``rate`` per second, whatever the server does.

    A request's latency runs from the moment it was *due* to the last byte of its response, so time
    spent waiting for a free connection (of ``connections``) or behind a slow server counts: a server
    that falls behind shows it as growing latency instead of as fewer requests sent (no coordinated
    omission). Requests due inside the measured window are counted.

    ``abort_over`` (seconds; for a capacity search): once more than 1% of the requests due in the
    window have taken longer than that, the window's p99 is over it whatever comes next, so the
    window stops there (``aborted``; the requests in flight are dropped with their connections and
    CPU is not measured) instead of queueing more work behind a server that cannot keep up.
    """
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    opened = [await asyncio.open_connection(host, port) for _ in range(connections)]
    for pair in opened:
        idle.put_nowait(pair)
    loop = asyncio.get_running_loop()
    first = loop.time() + 0.05
    start = first + warmup
    end = start + duration
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    in_flight: set[asyncio.Task[None]] = set()
    over_budget = rate * duration / 100
    over = 0
    stop = asyncio.Event()

    async def send(request: bytes, due: float) -> None:
        nonlocal over
        reader, writer = await idle.get()
        try:
            writer.write(request)
            status, _ = await _read_response(reader)
        finally:
            idle.put_nowait((reader, writer))
        if start <= due < end:
            latency = loop.time() - due
            latencies.append(latency)
            statuses[status] = statuses.get(status, 0) + 1
            if abort_over is not None and latency > abort_over:
                over += 1
                if over > over_budget:
                    stop.set()

    async def schedule() -> None:
        index = 0
        while (due := first + index / rate) < end:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(send(requests[index % len(requests)], due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            index += 1
        await asyncio.gather(*in_flight)

    scheduler = asyncio.create_task(schedule())
    measure = asyncio.create_task(_measure(start, end, server_pid, database))
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({scheduler, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            pending = [scheduler, measure, *in_flight]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return LoadResult(duration, latencies, statuses, 0.0, 0.0, 0.0, 0, 0.0, aborted=True)
        client_cpu, server_cpu, db_cpu, connects, busy = await measure
        await scheduler
    finally:
        # No-ops when done; after an error, nothing is left running.
        stopped.cancel()
        measure.cancel()
        scheduler.cancel()
        for _, writer in opened:
            writer.close()
    return LoadResult(duration, latencies, statuses, client_cpu, server_cpu, db_cpu, connects, busy)
