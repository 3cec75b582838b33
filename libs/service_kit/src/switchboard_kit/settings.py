"""Settings shared by every service: each service subclasses with its own env prefix."""

from __future__ import annotations

import os
from typing import Any

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class ServiceSettings(BaseSettings):
    """Base settings. A subclass sets ``model_config = SettingsConfigDict(env_prefix="<NAME>_")``.

    ``database_url`` and ``kafka_bootstrap_servers`` fall back to the suite-wide
    ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` when no per-service value is set.
    """

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = 32
    db_max_overflow: int = 8
    db_pool_pre_ping: bool = False
    kafka_bootstrap_servers: str | None = None
    # On for Apache Kafka; the embedded tansu broker has no InitProducerId, so the launcher turns it off.
    kafka_enable_idempotence: bool = True
    kafka_client_id: str = "switchboard"
    public_base_url: str = "http://localhost:8000"
    max_body_bytes: int = 1_048_576
    default_page_limit: int = 100
    max_page_limit: int = 1000
    relay_enabled: bool = True
    relay_batch_size: int = 200
    relay_poll_interval: float = 0.2
    # Event consumers (switchboard_kit.consumer): attempts of a failing record before its dead letter,
    # and the backoff between them (doubling from base, at most max), in seconds.
    consumer_max_attempts: int = 5
    consumer_backoff_base: float = 0.5
    consumer_backoff_max: float = 30.0
    # Set by the launcher for its embedded broker, which keeps nothing across restarts: when the
    # relay finds the service's topics empty it publishes every retained outbox row again.
    relay_replay_on_empty_topics: bool = False
    hub_enabled: bool = True
    hub_poll_interval: float = 0.5
    hub_max_attempts: int = 12
    hub_backoff_base: float = 1.0
    hub_backoff_max: float = 300.0
    hub_timeout: float = 5.0
    # Retention of the kit's own rows, in seconds (0 keeps them); see switchboard_kit.retention.
    retention_interval: float = 300.0
    outbox_retention: float = 7 * 86400.0
    hub_delivery_retention: float = 7 * 86400.0
    processed_event_retention: float = 30 * 86400.0
    idempotency_key_retention: float = 86400.0
    log_level: str = "INFO"
    gc_thresholds: tuple[int, int, int] = (20_000, 50, 100)

    @model_validator(mode="before")
    @classmethod
    def _suite_wide_fallbacks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field, env in (
                ("database_url", "DATABASE_URL"),
                ("kafka_bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
            ):
                if field not in data and os.environ.get(env):
                    data[field] = os.environ[env]
        return data
