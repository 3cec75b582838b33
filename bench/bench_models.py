"""Round trips per second of the TMF models: validate a realistic payload, dump it back.

    make bench-models          # or: .venv/bin/python bench/bench_models.py [--repeats 7] [--seconds 1]

One core, one process. Each row is the median (and best) of several timed repeats after a
warm-up. The target is 20,000 round trips/s for the broadband ProductOrder
(libs/tmf_models/tests/fixtures/product_order_broadband.json) on the JSON path, the one a
service takes (request bytes -> model -> response bytes).

``gc.freeze()`` runs after the imports, as a server would after start-up: the thousands of
objects pydantic builds at import otherwise get rescanned by every full collection, which
costs a third of the throughput here. The ``gc on`` row shows the figure without it.

The target is an absolute rate, and these machines differ by up to twice in speed from one
session to the next, so three baselines run on the same payload in the same process:

- ``json`` and ``orjson``: parse the bytes to dicts and encode them again, no validation at all;
- ``plain pydantic``: the same generated classes built on a bare ``BaseModel`` (pydantic's
  defaults: extra attributes ignored, validation by alias only, pydantic's own date-time type),
  dumped the same way. It is what pydantic itself costs for these shapes, before our wire rules
  (extension attributes kept, Python names accepted, RFC 3339 date-times in UTC with ``Z``).
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict

import tmf_models._generated
from tmf_models import common, tmf621, tmf622, tmf676, tmf678
from tmf_models.common import TMFModel

FIXTURES = Path(__file__).resolve().parents[1] / "libs" / "tmf_models" / "tests" / "fixtures"
GENERATED = Path(tmf_models._generated.__file__).parent
TARGET = 20_000


def plain_pydantic_tmf622() -> types.ModuleType:
    """The generated TMF622 classes again, on a bare ``BaseModel`` with pydantic's defaults.

    The generated sources are executed a second time with ``tmf_models._base`` and
    ``tmf_models._generated.common`` standing for a base with no wire rules, so the shapes
    (fields, aliases, strict types, nesting) are exactly those of ``tmf622``.
    """

    class PlainModel(BaseModel):
        model_config = ConfigDict(protected_namespaces=())

    base = types.ModuleType("plain_base")
    base.TMFModel = PlainModel  # type: ignore[attr-defined]
    base.AwareDatetime = AwareDatetime  # type: ignore[attr-defined]
    modules: dict[str, types.ModuleType] = {}
    saved = {name: sys.modules.get(name) for name in ("tmf_models._base", "tmf_models._generated.common")}
    sys.modules["tmf_models._base"] = base
    try:
        for name in ("common", "tmf622"):
            module = types.ModuleType(f"plain_{name}")
            sys.modules[module.__name__] = module
            exec(
                compile((GENERATED / f"{name}.py").read_text(encoding="utf-8"), module.__name__, "exec"),
                module.__dict__,
            )
            modules[name] = module
            if name == "common":
                sys.modules["tmf_models._generated.common"] = module
    finally:
        for name, previous in saved.items():
            if previous is not None:
                sys.modules[name] = previous
    return modules["tmf622"]


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

    # Baselines on the target payload (see the module docstring).
    data, raw = load("product_order_broadband.json")
    plain = plain_pydantic_tmf622().ProductOrder
    plain_dump = plain.__pydantic_serializer__.to_json
    # The same document but for what the wire rules add: the place's extension attributes (extra
    # "ignore") are dropped, and pydantic prints six fraction digits.
    plain_out = json.loads(plain_dump(plain.model_validate_json(raw), by_alias=True, exclude_unset=True))
    assert set(plain_out) == set(data), sorted(set(plain_out) ^ set(data))
    assert plain_out["expectedCompletionDate"] == "2026-11-30T12:30:00.250000Z"
    assert plain_out["productOrderItem"][0]["product"]["place"][0] == {
        "role": "installationAddress",
        "id": "GA-9921",
        "@type": "GeographicAddress",
        "@referredType": "GeographicAddress",
    }
    rows.append(
        (
            "baseline: plain pydantic, same shapes  json",
            lambda: plain_dump(plain.model_validate_json(raw), by_alias=True, exclude_unset=True),
        )
    )
    rows.append(
        ("baseline: json.loads + json.dumps, no validation", lambda: json.dumps(json.loads(raw)).encode())
    )
    rows.append(("baseline: orjson loads + dumps, no validation", lambda: orjson.dumps(orjson.loads(raw))))
    return rows


def alternate(
    fns: list[Callable[[], object]], repeats: int, seconds: float
) -> tuple[list[tuple[float, float]], list[float]]:
    """Timed repeats of each function in turn, so that all see the same machine: (median, best)
    calls per second of each, and the per-repeat ratios of the first to the second."""
    batches = []
    for fn in fns:
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < 0.2:  # warm-up, and a first estimate of the speed
            fn()
            calls += 1
        batches.append(max(1, int(calls / (time.perf_counter() - start) * seconds)))
    rates: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, batch, out in zip(fns, batches, rates, strict=True):
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            out.append(batch / (time.perf_counter() - start))
    ratios = [a / b for a, b in zip(rates[0], rates[1], strict=True)]
    return [(statistics.median(r), max(r)) for r in rates], ratios


def count_instructions(label: str, trips: int) -> int | None:
    """Instructions per round trip of the row ``label``, counted by callgrind: the same on every run
    of the same build and inputs, whatever else the machine is doing. ``None`` without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None

    def run(n: int) -> int:
        out = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
             "--trips", label, str(n)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return int(re.findall(r"Collected : (\d+)", out.stderr)[-1])

    # Start-up, imports and set-up are the same in both runs; the difference is the round trips.
    return (run(trips) - run(0)) // trips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed repeat")
    parser.add_argument("--no-instructions", action="store_true", help="skip the callgrind counts")
    parser.add_argument("--trips", nargs=2, metavar=("LABEL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    rows = cases()
    if args.trips:  # a child run under callgrind: N round trips of one row, nothing printed
        fn = dict(rows)[args.trips[0]]
        for _ in range(int(args.trips[1])):
            fn()
        return 0
    target_label, target_fn = rows[0]
    plain_label, plain_fn = next(row for row in rows if row[0].startswith("baseline: plain pydantic"))
    gc.collect()
    gc.freeze()
    (target, plain), ratios = alternate([target_fn, plain_fn], args.repeats, args.seconds)
    results = [(target_label, *target), (plain_label, *plain)]
    results += [
        (label, *measure(fn, args.repeats, args.seconds))
        for label, fn in rows
        if label not in (target_label, plain_label)
    ]
    gc.unfreeze()
    results.append(("ProductOrder broadband  json, gc on", *measure(target_fn, args.repeats, args.seconds)))

    width = max(len(r[0]) for r in results)
    print(f"round trips/s: validate + dump, median of {args.repeats} repeats (best in brackets), one core")
    print(f"{'payload  path':<{width}}  {'median':>9}  {'best':>9}  {'us/trip':>8}")
    for label, median, best in results:
        print(f"{label:<{width}}  {median:>9,.0f}  {best:>9,.0f}  {1e6 / median:>8.1f}")
    verdict = "meets" if target[0] >= TARGET else "is below"
    print(f"\nProductOrder broadband, JSON path: {target[0]:,.0f}/s {verdict} the {TARGET:,}/s target.")
    print(
        f"Plain pydantic on the same shapes, timed alternately with it: {plain[0]:,.0f}/s; the models run at "
        f"{statistics.median(ratios):.0%} of it (repeats: {', '.join(f'{r:.0%}' for r in ratios)})."
    )
    if not args.no_instructions:
        ours, bare = count_instructions(target_label, 400), count_instructions(plain_label, 400)
        if ours is None or bare is None:
            print("No valgrind: instruction counts skipped.")
        else:
            print(
                f"Instructions per round trip (callgrind, 400 trips): models {ours:,}, plain pydantic {bare:,} "
                f"({ours / bare:.2f}x). {TARGET:,}/s would take {ours * TARGET / 1e9:.1f} G instructions/s of one "
                f"core with the models, {bare * TARGET / 1e9:.1f} G with plain pydantic; this core ran "
                f"{ours * target[0] / 1e9:.1f} G/s on the models here."
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
