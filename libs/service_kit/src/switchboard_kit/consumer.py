"""Event consumers: exactly-once effects from at-least-once delivery.

A service declares its consumers when it builds its app (``create_service_app(consumers=[...])``)::

    async def on_order(event: TmfEvent, uow: UnitOfWork) -> None:
        await uow.execute(insert(bill_item).values(order_id=event.resource["id"], ...))

    Consumer(topic="tmf622.productOrder", group="charges-orders", handler=on_order)

The app runs each one with its lifecycle. For every record, in partition order (so in order per key):

- the record is parsed into the consumer's ``model`` (a pydantic model of the TMF event envelope);
- the handler's effects and the ``(group, eventId)`` row of ``processed_event`` commit in one unit
  of work of the service's store; a record whose row is already there (a redelivery, a replay) is
  skipped, so each event has its effects once;
- a failing record is tried again with a growing backoff; after ``max_attempts`` it is written to
  the ``dead_letter`` table and to the ``<topic>.DLT`` topic with its error, and the partition moves
  on (``python -m switchboard_kit.deadletters`` lists and replays dead letters);
- offsets are committed only after the records before them committed (or were dead-lettered).

A record that cannot be parsed at all goes to the dead letters at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .db import KitTables
from .kafka import ensure_topics
from .store import Store, UnitOfWork

log = logging.getLogger("switchboard.consumer")

DLT_SUFFIX = ".DLT"


class TmfEvent(BaseModel):
    """A TMF event envelope as published by the kit (see :func:`switchboard_kit.events.envelope`).
    ``event`` holds the resource under its name, e.g. ``{"productOrder": {...}}``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    eventId: str
    eventType: str
    eventTime: str | None = None
    correlationId: str | None = None
    domain: str | None = None
    event: dict[str, Any]

    @property
    def resource(self) -> dict[str, Any]:
        """The one resource the event carries."""
        return next(iter(self.event.values()))


E = TypeVar("E", bound=BaseModel)
Handler = Callable[[E, UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class Consumer(Generic[E]):
    """A declared consumer: ``group`` is its Kafka consumer group and its name in ``processed_event``
    and ``dead_letter``. ``model`` must have an ``eventId`` (default :class:`TmfEvent`)."""

    topic: str
    group: str
    handler: Handler[E]
    model: type[E] = TmfEvent  # type: ignore[assignment]


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 5
    backoff_base: float = 0.5  # seconds before the second attempt; doubles each time
    backoff_max: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_base * 2 ** (attempt - 1), self.backoff_max))


class _Stopping(Exception):
    """Raised out of a backoff when the consumer is asked to stop."""


class PoisonRecord(Exception):
    """A record no attempt can process (not a TMF event of the consumer's model)."""


@dataclass
class ConsumerStats:
    """What the loop has done: the signals tests and ``/health/ready`` read."""

    seen: int = 0  # records read from the broker (duplicates included)
    processed: int = 0  # records whose effects committed
    duplicates: int = 0  # records skipped as already processed
    dead_lettered: int = 0
    committed: dict[TopicPartition, int] = field(default_factory=dict)  # next offset, per partition


async def first_delivery(uow: UnitOfWork, tables: KitTables, consumer: str, event_id: str) -> bool:
    """Records the event as processed in ``uow``; False if this consumer has already processed it."""
    rows = await uow.fetch(
        pg_insert(tables.processed_event)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(tables.processed_event.c.event_id)
    )
    return bool(rows)


async def handle_once(store: Store, consumer: Consumer[E], event: E) -> bool:
    """Runs the handler in one unit of work with the tracking row; False for a redelivery (no effect).
    A handler error rolls both back."""
    event_id = str(getattr(event, "eventId", "") or "")
    if not event_id:
        raise PoisonRecord("the event has no eventId")
    async with store.unit_of_work() as uow:
        if not await first_delivery(uow, store.tables, consumer.group, event_id):
            return False
        await consumer.handler(event, uow)
    return True


def parse(consumer: Consumer[E], value: bytes | None) -> E:
    try:
        return consumer.model.model_validate(orjson.loads(value or b"null"))
    except Exception as exc:
        raise PoisonRecord(f"not a {consumer.model.__name__}: {exc}") from exc


