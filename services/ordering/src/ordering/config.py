from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from switchboard_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERING_", extra="ignore")

    public_base_url: str = "http://localhost:8622"
    kafka_client_id: str = "switchboard-ordering"
    # Fulfilment worker and the simulated provisioning adapter.
    worker_enabled: bool = True
    worker_poll_interval: float = 0.5
    worker_batch_size: int = 50
    provisioning_delay_seconds: float = 2.0
    provisioning_fallout_rate: float = 0.0
    provisioning_pending_rate: float = 0.0
    provisioning_seed: int | None = None
    cancellation_delay_seconds: float = 1.0
    catalog_path: str | None = None
