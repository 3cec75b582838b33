"""Round trips per second of the TMF models: validate a realistic payload, dump it back.

    make bench-models          # or: .venv/bin/python bench/bench_models.py [--repeats 7] [--seconds 1]

One core, one process. Each row is the median (and best) of several timed repeats after a
warm-up. The target is 20,000 round trips/s for the broadband ProductOrder
(libs/tmf_models/tests/fixtures/product_order_broadband.json) on the JSON path, the one a
service takes (request bytes -> model -> response bytes).

``gc.freeze()`` runs after the imports, as a server would after start-up: the thousands of
objects pydantic builds at import otherwise get rescanned by every full collection, which
costs a third of the throughput here. The ``gc on`` row shows the figure without it.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from tmf_models import common, tmf621, tmf622, tmf676, tmf678
from tmf_models.common import TMFModel

FIXTURES = Path(__file__).resolve().parents[1] / "libs" / "tmf_models" / "tests" / "fixtures"
TARGET = 20_000


def measure(fn: Callable[[], object], repeats: int, seconds: float) -> tuple[float, float]:
    """(median, best) calls per second over ``repeats`` runs of about ``seconds`` each."""
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < 0.2:  # warm-up, and a first estimate of the speed
        fn()
        calls += 1
    batch = max(1, int(calls / (time.perf_counter() - start) * seconds))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates), max(rates)


def cases() -> list[tuple[str, Callable[[], object]]]:
    def load(name: str) -> tuple[dict[str, object], bytes]:
        data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
        return data, json.dumps(data).encode()

    rows: list[tuple[str, Callable[[], object]]] = []

    def add(label: str, model: type[TMFModel], fixture: str, *, dict_path: bool = False) -> None:
        data, raw = load(fixture)
        assert json.loads(common.dump_json(model.model_validate_json(raw))) == data, fixture
        rows.append((f"{label}  json", lambda: common.dump_json(model.model_validate_json(raw))))
        if dict_path:
            rows.append((f"{label}  dict", lambda: common.dump(model.model_validate(data))))

    add(
        "ProductOrder broadband (target)", tmf622.ProductOrder, "product_order_broadband.json", dict_path=True
    )
    add("ProductOrder full (61 objects)", tmf622.ProductOrder, "product_order_full.json")
    add("CustomerBill monthly", tmf678.CustomerBill, "customer_bill_monthly.json")
    add("TroubleTicket", tmf621.TroubleTicket, "trouble_ticket_broadband.json")
    add("Payment, two bills", tmf676.Payment, "payment_two_bills.json")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed repeat")
    args = parser.parse_args()

    rows = cases()
    target_fn = rows[0][1]
    gc.collect()
    gc.freeze()
    results = [(label, *measure(fn, args.repeats, args.seconds)) for label, fn in rows]
    gc.unfreeze()
    results.append(("ProductOrder broadband  json, gc on", *measure(target_fn, args.repeats, args.seconds)))

    width = max(len(r[0]) for r in results)
    print(f"round trips/s: validate + dump, median of {args.repeats} repeats (best in brackets), one core")
    print(f"{'payload  path':<{width}}  {'median':>9}  {'best':>9}  {'us/trip':>8}")
    for label, median, best in results:
        print(f"{label:<{width}}  {median:>9,.0f}  {best:>9,.0f}  {1e6 / median:>8.1f}")
    target = results[0][1]
    verdict = "meets" if target >= TARGET else "is below"
    print(f"\nProductOrder broadband, JSON path: {target:,.0f}/s {verdict} the {TARGET:,}/s target.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
