"""CPU of the service's own process per GET ``?relatedParty.id=`` lookup, in process (issue #8).

Runs the ordering app in this process (httpx's ASGI transport, a real PostgreSQL, a bearer token
from the tests' issuer), stores ``--orders`` orders and times ``--lookups`` lookups with
``time.process_time`` (the database server's CPU is another process's, not counted), ``--repeats``
times; prints the medians, and the same for the pieces of the list path: statement building
(query checks + SQL text and arguments), the cached token check and the re-encoding of the answer.
To compare with another version of the kit, put its sources first on ``PYTHONPATH``.

    .venv/bin/python bench/list_path_cpu.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ordering.app import create_app
from ordering.config import Settings
from ordering.samples import broadband_order
from switchboard_dev import testing
from switchboard_kit import auth, resource, store

ROOT = Path(__file__).resolve().parents[1]
BASE = "/tmf-api/productOrderingManagement/v4/productOrder"


def _per_call(fn: Callable[[], Any], number: int, repeats: int) -> float:
    """Median microseconds per call."""
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeats)) / number * 1e6


async def run(args: argparse.Namespace, url: str) -> None:
    if True:
        settings = Settings(
            database_url=url,
            kafka_bootstrap_servers=None,
            worker_enabled=False,
            hub_enabled=False,
            public_base_url="http://orders.example",
            **testing.auth_settings(),
        )
        app = create_app(settings)
        async with testing.running(app) as client:
            for i in range(args.orders):
                response = await client.post(
                    BASE, content=orjson.dumps(broadband_order(f"C{i % 50}", f"BA{i}"))
                )
                assert response.status_code == 201, response.text
            paths = [f"{BASE}?relatedParty.id=C{i % 50}" for i in range(args.lookups)]
            for path in paths[:200]:  # warm up: the first request of a shape compiles its SQL
                assert (await client.get(path)).status_code == 200
            per_lookup = []
            for _ in range(args.repeats):
                started = time.process_time()
                for path in paths:
                    await client.get(path)
                per_lookup.append((time.process_time() - started) / len(paths) * 1e6)
            print(
                f"handler path incl. httpx client: {statistics.median(per_lookup):.0f} us CPU per lookup "
                f"(runs: {', '.join(f'{v:.0f}' for v in per_lookup)})"
            )

            served = next(r for r in app.routes if getattr(r, "path", "") == BASE)
            handler = getattr(served.endpoint, "__self__", None)
            runtime = app.state.runtime
            compiler = handler.query if handler is not None else None
            table = handler.resource.table if handler is not None else None
            params = [("relatedParty.id", "C7")]
            if compiler is not None:
                if hasattr(compiler, "page"):
                    build = lambda: runtime.store._page_sql(table, compiler.page(params))  # noqa: E731
                else:
                    build = lambda: runtime.store.statements.sql(  # noqa: E731
                        store._page_statement(table, compiler.parse(params))
                    )
                print(f"statement building: {_per_call(build, 2000, args.repeats):.1f} us")
            token = testing.issuer().token("integration")
            verifier: auth.Verifier = runtime.verifier
            await verifier.verify(token)

            def cached_verify() -> None:  # a remembered token: the coroutine returns at once
                with contextlib.suppress(StopIteration):
                    verifier.verify(token).send(None)

            print(f"cached token check: {_per_call(cached_verify, 20000, args.repeats):.2f} us")
            rows, total = await runtime.store.list_page(table, compiler.parse(params))
            encode = lambda: resource.list_response(rows, total=total, offset=0, paged=False, fields=None)  # noqa: E731
            print(f"list_response ({len(rows)} documents): {_per_call(encode, 2000, args.repeats):.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = testing.create_database(args.database_url or os.environ["DATABASE_URL"], "sb_list_cpu")
    try:
        testing.migrate(ROOT / "services/ordering/alembic.ini", url)
        asyncio.run(run(args, url))
    finally:
        testing.drop_database(url)


if __name__ == "__main__":
    main()
