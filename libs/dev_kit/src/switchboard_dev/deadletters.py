"""The dead letters of a ``make run`` service (switchboard_kit.deadletters, with its database and broker found).

    python -m switchboard_dev.deadletters list                 # ordering's; --service NAME for another
    python -m switchboard_dev.deadletters replay 3 4           # or: replay --all [--consumer GROUP]

The service's database is ``<PREFIX>DATABASE_URL`` (e.g. ``ORDERING_DATABASE_URL``), else its database
on the server of ``DATABASE_URL``, else the one of a running ``make run`` (``.data/postgres``). The
broker is ``KAFKA_BOOTSTRAP_SERVERS``, else ``make run``'s (``localhost:$SWITCHBOARD_KAFKA_PORT``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from urllib.parse import quote

from switchboard_kit import deadletters

from .infra import database_url
from .launcher import DEFAULT_KAFKA_PORT, _data_dir, service_spec


def _make_run_server() -> str | None:
    """The URL of the embedded PostgreSQL of a running ``make run``, from its ``postmaster.pid``
    (whose fifth line is the socket directory)."""
    pid_file = _data_dir() / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    if len(lines) < 5 or not lines[4].strip():
        return None
    return f"postgresql+asyncpg://postgres@/postgres?host={quote(lines[4].strip(), safe='')}"


def resolve_database_url(service: str) -> str:
    spec = service_spec(service)
    if url := os.environ.get(f"{spec.env_prefix}DATABASE_URL"):
        return url
    server = os.environ.get("DATABASE_URL") or _make_run_server()
    if server is None:
        raise SystemExit(
            f"no database for {service}: set {spec.env_prefix}DATABASE_URL or DATABASE_URL, or start `make run`"
        )
    return database_url(server, spec.database)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    service = "ordering"
    if "--service" in args:
        at = args.index("--service")
        service = args[at + 1]
        del args[at : at + 2]
    if "--database-url" not in args:
        args = ["--database-url", resolve_database_url(service), *args]
    if "replay" in args and "--bootstrap" not in args:
        port = os.environ.get("SWITCHBOARD_KAFKA_PORT", DEFAULT_KAFKA_PORT)
        args += ["--bootstrap", os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or f"localhost:{port}"]
    return deadletters.main(args, prog="python -m switchboard_dev.deadletters")


if __name__ == "__main__":
    sys.exit(main())
