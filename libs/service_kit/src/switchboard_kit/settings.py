"""Settings shared by every service: each service subclasses with its own env prefix."""

from __future__ import annotations

import os
from typing import Annotated, Any

import orjson
from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class ServiceSettings(BaseSettings):
    """Base settings. A subclass sets ``model_config = SettingsConfigDict(env_prefix="<NAME>_")``.

    ``database_url`` and ``kafka_bootstrap_servers`` fall back to the suite-wide
    ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` when no per-service value is set.
    """

    # "__" reads nested values: <PREFIX>SIBLINGS__<NAME>=<base URL> is siblings["<name>"].
    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore", env_nested_delimiter="__")

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
    # Sibling services this one calls (switchboard_kit.clients): name -> base URL of its TMF API, from
    # <PREFIX>SIBLINGS__<NAME> (make run sets one per service of the suite manifest) or a JSON object.
    siblings: dict[str, str] = {}
    sibling_connect_timeout: float = 1.0
    sibling_read_timeout: float = 5.0
    sibling_total_timeout: float = 10.0  # the whole call, retries and backoff included
    sibling_attempts: int = 3  # idempotent calls only
    sibling_backoff_base: float = 0.1
    sibling_backoff_max: float = 2.0
    sibling_breaker_failures: int = 5  # consecutive failures that open a sibling's circuit
    sibling_breaker_reset: float = 10.0  # seconds open before one probe call is let through
    # Retention of the kit's own rows, in seconds (0 keeps them); see switchboard_kit.retention.
    retention_interval: float = 300.0
    outbox_retention: float = 7 * 86400.0
    hub_delivery_retention: float = 7 * 86400.0
    processed_event_retention: float = 30 * 86400.0
    idempotency_key_retention: float = 86400.0
    # Sign-in (switchboard_kit.auth): the identity provider's JWKS (https:// or file://), the token
    # issuer and audience; without them every protected request is refused. Roles and a customer's
    # party come from these claims (a dotted path reaches into nested claims).
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_roles_claim: str = "roles"
    auth_party_claim: str = "party_id"
    # Browser origins allowed to call the API (CORS), e.g. "https://desk.example,https://ops.example"
    # or a JSON list; empty (the default) answers no cross-origin request.
    cors_allow_origins: Annotated[list[str], NoDecode] = []
    log_level: str = "INFO"
    gc_thresholds: tuple[int, int, int] = (20_000, 50, 100)

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="before")
    @classmethod
    def _suite_wide_fallbacks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field, env in (
                ("database_url", "DATABASE_URL"),
                ("kafka_bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
                ("auth_jwks_url", "AUTH_JWKS_URL"),
                ("auth_issuer", "AUTH_ISSUER"),
                ("auth_audience", "AUTH_AUDIENCE"),
            ):
                if field not in data and os.environ.get(env):
                    data[field] = os.environ[env]
        return data
