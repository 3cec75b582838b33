"""Two runs side by side (before and after a change), from the files ``--json`` wrote.

    .venv/bin/python bench/bench_models.py --json before-models.json      # on the old revision
    .venv/bin/python bench/bench_ordering.py --json before-ordering.json
    ... the same on the new revision, then:
    .venv/bin/python bench/compare_runs.py before-ordering.json after-ordering.json \\
        --models before-models.json after-models.json

Prints Markdown tables: the targets (ratio and verdict of each run), then the figures behind them
(medians of the rounds). Ratios compare within a run; absolute figures compare across runs only as
far as the machine stayed the same, which on a shared machine it does not.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import orjson


def load(path: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(Path(path).read_bytes())
    return data


def verdict(t: dict[str, Any]) -> str:
    ok = t["ratio"] >= t["limit"] if t["at_least"] else t["ratio"] <= t["limit"]
    return "PASS" if ok else "MISS"


def med(rounds: list[dict[str, float]], what: str) -> float:
    return statistics.median(r[what] for r in rounds)


def targets(runs: list[dict[str, Any]], names: list[str]) -> list[str]:
    lines = [
        f"| target | limit | {' | '.join(names)} |",
        "|---|---:|" + "---|" * len(runs),
    ]
    for i, t in enumerate(runs[0]["targets"]):
        sign = ">=" if t["at_least"] else "<="
        cells = []
        for run in runs:
            u = run["targets"][i]
            rounds = ", ".join(f"{r:.2f}" for r in u["rounds"])
            cells.append(f"**{u['ratio']:.2f}x {verdict(u)}** ({rounds})")
        lines.append(f"| {t['name']} | {sign} {t['limit']:.2f}x | {' | '.join(cells)} |")
    return lines


def figures(runs: list[dict[str, Any]], names: list[str]) -> list[str]:
    lines = [
        f"| median of the rounds | {' | '.join(names)} |",
        "|---|" + "---:|" * len(runs),
    ]

    def row(label: str, get: Any) -> None:
        cells = []
        for run in runs:
            try:
                cells.append(get(run))
            except (KeyError, IndexError, ValueError):
                cells.append("")
        lines.append(f"| {label} | {' | '.join(cells)} |")

    post = runs[0]["post"]
    conc = f"{runs[0].get('args', {}).get('concurrency', 32)} clients"
    for app in ("floor", "service"):
        row(f"POST {app}, {conc}: req/s", lambda r, a=app: f"{med(r['post'][a], 'rps'):.0f}")
        row(f"POST {app}: p99 (ms)", lambda r, a=app: f"{med(r['post'][a], 'p99') * 1e3:.1f}")
        row(f"POST {app}: app CPU / req (ms)", lambda r, a=app: f"{med(r['post'][a], 'app_cpu') * 1e3:.2f}")
        row(
            f"POST {app}: PostgreSQL CPU / req (ms)",
            lambda r, a=app: f"{med(r['post'][a], 'db_cpu') * 1e3:.2f}",
        )
    for app in ("floor c=1", "service c=1"):
        if app in post:
            row(f"POST {app}: p50 / p99 (ms)", lambda r, a=app: (
                f"{med(r['post'][a], 'p50') * 1e3:.1f} / {med(r['post'][a], 'p99') * 1e3:.1f}"
            ))  # fmt: skip
    for name in runs[0]["get"]:
        for level in runs[0]["get"][name]:
            label = f"{level} clients" if level.isdigit() else f"open loop {level}"
            row(f"GET {name} orders, {label}: req/s / p99 (ms)", lambda r, n=name, lv=level: (
                f"{med(r['get'][n][lv], 'rps'):.0f} / {med(r['get'][n][lv], 'p99') * 1e3:.1f}"
            ))  # fmt: skip
    row("GET app CPU / lookup at the biggest table, 8 clients (ms)", lambda r: (
        f"{med(r['get'][max((k for k in r['get'] if k.isdigit()), key=int)]['8'], 'app_cpu') * 1e3:.2f}"
    ))  # fmt: skip
    row("machine", lambda r: f"{r['facts']['cpus']} x {r['facts']['cpu']}")
    row("revision", lambda r: r["facts"]["revision"])
    row("run took (min)", lambda r: f"{r['elapsed_s'] / 60:.0f}")
    return lines


def models(runs: list[dict[str, Any]], names: list[str]) -> list[str]:
    lines = [
        f"| model round trip, broadband ProductOrder | {' | '.join(names)} |",
        "|---|" + "---|" * len(runs),
    ]
    cells = []
    for run in runs:
        t = run["target"]
        ok = "PASS" if t["ratio"] >= 0.6 else "MISS"
        cells.append(f"**{t['ratio']:.2f}x {ok}** ({', '.join(f'{r:.2f}' for r in t['rounds'])})")
    lines.append(f"| models / `json.loads` + `json.dumps` (>= 0.60x) | {' | '.join(cells)} |")
    for label in (
        "ProductOrder broadband (target)  json",
        "baseline: json.loads + json.dumps, no validation",
    ):
        lines.append(
            f"| {label}: round trips/s | "
            + " | ".join(
                f"{next(r['median'] for r in run['rows'] if r['label'] == label):,.0f}" for run in runs
            )
            + " |"
        )
    lines.append(
        "| instructions per round trip: models / plain pydantic / stdlib json | "
        + " | ".join(
            " / ".join(f"{c:,}" for c in run["instructions"]) if run.get("instructions") else ""
            for run in runs
        )
        + " |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ordering", nargs="+", help="bench_ordering.py --json files, oldest first")
    parser.add_argument("--models", nargs="*", default=[], help="bench_models.py --json files, same order")
    parser.add_argument("--names", nargs="*", help="column names (default: the revisions)")
    args = parser.parse_args()
    runs = [load(p) for p in args.ordering]
    names = args.names or [r["facts"]["revision"] for r in runs]
    print("\n".join(targets(runs, names)))
    print()
    print("\n".join(figures(runs, names)))
    if args.models:
        print()
        print("\n".join(models([load(p) for p in args.models], names)))


if __name__ == "__main__":
    main()
