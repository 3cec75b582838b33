from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from switchboard_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TROUBLE_TICKET_", extra="ignore")

    public_base_url: str = "http://localhost:8621"
    kafka_client_id: str = "switchboard-trouble-ticket"
    # The SLA timers (warning at 80 %, breach at 100 % of a target): due work of the kit's scheduler.
    worker_enabled: bool = True
    worker_poll_interval: float = 0.5
    worker_batch_size: int = 50
    # The SLA policy file (default: the packaged policy/default.json).
    sla_policy_path: str | None = None
