"""Provisioning adapters: how an order item gets fulfilled in the network and IT stack."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Outcome = Literal["completed", "held", "pending", "failed"]


@dataclass(frozen=True)
class ProvisioningResult:
    outcome: Outcome
    reason: str | None = None


class ProvisioningAdapter(Protocol):
    """Fulfils one order item. Called by the fulfilment worker once the item's delay has passed."""

    async def provision(self, order: dict[str, Any], item: dict[str, Any]) -> ProvisioningResult: ...


class SimulatedProvisioning:
    """Completes every item, except a configurable share that falls out to ``held`` (or ``pending``)."""

    FALLOUT_REASONS = (
        "Port capacity exhausted at the local exchange",
        "Installation appointment could not be confirmed",
        "Inventory mismatch for the serving line",
    )

    def __init__(
        self, *, fallout_rate: float = 0.0, pending_rate: float = 0.0, seed: int | None = None
    ) -> None:
        if not 0.0 <= fallout_rate <= 1.0 or not 0.0 <= pending_rate <= 1.0:
            raise ValueError("rates must be between 0 and 1")
        self.fallout_rate = fallout_rate
        self.pending_rate = pending_rate
        self.random = random.Random(seed)

    async def provision(self, order: dict[str, Any], item: dict[str, Any]) -> ProvisioningResult:
        roll = self.random.random()
        if roll < self.fallout_rate:
            return ProvisioningResult("held", self.random.choice(self.FALLOUT_REASONS))
        if roll < self.fallout_rate + self.pending_rate:
            return ProvisioningResult("pending", "Customer must confirm the installation appointment")
        return ProvisioningResult("completed")