class ConsumerRunner(Generic[E]):
    """Runs one :class:`Consumer` against a broker and the service's store (see the module docstring)."""

    def __init__(
        self,
        consumer: Consumer[E],
        store: Store,
        *,
        bootstrap: str,
        retry: Retry = Retry(),
        client_id: str = "switchboard",
        max_records: int = 100,
    ) -> None:
        self.consumer = consumer
        self.store = store
        self.bootstrap = bootstrap
        self.retry = retry
        self.client_id = client_id
        self.max_records = max_records
        self.stats = ConsumerStats()
        self.kafka: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.stopped_with: BaseException | None = None
        self._stop = asyncio.Event()

    @property
    def name(self) -> str:
        return self.consumer.group

    def stop(self) -> None:
        """Asks the loop to end after the record in hand (its offsets committed)."""
        self._stop.set()

    async def lag(self) -> int | None:
        """Records on the assigned partitions not yet processed (None before the first fetch)."""
        kafka = self.kafka
        if kafka is None:
            return None
        total = 0
        for tp in kafka.assignment():
            high = kafka.highwater(tp)
            if high is None:
                return None
            done = self.stats.committed.get(tp)
            if done is None:
                done = await kafka.committed(tp) or 0
            total += max(high - done, 0)
        return total

    async def run(self) -> None:
        """Consumes until :meth:`stop` (or cancellation); an error ends it (see :func:`supervise`)."""
        self.stopped_with = None
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.stopped_with = exc
            raise

    async def _run(self) -> None:
        await ensure_topics(self.bootstrap, [self.consumer.topic, self.consumer.topic + DLT_SUFFIX])
        self.kafka = AIOKafkaConsumer(
            self.consumer.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.consumer.group,
            client_id=f"{self.client_id}-{self.consumer.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await self.kafka.start()
        try:
            await self.producer.start()
            with contextlib.suppress(_Stopping):
                await self._loop()
        finally:
            with contextlib.suppress(Exception):
                await self.kafka.stop()
            with contextlib.suppress(Exception):
                await self.producer.stop()

    async def _loop(self) -> None:
        assert self.kafka is not None
        while not self._stop.is_set():
            batches = await self.kafka.getmany(timeout_ms=500, max_records=self.max_records)
            for tp, records in batches.items():
                self.stats.seen += len(records)
                done: int | None = None
                try:
                    for record in records:
                        if self._stop.is_set():
                            break  # the rest of the batch is read again by whoever comes next
                        await self._handle(record)
                        done = record.offset + 1
                finally:
                    if done is not None:
                        # Every record before ``done`` has committed its effects (or its dead letter).
                        await self.kafka.commit({tp: done})
                        self.stats.committed[tp] = done

    async def _handle(self, record: ConsumerRecord[Any, Any]) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                if await handle_once(self.store, self.consumer, parse(self.consumer, record.value)):
                    self.stats.processed += 1
                else:
                    self.stats.duplicates += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                poison = isinstance(exc, PoisonRecord)
                if poison or attempt >= self.retry.max_attempts:
                    await self._dead_letter(record, exc, attempt)
                    return
                delay = self.retry.delay(attempt)
                log.warning(
                    "consumer handler failed, retrying",
                    extra={
                        "consumer": self.name,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "attempt": attempt,
                        "backoff": delay,
                        "error": repr(exc),
                    },
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    raise _Stopping from exc  # not committed: read again on restart

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], exc: BaseException, attempts: int) -> None:
        error = f"{type(exc).__name__}: {exc}"
        key = record.key.decode(errors="replace") if record.key is not None else None
        headers = [[k, v.decode(errors="replace")] for k, v in record.headers]
        event_id = None
        with contextlib.suppress(Exception):
            event_id = str(orjson.loads(record.value)["eventId"])
        dead_letter = self.store.tables.dead_letter
        async with self.store.unit_of_work() as uow:
            await uow.execute(
                pg_insert(dead_letter)
                .values(
                    consumer=self.consumer.group,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=key,
                    value=record.value or b"",
                    headers=headers,
                    event_id=event_id,
                    error=error,
                    attempts=attempts,
                )
                .on_conflict_do_nothing()
            )
        assert self.producer is not None
        await self.producer.send_and_wait(
            record.topic + DLT_SUFFIX,
            record.value,
            key=record.key,
            headers=[*record.headers, ("error", error.encode()), ("consumer", self.consumer.group.encode())],
        )
        self.stats.dead_lettered += 1
        log.error(
            "record dead-lettered",
            extra={
                "consumer": self.name,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "event_id": event_id,
                "attempts": attempts,
                "error": error,
            },
        )


async def supervise(runner: ConsumerRunner[Any], *, restart_delay: float = 1.0) -> None:
    """Runs ``runner`` and starts it again after a broker or connection error (broker restarted,
    network lost). Any other error (say, the database refuses even the dead letter) stops it, as
    :meth:`ConsumerRunner.stop` does: ``/health/ready`` then answers 503."""
    from aiokafka.errors import KafkaError

    delay = restart_delay
    while not runner._stop.is_set():
        try:
            await runner.run()
        except (KafkaError, OSError) as exc:
            log.warning(
                "consumer lost the broker, restarting", extra={"consumer": runner.name, "error": repr(exc)}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        except Exception:
            log.exception("consumer stopped", extra={"consumer": runner.name})
            raise
        else:
            return


async def describe(
    runners: Sequence[ConsumerRunner[Any]], tasks: Sequence[asyncio.Task[None]]
) -> dict[str, Any]:
    """Each consumer's state and lag, for ``/health/ready``."""
    out: dict[str, Any] = {}
    for runner, task in zip(runners, tasks, strict=True):
        state = "running"
        if task.done():
            state = "stopped"
        out[runner.name] = {
            "topic": runner.consumer.topic,
            "state": state,
            "lag": await runner.lag(),
            "processed": runner.stats.processed,
            "deadLettered": runner.stats.dead_lettered,
        }
        if runner.stopped_with is not None:
            out[runner.name]["error"] = repr(runner.stopped_with)
    return out
