"""openapi/ and contracts/ are exported from the code; an unreviewed difference fails CI."""

from __future__ import annotations

import pytest

from switchboard_kit import export


@pytest.mark.parametrize(
    ("path", "text"), sorted(export.all_documents().items()), ids=lambda v: getattr(v, "name", "")
)
def test_committed_file_matches_export(path, text):
    assert path.exists(), f"{path} is missing: run `make openapi`"
    assert path.read_text() == text, f"{path} is out of date: run `make openapi` and review the diff"
