"""Static checks of docker-compose.yml and the Helm chart (no Docker engine or cluster here).

Both must agree with the suite manifest (suite.toml), which is what `make run` and the e2e
tests use, so a port or an environment variable cannot drift between the three.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchboard_dev.manifest import REPO_ROOT, SERVICES, ServiceSpec

COMPOSE = REPO_ROOT / "docker-compose.yml"
CHART = REPO_ROOT / "deploy" / "helm" / "switchboard"
TEMPLATES = sorted((CHART / "templates").glob("*.yaml")) + sorted((CHART / "templates").glob("*.tpl"))
LONG_RUNNING_INFRA = {"postgres", "kafka"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return load_yaml(CHART / "values.yaml")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...] form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def host_ports(service: dict[str, Any]) -> dict[int, int]:
    """Host port -> container port from the short "8622:8622" syntax."""
    ports = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        ports[int(host.rsplit(":", 1)[-1])] = int(container.split("/")[0])
    return ports


# --------------------------------------------------------------------------- docker-compose


class TestCompose:
    def test_every_service_has_image_or_build(self, compose: dict[str, Any]) -> None:
        for name, service in compose["services"].items():
            assert "image" in service or "build" in service, name

    def test_builds_point_at_existing_dockerfiles(self, compose: dict[str, Any]) -> None:
        for name, service in compose["services"].items():
            build = service.get("build")
            if build is None:
                continue
            context = REPO_ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / (
                build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            )
            assert dockerfile.is_file(), f"{name}: {dockerfile}"

    def test_depends_on_names_existing_services(self, compose: dict[str, Any]) -> None:
        names = set(compose["services"])
        for name, service in compose["services"].items():
            depends = service.get("depends_on") or {}
            for dependency in depends if isinstance(depends, list) else depends.keys():
                assert dependency in names, f"{name} depends on unknown {dependency}"

    def test_long_running_services_have_healthchecks(self, compose: dict[str, Any]) -> None:
        for name, service in compose["services"].items():
            one_shot = service.get("restart") == "no" or name.endswith("-migrate")
            if not one_shot:
                assert "healthcheck" in service, name
                assert service["healthcheck"].get("test"), name

    def test_infrastructure_images(self, compose: dict[str, Any]) -> None:
        assert compose["services"]["postgres"]["image"].startswith("postgres:15")
        kafka = compose["services"]["kafka"]
        assert kafka["image"].split(":")[0] in {"apache/kafka", "bitnami/kafka"}
        roles = env_of(kafka).get("KAFKA_PROCESS_ROLES") or env_of(kafka).get("KAFKA_CFG_PROCESS_ROLES")
        assert roles is not None
        assert "controller" in roles  # KRaft, no ZooKeeper

    @pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
    def test_service_matches_manifest(self, compose: dict[str, Any], spec: ServiceSpec) -> None:
        service = compose["services"].get(spec.name)
        assert service is not None, f"{spec.name} missing from docker-compose.yml"
        env = env_of(service)
        p = spec.env_prefix

        assert host_ports(service).get(spec.port) == spec.port
        assert env[f"{p}DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env[f"{p}DATABASE_URL"].rsplit("/", 1)[-1] == spec.database
        assert env[f"{p}KAFKA_BOOTSTRAP_SERVERS"].split(":")[0] in compose["services"]
        # Real Kafka implements InitProducerId: keep idempotent producers on.
        assert env[f"{p}KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        assert env[f"{p}PUBLIC_BASE_URL"] == f"http://localhost:{spec.port}"
        assert f":{spec.port}/health/ready" in " ".join(service["healthcheck"]["test"])
        build = service["build"]
        assert build["args"]["SERVICE"] == spec.name
        assert str(build["args"]["PORT"]) == str(spec.port)
        # The Dockerfile copies services/${SERVICE} and runs ${SERVICE}.app:create_app.
        assert spec.package == spec.name
        assert spec.app == f"{spec.package}.app:create_app"

    @pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
    def test_migrations_run_before_the_service(self, compose: dict[str, Any], spec: ServiceSpec) -> None:
        migrate = compose["services"][f"{spec.name}-migrate"]
        assert migrate["command"] == ["alembic", "-c", spec.alembic_ini, "upgrade", "head"]
        assert (REPO_ROOT / spec.alembic_ini).is_file()
        assert (
            env_of(migrate)[f"{spec.env_prefix}DATABASE_URL"]
            == env_of(compose["services"][spec.name])[f"{spec.env_prefix}DATABASE_URL"]
        )
        depends = compose["services"][spec.name]["depends_on"]
        assert depends[f"{spec.name}-migrate"]["condition"] == "service_completed_successfully"

    def test_database_server_is_the_one_in_the_urls(self, compose: dict[str, Any]) -> None:
        postgres = env_of(compose["services"]["postgres"])
        for spec in SERVICES:
            url = env_of(compose["services"][spec.name])[f"{spec.env_prefix}DATABASE_URL"]
            assert f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/" in url


# --------------------------------------------------------------------------- Helm chart

ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
SVC_REF = re.compile(r"(?:\$svc|\.svc)\.([A-Za-z_][A-Za-z0-9_]*)")
OPENERS = {"if", "range", "with", "define", "block"}


def actions(text: str) -> list[str]:
    return [m.group(1).strip() for m in ACTION.finditer(text)]


def lookup(tree: Any, path: list[str]) -> bool:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def skeleton(text: str) -> str:
    """The template with actions blanked: control-only lines dropped, inline ones replaced by ``x``."""
    lines = []
    for line in text.splitlines():
        if ACTION.sub("", line).strip() == "":
            continue
        lines.append(ACTION.sub("x", line))
    return "\n".join(lines)


class TestChart:
    def test_chart_yaml(self) -> None:
        chart = load_yaml(CHART / "Chart.yaml")
        for key in ("apiVersion", "name", "version", "appVersion", "description", "type"):
            assert chart.get(key), key
        assert chart["apiVersion"] == "v2"
        assert chart["name"] == CHART.name
        assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", str(chart["version"]))

    def test_values_yaml_parses(self, values: dict[str, Any]) -> None:
        assert isinstance(values, dict)
        assert values["kafka"]["enableIdempotence"] is True
        assert values["probes"]["liveness"]["path"] == "/health/live"
        assert values["probes"]["readiness"]["path"] == "/health/ready"

    @pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
    def test_template_delimiters_and_blocks_balance(self, path: Path) -> None:
        text = path.read_text()
        assert text.count("{{") == text.count("}}"), "unbalanced {{ }}"
        stack: list[str] = []
        for action in actions(text):
            if action.startswith("/*"):
                assert action.endswith("*/"), action
                continue
            word = action.split()[0] if action.split() else ""
            if word in OPENERS:
                stack.append(word)
            elif word == "else":
                assert stack and stack[-1] in {"if", "with", "range"}, f"stray else in {path.name}"
            elif word == "end":
                assert stack, f"stray end in {path.name}"
                stack.pop()
        assert stack == [], f"unclosed {stack} in {path.name}"

    @pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
    def test_values_references_exist(self, path: Path, values: dict[str, Any]) -> None:
        text = path.read_text()
        for match in VALUES_REF.finditer(text):
            ref = match.group(1).lstrip(".").split(".")
            assert lookup(values, ref), f"{path.name}: .Values.{'.'.join(ref)} is not in values.yaml"
        # Fields read from each entry of .Values.services ($svc in a range, .svc in helpers).
        for field in set(SVC_REF.findall(text)):
            for name, svc in values["services"].items():
                assert field in svc, f"{path.name}: services.{name}.{field} is not in values.yaml"

    def test_includes_are_defined(self) -> None:
        defined = set()
        used = set()
        for path in TEMPLATES:
            for action in actions(path.read_text()):
                if m := re.match(r'define\s+"([^"]+)"', action):
                    defined.add(m.group(1))
                used.update(re.findall(r'include\s+"([^"]+)"', action))
        assert used <= defined, used - defined

    @pytest.mark.parametrize("path", [p for p in TEMPLATES if p.suffix == ".yaml"], ids=lambda p: p.name)
    def test_templates_render_to_kubernetes_objects(self, path: Path) -> None:
        documents = [d for d in yaml.safe_load_all(skeleton(path.read_text())) if d]
        assert documents, path.name
        for document in documents:
            assert {"apiVersion", "kind", "metadata"} <= document.keys(), path.name
            assert document["metadata"].get("name"), path.name

    def test_workloads_expected(self) -> None:
        kinds = {}
        for path in TEMPLATES:
            if path.suffix == ".yaml":
                for document in yaml.safe_load_all(skeleton(path.read_text())):
                    if document:
                        kinds[document["kind"]] = path.name
        assert {"Deployment", "Service", "Job", "ConfigMap", "Secret"} <= kinds.keys()

    def test_deployment_probes_and_env(self) -> None:
        deployment = yaml.safe_load(skeleton((CHART / "templates" / "deployment.yaml").read_text()))
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["port"] == "http"
        assert container["readinessProbe"]["httpGet"]["port"] == "http"
        text = (CHART / "templates" / "deployment.yaml").read_text()
        assert ".Values.probes.liveness.path" in text
        assert ".Values.probes.readiness.path" in text
        assert {"configMapRef", "secretRef"} <= {next(iter(e)) for e in container["envFrom"]}

    def test_environment_names_follow_the_service_prefix(self) -> None:
        texts = {p.name: p.read_text() for p in TEMPLATES}
        for var in ("DATABASE_URL",):
            assert f"{{{{ $svc.envPrefix }}}}{var}" in texts["secret.yaml"]
        for var in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_ENABLE_IDEMPOTENCE", "PUBLIC_BASE_URL"):
            assert f"{{{{ $svc.envPrefix }}}}{var}" in texts["configmap.yaml"]

    @pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
    def test_values_match_manifest(self, values: dict[str, Any], spec: ServiceSpec) -> None:
        svc = values["services"].get(spec.name)
        assert svc is not None, f"{spec.name} missing from values.yaml"
        assert svc["port"] == spec.port
        assert svc["envPrefix"] == spec.env_prefix
        assert svc["database"] == spec.database
        assert svc["app"] == spec.app
        assert svc["alembicIni"] == spec.alembic_ini
        assert svc["publicBaseUrl"] == f"http://localhost:{spec.port}"

    def test_no_unknown_services_in_values(self, values: dict[str, Any]) -> None:
        assert set(values["services"]) <= {s.name for s in SERVICES}


def helm_binary() -> str:
    """The venv's helm (``make test`` installs it: deploy/helm/install_helm.py), else one on PATH.

    Without either the Helm tests skip, unless ``REQUIRE_HELM=1`` (``.ci/run``) makes that a failure.
    """
    found = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    if found is None:
        if os.environ.get("REQUIRE_HELM") == "1":
            pytest.fail(
                "REQUIRE_HELM=1 but no helm binary: run `make install` or deploy/helm/install_helm.py"
            )
        pytest.skip("helm binary not installed (deploy/helm/install_helm.py installs it)")
    return found


class TestHelmBinary:
    def test_lint(self) -> None:
        result = subprocess.run(
            [helm_binary(), "lint", "--strict", str(CHART)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_template(self) -> None:
        result = subprocess.run([helm_binary(), "template", "sb", str(CHART)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        kinds = {d["kind"] for d in docs}
        assert {"Deployment", "Service", "Job", "ConfigMap", "Secret"} <= kinds
        by_component = {
            (d["kind"], d["metadata"]["labels"].get("app.kubernetes.io/component")): d for d in docs
        }
        for spec in SERVICES:
            deployment = by_component[("Deployment", spec.name)]
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            assert [p["containerPort"] for p in container["ports"]] == [spec.port]
            assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
            service = by_component[("Service", spec.name)]
            assert [p["port"] for p in service["spec"]["ports"]] == [spec.port]
            job = by_component[("Job", f"{spec.name}-migrate")]
            assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"


def test_the_image_the_chart_and_make_run_use_the_same_server() -> None:
    """uvloop and httptools (uvicorn[standard]) wherever a service runs, so make run measures what
    production serves."""
    from switchboard_dev.launcher import SERVER_OPTIONS

    assert SERVER_OPTIONS == ("--loop", "uvloop", "--http", "httptools")
    options = " ".join(SERVER_OPTIONS)
    dockerfile = (REPO_ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    assert options in dockerfile
    chart = (REPO_ROOT / "deploy" / "helm" / "switchboard" / "templates" / "deployment.yaml").read_text()
    assert '"--loop", "uvloop", "--http", "httptools"' in chart
    import httptools
    import uvloop

    assert uvloop and httptools  # installed with the kit (uvicorn[standard])
