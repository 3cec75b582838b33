"""Scratch folders for test runs that start real servers (PostgreSQL data, service logs).

Each run of the e2e and fault tests used to leave about 50 MB in ``/tmp``. :func:`scratch_dir`
removes its folder when the block ends. When the block fails, the ``logs`` folder under it (the
services' logs, which the launcher writes there) is kept for the post-mortem and its path is
printed (pytest shows it with the failure); everything else, the database files above all, goes.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

KEPT_ON_FAILURE = "logs"


@contextlib.contextmanager
def scratch_dir(prefix: str, *, keep_on_failure: str | None = KEPT_ON_FAILURE) -> Iterator[Path]:
    """A new folder under the system temp dir named ``prefix…``, removed when the block ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    except BaseException:
        kept = path / keep_on_failure if keep_on_failure else None
        if kept is not None and kept.is_dir() and any(kept.iterdir()):
            for child in path.iterdir():
                if child != kept:
                    _remove(child)
            print(f"{prefix}: the failed run's logs are kept in {kept}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)
        raise
    else:
        shutil.rmtree(path, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
