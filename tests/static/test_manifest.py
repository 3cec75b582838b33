"""The suite manifest (suite.toml) agrees with the services it lists and with the README.

The deploy files are checked against it in test_deploy.py; here, the services themselves:
each one serves its API under the manifest's base path and publishes the manifest's topics.
"""

from __future__ import annotations

import importlib
import re

import pytest

from switchboard_dev.manifest import REPO_ROOT, SERVICES, ServiceSpec, import_target
from tmf_models import events as tmf_events

KIT_PATHS = re.compile(r"/health/(live|ready)")  # what create_service_app adds to every service


def test_the_manifest_lists_services() -> None:
    assert SERVICES
    assert len({s.name for s in SERVICES}) == len(SERVICES)
    assert len({s.port for s in SERVICES}) == len(SERVICES), "two services on one port"
    assert len({s.env_prefix for s in SERVICES}) == len(SERVICES)
    assert len({s.database for s in SERVICES}) == len(SERVICES)


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
class TestService:
    def test_package_layout(self, spec: ServiceSpec) -> None:
        assert (REPO_ROOT / "services" / spec.name / "pyproject.toml").is_file()
        assert (REPO_ROOT / "services" / spec.name / "src" / spec.package / "__init__.py").is_file()
        assert spec.app.startswith(f"{spec.package}.")
        assert spec.events.startswith(f"{spec.package}.")
        assert spec.seed is None or spec.seed.startswith(f"{spec.package}.")
        assert (REPO_ROOT / spec.alembic_ini).is_file()
        assert spec.env_prefix == f"{spec.name.upper()}_"

    def test_the_app_serves_its_api_under_the_base_path(self, spec: ServiceSpec) -> None:
        assert re.fullmatch(r"(/[A-Za-z0-9_.-]+)+", spec.base_path), spec.base_path
        paths = list(import_target(spec.app)().openapi()["paths"])
        outside = [p for p in paths if not p.startswith(spec.base_path + "/") and not KIT_PATHS.fullmatch(p)]
        assert outside == [], f"{spec.name} serves these outside {spec.base_path}"
        assert any(p.startswith(spec.base_path + "/") for p in paths)
        if spec.resource is not None:
            assert f"{spec.base_path}/{spec.resource}" in paths

    def test_topics_are_the_ones_the_service_publishes(self, spec: ServiceSpec) -> None:
        assert spec.topics, f"{spec.name} lists no topic"
        published = getattr(importlib.import_module(spec.events), "TOPICS", None)
        if published is not None:
            assert sorted(published) == sorted(spec.topics)
        schemas = {**tmf_events.event_json_schemas(), **spec.event_schemas()}
        for topic in spec.topics:
            event_types = spec.event_types(topic)
            assert event_types, topic
            assert set(event_types) <= schemas.keys(), topic

    def test_seed_hook_is_a_coroutine_function(self, spec: ServiceSpec) -> None:
        import inspect

        if spec.seed is not None:
            assert inspect.iscoroutinefunction(import_target(spec.seed))

    def test_readme_table_row(self, spec: ServiceSpec) -> None:
        readme = (REPO_ROOT / "README.md").read_text()
        row = re.compile(rf"^\|\s*`{spec.name}`\s*\|\s*{spec.port}\s*\|\s*{re.escape(spec.api)}\s*\|", re.M)
        assert row.search(readme), f"README's service table has no row for {spec.name} as in suite.toml"
