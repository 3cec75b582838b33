"""The test runs' scratch folders leave nothing behind (issue #8: 50 MB in /tmp per ``make test``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.scratch import scratch_dir

PREFIX = "switchboard-scratch-test-"


def fill(path: Path, *, logs: bool) -> None:
    (path / "pgdata").mkdir()
    (path / "pgdata" / "base").write_bytes(b"x" * 1000)
    if logs:
        (path / "logs").mkdir()
        (path / "logs" / "ordering.log").write_text("boom\n")


def fail_inside(seen: list[Path], *, logs: bool) -> None:
    with scratch_dir(PREFIX) as path:
        seen.append(path)
        fill(path, logs=logs)
        raise AssertionError("the test failed")


def test_the_folder_is_removed_when_the_block_ends() -> None:
    with scratch_dir(PREFIX) as path:
        fill(path, logs=True)
        assert path.is_dir()
    assert not path.exists()


def test_a_failed_block_keeps_only_the_logs(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[Path] = []
    with pytest.raises(AssertionError):
        fail_inside(seen, logs=True)
    path = seen[0]
    try:
        assert sorted(p.name for p in path.iterdir()) == ["logs"]
        assert (path / "logs" / "ordering.log").read_text() == "boom\n"
        assert str(path / "logs") in capsys.readouterr().err
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_failed_block_without_logs_leaves_nothing() -> None:
    seen: list[Path] = []
    with pytest.raises(AssertionError):
        fail_inside(seen, logs=False)
    assert not seen[0].exists()
