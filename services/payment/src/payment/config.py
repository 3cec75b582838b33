from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from switchboard_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENT_", extra="ignore")

    public_base_url: str = "http://localhost:8676"
    kafka_client_id: str = "switchboard-payment"
    # The simulated gateway (payment.gateway.SimulatedGateway).
    gateway_latency_seconds: float = 0.0
    gateway_timeout_seconds: float = 10.0
    # How long the simulated gateway takes to finish a request it answered with a timeout
    # (token tok_late_success): until then a lookup says it is still processing.
    gateway_late_success_seconds: float = 5.0
    # Reconciliation of payments and refunds whose gateway answer is unknown (a timeout).
    worker_enabled: bool = True
    worker_poll_interval: float = 0.5
    worker_batch_size: int = 50
    reconcile_delay_seconds: float = 5.0
