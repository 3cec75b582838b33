"""openapi/ and contracts/ are exported from the code; an unreviewed difference fails CI."""

from __future__ import annotations

import pytest

from switchboard_dev import export


@pytest.mark.parametrize(
    ("path", "text"), sorted(export.all_documents().items()), ids=lambda v: getattr(v, "name", "")
)
def test_committed_file_matches_export(path, text):
    assert path.exists(), f"{path} is missing: run `make openapi`"
    assert path.read_text() == text, f"{path} is out of date: run `make openapi` and review the diff"


@pytest.mark.parametrize("path", sorted(export.openapi_documents()), ids=lambda p: p.name)
def test_every_schema_reference_resolves(path):
    """Code generators and contract tools stop at a $ref to a component that is not there."""
    import json
    import re

    document = json.loads(export.openapi_documents()[path])
    referenced = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    missing = referenced - set(document.get("components", {}).get("schemas", {}))
    assert not missing, f"{path.name}: $ref to missing components {sorted(missing)}"
