"""The floors of the ordering benchmarks: the least a TMF622 create, and a customer lookup, can do.

POST: FastAPI validates the body as ``tmf622.ProductOrder_Create`` (pydantic), the handler adds an id
and inserts the document as JSONB with asyncpg, one row per transaction (autocommit), and returns it.
No catalogue validation, pricing, state machine, outbox, idempotency or SQLAlchemy; the table
``bench_floor_order`` must exist (bench_ordering.py creates it).

GET ``?relatedParty.id=``: FastAPI reads the one query parameter, asyncpg runs the service's own
lookup statement (a hand-written string, prepared once per connection) on the service's
``product_order`` table, and the handler joins the stored JSON texts into the list, with
``X-Total-Count``. No TMF630 parsing, other filters, fields, paging headers or SQLAlchemy.

Run it with ``uvicorn --factory floor_app:create_app`` and ``FLOOR_DATABASE_URL`` (a SQLAlchemy or
libpq URL).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

from tmf_models import tmf622

PATH = "/tmf-api/productOrderingManagement/v4/productOrder"
INSERT = "INSERT INTO bench_floor_order (id, doc) VALUES ($1, $2::jsonb)"
LOOKUP = (
    "SELECT doc::text, count(*) OVER () FROM product_order WHERE party_ids @> $1::text[]"
    " ORDER BY order_date DESC, id LIMIT 100"
)


def create_app() -> FastAPI:
    dsn = os.environ["FLOOR_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    # The same connection budget as the service's SQLAlchemy pool (pool_size, no overflow), all kept open.
    min_size = max_size = int(os.environ.get("FLOOR_POOL_SIZE", "32"))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="POST productOrder floor", lifespan=lifespan)

    @app.post(PATH, status_code=201)
    async def create_product_order(body: tmf622.ProductOrder_Create, request: Request) -> Response:
        order_id = str(uuid.uuid4())
        doc = {"id": order_id, **body.model_dump(mode="json", by_alias=True, exclude_unset=True)}
        payload = orjson.dumps(doc)
        async with request.app.state.pool.acquire() as conn:
            await conn.execute(INSERT, order_id, payload.decode())
        return Response(payload, status_code=201, media_type="application/json")

    @app.get(PATH)
    async def list_product_order(request: Request) -> Response:
        customer = request.query_params["relatedParty.id"]
        async with request.app.state.pool.acquire() as conn:
            rows = await conn.fetch(LOOKUP, [customer])
        total = rows[0][1] if rows else 0
        body = ("[" + ",".join(row[0] for row in rows) + "]").encode()
        return Response(body, media_type="application/json", headers={"X-Total-Count": str(total)})

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    return app
