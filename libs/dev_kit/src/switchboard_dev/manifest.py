"""The suite manifest, ``suite.toml`` at the repository root: the services that make up the suite.

The launcher, the OpenAPI/AsyncAPI export and the static tests of the deploy files read the
services from here, so a port or a base path is written once. The file documents its keys;
:func:`load` rejects a missing or unknown key, so a typo fails loudly instead of silently
falling back to a default.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "REPO_ROOT", "SERVICES", "ManifestError", "ServiceSpec", "import_target", "load"]

MANIFEST_NAME = "suite.toml"


class ManifestError(ValueError):
    """``suite.toml`` is missing, malformed, or names an unknown service."""


def import_target(target: str) -> Any:
    """``"module:attribute"`` -> the attribute."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the suite, as the dev tooling and the deploy files' tests see it."""

    name: str
    package: str  # its importable package
    port: int
    base_path: str  # where its TMF API is mounted
    api: str  # what it implements, for the README and the banner
    env_prefix: str  # "ORDERING_": the service's pydantic-settings prefix
    database: str  # its own database on the shared server
    app: str  # uvicorn factory, "module:callable"
    alembic_ini: str  # relative to the repository root
    events: str  # module holding the event type lists named in ``topics``
    topics: Mapping[str, tuple[str, ...]] = field(compare=False)  # topic -> event type list names
    resource: str | None = None  # main collection, shown in the banner
    seed: str | None = None  # "module:async def seed(base_url: str, headers: dict[str, str]) -> None"

    def event_types(self, topic: str) -> list[str]:
        """The event types published on ``topic`` (imports the service's events module)."""
        module = importlib.import_module(self.events)
        return [t for attr in self.topics[topic] for t in getattr(module, attr)]

    def event_schemas(self) -> dict[str, dict[str, Any]]:
        """JSON Schemas of the events the TMF models lack (a service's own extension events): the
        ``EXTENSION_EVENT_TYPES`` (name -> pydantic model) of its events module, if it has one."""
        module = importlib.import_module(self.events)
        extension = getattr(module, "EXTENSION_EVENT_TYPES", {})
        return {name: model.model_json_schema(by_alias=True) for name, model in sorted(extension.items())}


_OPTIONAL = {"resource", "seed"}
_REQUIRED = {f.name for f in fields(ServiceSpec)} - _OPTIONAL - {"name"}  # the name is the table's


def _spec(name: str, table: Any, where: Path) -> ServiceSpec:
    if not isinstance(table, dict):
        raise ManifestError(f"{where}: [services.{name}] must be a table")
    unknown = sorted(set(table) - _REQUIRED - _OPTIONAL)
    missing = sorted(_REQUIRED - set(table))
    if unknown or missing:
        problems = [f"unknown key(s) {unknown}" if unknown else "", f"missing {missing}" if missing else ""]
        raise ManifestError(f"{where}: [services.{name}]: {'; '.join(p for p in problems if p)}")
    for key, value in table.items():
        wanted, noun = (int, "an integer") if key == "port" else (str, "a string")
        if key != "topics" and type(value) is not wanted:
            raise ManifestError(f"{where}: services.{name}.{key} must be {noun}")
    topics = table["topics"]
    if not isinstance(topics, dict) or not all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in topics.values()
    ):
        raise ManifestError(f"{where}: [services.{name}.topics] maps each topic to a list of names")
    return ServiceSpec(name=name, **{**table, "topics": {t: tuple(a) for t, a in topics.items()}})


def load(path: Path) -> list[ServiceSpec]:
    """The services of the manifest at ``path``, in file order."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"no suite manifest at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - {"services"})
    if unknown:
        raise ManifestError(f"{path}: unknown top-level key(s) {unknown}")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ManifestError(f"{path}: no [services.<name>] table")
    return [_spec(name, table, path) for name, table in services.items()]


def _find_repo_root() -> Path:
    # The editable install runs from the checkout; otherwise look up from the working directory.
    for start in (Path(__file__).resolve().parent, Path.cwd()):
        for parent in (start, *start.parents):
            if (parent / MANIFEST_NAME).is_file():
                return parent
    return Path.cwd()


REPO_ROOT = _find_repo_root()
MANIFEST = REPO_ROOT / MANIFEST_NAME
SERVICES: list[ServiceSpec] = load(MANIFEST)
