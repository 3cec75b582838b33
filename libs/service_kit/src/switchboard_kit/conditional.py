"""ETags and conditional requests: ``If-Match`` guards writes (412), ``If-None-Match`` saves reads (304)."""

from __future__ import annotations

from .errors import PreconditionFailed


def etag(version: int) -> str:
    return f'W/"{version}"'


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",")]


def _names_version(tags: list[str], version: int) -> bool:
    # Weak comparison (RFC 9110 8.8.3.2): W/"3" and "3" name the same version.
    current = {etag(version), f'"{version}"'}
    return "*" in tags or any(t in current for t in tags)


def check_if_match(header: str | None, version: int) -> None:
    """412 when an ``If-Match`` header is given and names none of the current version's tags."""
    if header is None:
        return
    if not _names_version(_tags(header), version):
        raise PreconditionFailed(
            "Precondition failed",
            f"If-Match {header} does not match the current ETag {etag(version)}",
            headers={"ETag": etag(version)},
        )


def not_modified(header: str | None, version: int) -> bool:
    """Whether an ``If-None-Match`` header names the current version (the answer is then 304)."""
    return header is not None and _names_version(_tags(header), version)
