"""Exports what crosses service boundaries: ``openapi/<service>.json`` and ``contracts/``.

For every service of ``suite.toml`` (:mod:`switchboard_dev.manifest`): its app's OpenAPI
document, and the AsyncAPI channels and event schemas of the topics the manifest lists.
``python -m switchboard_dev.export`` writes the files; ``--check`` fails on any difference
with what is committed (CI runs the check through the test suite).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .manifest import REPO_ROOT, SERVICES, import_target


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def openapi_documents() -> dict[Path, str]:
    out = {}
    for svc in SERVICES:
        app = import_target(svc.app)()
        out[REPO_ROOT / "openapi" / f"{svc.name}.json"] = _dumps(app.openapi())
    return out


def contract_documents() -> dict[Path, str]:
    from tmf_models import events as tmf_events

    out: dict[Path, str] = {}
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for svc in SERVICES:
        schemas = {**tmf_events.event_json_schemas(), **svc.event_schemas()}
        for topic in svc.topics:
            event_types = svc.event_types(topic)
            for event_type in event_types:
                out[REPO_ROOT / "contracts" / "events" / f"{event_type}.schema.json"] = _dumps(
                    schemas[event_type]
                )
                messages[event_type] = {
                    "name": event_type,
                    "title": event_type,
                    "contentType": "application/json",
                    "headers": {
                        "type": "object",
                        "required": ["eventType"],
                        "properties": {
                            "eventType": {"type": "string", "const": event_type},
                            "correlationId": {"type": "string"},
                        },
                    },
                    "payload": {"$ref": f"./events/{event_type}.schema.json"},
                }
            channels[topic] = {
                "address": topic,
                "description": f"{svc.name}: every state change, keyed by resource id (one partition per resource, so in order per resource). Delivery is at-least-once; deduplicate on eventId.",
                "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in event_types},
            }
    asyncapi = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchboard events",
            "version": "1.0.0",
            "description": "Kafka topics of the Switchboard suite. Values are TMF event envelopes as JSON; the key is the resource id; headers carry eventType and correlationId. Produced through a transactional outbox.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": {
            f"publish_{topic.replace('.', '_')}": {
                "action": "send",
                "channel": {"$ref": f"#/channels/{topic}"},
            }
            for topic in channels
        },
        "components": {"messages": messages},
    }
    out[REPO_ROOT / "contracts" / "asyncapi.json"] = _dumps(asyncapi)
    return out


def all_documents() -> dict[Path, str]:
    return {**openapi_documents(), **contract_documents()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in sorted(all_documents().items()):
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    if stale:
        print(
            "out of date (run `make openapi`):",
            *[str(p.relative_to(REPO_ROOT)) for p in stale],
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
