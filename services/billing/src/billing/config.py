from __future__ import annotations

from decimal import Decimal

from pydantic_settings import SettingsConfigDict

from switchboard_kit.settings import ServiceSettings

# Value added tax by tax zone, in percent (as the catalogue's taxRate): the rate an account's zone names
# is applied to every charge of the account.
DEFAULT_TAX_RATES = {
    "NL": Decimal(21),
    "DE": Decimal(19),
    "FR": Decimal(20),
    "GB": Decimal(20),
    "US": Decimal(0),
}


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore", env_nested_delimiter="__")

    public_base_url: str = "http://localhost:8678"
    kafka_client_id: str = "switchboard-billing"
    # Bill runs and bills on demand run on the kit's scheduler inside the service.
    worker_enabled: bool = True
    worker_poll_interval: float = 0.5
    worker_batch_size: int = 50
    # When the daily bill-cycle schedule runs (five-field cron, UTC); each run bills the accounts whose
    # bill cycle day is that day.
    bill_cycle_cron: str = "0 2 * * *"
    # Where completed orders are read from (ordering's topic), and the consumer group that reads them.
    orders_topic: str = "tmf622.productOrder"
    orders_group: str = "billing-orders"
    # Accounts learned from orders get these until someone says otherwise.
    default_currency: str = "EUR"
    default_bill_cycle_day: int = 1
    default_payment_terms_days: int = 14
    default_tax_zone: str = "NL"
    tax_rates: dict[str, Decimal] = DEFAULT_TAX_RATES
