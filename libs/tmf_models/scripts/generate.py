"""Generate ``tmf_models._generated`` from the official TM Forum v4 specs.

Usage (from the repository root; ``make models`` runs the first form)::

    .venv/bin/python libs/tmf_models/scripts/generate.py
    .venv/bin/python libs/tmf_models/scripts/generate.py --output /tmp/out   # e.g. for the drift test

The specs are read from ``$TMF_REFERENCE_DIR/tmf-specs`` (default ``<repo root>/../shared``)
and are never copied into the repository. The output is deterministic: it depends only on
the spec files, this script and the pinned datamodel-code-generator version, which the
script checks before it runs.

Pipeline, per API: take the Swagger 2.0 ``definitions`` (JSON-Schema-ish), apply the few
documented patches below, point the shared definitions at ``common.json``, run
datamodel-code-generator in JSON Schema mode, then post-process the text (restore the
spec's ``X_Create``/``X_Update`` class names, add ``EVENT_TYPES`` and ``__all__``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

DMCG_VERSION = "0.89.0"

REPO_ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = REPO_ROOT / "libs" / "tmf_models" / "src" / "tmf_models"
DEFAULT_OUTPUT = PACKAGE_DIR / "_generated"


@dataclass(frozen=True)
class Api:
    module: str
    title: str
    spec: str  # path under tmf-specs/
    # v5 file whose listener paths name events the v4 swagger leaves out (TMF678).
    v5_events_from: str | None = None


APIS = (
    Api(
        "tmf622",
        "TMF622 Product Ordering Management",
        "TMF622/TMF622_Product_Ordering_Management_API_v4.0.0_swagger.json",
    ),
    Api(
        "tmf678",
        "TMF678 Customer Bill Management",
        "TMF678/TMF678_Customer_Bill_Management_API_v4.0.0_swagger.json",
        v5_events_from="TMF678/TMF678-CustomerBill-v5.0.0.oas.yaml",
    ),
    Api(
        "tmf621",
        "TMF621 Trouble Ticket Management",
        "TMF621/TMF621_Trouble_Ticket_Management_API_v4.0.0_swagger.json",
    ),
    Api("tmf676", "TMF676 Payment Management", "TMF676/TMF676-Payment-v4.0.0.swagger.json"),
)

# Shared types, taken from TMF622. An API uses the shared class when its own definition
# has the same structure (descriptions aside); otherwise it keeps its own (TMF621's Note,
# whose ``text`` is optional, stays tmf621.Note).
COMMON_SOURCE = "tmf622"
COMMON_NAMES = (
    "Characteristic",
    "EntityRef",
    "Error",
    "EventSubscription",
    "EventSubscriptionInput",
    "Money",
    "Note",
    "Quantity",
    "RelatedParty",
    "TimePeriod",
)

# The v4 event envelope used for events the v4 swagger does not define (TMF678).
ENVELOPE_TEMPLATE = ("tmf622", "ProductOrderCreateEvent")

# Patches applied to the schema before generation, so that they also show in the models'
# JSON Schema. Everything else is generated exactly as the v4 swagger says.
#
# Leniency the official conformance kits require (../shared/tmf-ctk/README.md):
#  - TMF621 R18 CTK, TC_Trou_N2: POST troubleTicket with "status": "nanana" expects 201.
#    TroubleTicket_Create.status takes a known TroubleTicketStatusType or any string
#    (known values first: the field is generated with union_mode="left_to_right").
#    PATCH (TroubleTicket_Update) and the TroubleTicket resource stay strict.
#  TMF676's empty ``paymentMethod``/``totalAmount`` objects and TMF622's minimal
#  relatedParty are valid per the v4 spec as it is, so they need no patch.
#
# Spec fix:
#  - TMF622 ProductOrder_Update (the PATCH body) requires ``productOrderItem`` in the v4
#    swagger, which makes a merge-patch such as {"state": "held"} invalid. A merge-patch
#    is partial by definition (RFC 7396) and v5's ProductOrder_MVO requires nothing, so
#    the requirement is dropped.
PATCHES: dict[str, dict[str, dict[str, Any]]] = {
    "tmf621": {
        "TroubleTicket_Create": {
            "properties": {
                "status": {
                    "description": "The current status of the trouble ticket. On create, an unknown value is "
                    "kept as a string (the TMF621 conformance kit sends one); the service decides what to do "
                    "with it.",
                    "anyOf": [{"$ref": "#/definitions/TroubleTicketStatusType"}, {"type": "string"}],
                },
            },
        },
    },
    "tmf622": {
        "ProductOrder_Update": {"required": None},
    },
}

FIELD_ALIASES = {
    "@type": "type_",
    "@baseType": "base_type",
    "@schemaLocation": "schema_location",
    "@referredType": "referred_type",
}


def reference_dir() -> Path:
    env = os.environ.get("TMF_REFERENCE_DIR")
    return Path(env).resolve() if env else (REPO_ROOT.parent / "shared").resolve()


def check_generator_version() -> None:
    try:
        found = metadata.version("datamodel-code-generator")
    except metadata.PackageNotFoundError:
        sys.exit(
            f"datamodel-code-generator is not installed; install datamodel-code-generator=={DMCG_VERSION}"
        )
    if found != DMCG_VERSION:
        sys.exit(
            f"datamodel-code-generator {found} found, but the committed models were generated with "
            f"{DMCG_VERSION} (constraints.txt). Install that version: output differs between versions."
        )


def load_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def rewrite_refs(node: Any, shared: set[str]) -> Any:
    """Point ``#/definitions/X`` at ``common.json`` for shared X; inline the empty ``Any``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref.removeprefix("#/definitions/")
            if name == "Any":
                # Swagger's ``Any: {}``: a value of any JSON type (Characteristic.value).
                return {k: v for k, v in node.items() if k != "$ref"}
            if name in shared:
                return {**node, "$ref": f"common.json#/definitions/{name}"}
        return {k: rewrite_refs(v, shared) for k, v in node.items()}
    if isinstance(node, list):
        return [rewrite_refs(v, shared) for v in node]
    return node


def listener_events(paths: dict[str, Any]) -> list[str]:
    names = []
    for path in paths:
        if path.startswith("/listener/"):
            name = path.removeprefix("/listener/")
            names.append(name[0].upper() + name[1:])
    return names


def v5_event_payloads(spec: Path) -> dict[str, tuple[str, str]]:
    """Event name -> (payload property, resource definition), from a v5 OAS file."""
    with spec.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    schemas = doc["components"]["schemas"]
    result: dict[str, tuple[str, str]] = {}
    for event in listener_events(doc["paths"]):
        payload_ref = next(
            part["properties"]["event"]["$ref"] for part in schemas[event]["allOf"] if "properties" in part
        )
        payload = schemas[payload_ref.rsplit("/", 1)[1]]
        ((prop, prop_schema),) = payload["properties"].items()
        result[event] = (prop, prop_schema["$ref"].rsplit("/", 1)[1])
    return result


def synthesize_events(
    definitions: dict[str, Any], v5_spec: Path, template: dict[str, Any], source_note: str
) -> list[str]:
    """Add v4-style envelopes for the events the v5 spec names and the v4 swagger lacks."""
    added = []
    for event, (prop, resource) in v5_event_payloads(v5_spec).items():
        if event in definitions:
            continue
        if resource not in definitions:
            raise SystemExit(f"{event}: resource {resource} is not defined in the v4 spec")
        envelope = copy.deepcopy(template)
        envelope["description"] = f"The notification data structure ({source_note})"
        envelope["properties"]["event"]["$ref"] = f"#/definitions/{event}Payload"
        definitions[event] = envelope
        definitions[f"{event}Payload"] = {
            "type": "object",
            "description": "The event data structure",
            "properties": {
                prop: {
                    "description": "The involved resource data for the event",
                    "$ref": f"#/definitions/{resource}",
                }
            },
        }
        added.append(event)
    return added


def apply_patches(module: str, definitions: dict[str, Any]) -> None:
    for model, patch in PATCHES.get(module, {}).items():
        target = definitions[model]
        for key, value in patch.items():
            if key == "properties":
                for prop, schema in value.items():
                    if prop not in target["properties"]:
                        raise SystemExit(f"patch target {model}.{prop} not found in {module}")
                    target["properties"][prop] = schema
            elif value is None:
                if key not in target:
                    raise SystemExit(f"patch target {model}.{key} not found in {module}")
                del target[key]
            else:
                target[key] = value


def run_codegen(source: Path, output: Path, header: str, external: dict[str, str]) -> str:
    cmd = [
        sys.executable,
        "-m",
        "datamodel_code_generator",
        "--input",
        source.name,
        "--input-file-type",
        "jsonschema",
        "--output",
        str(output),
        "--output-model-type",
        "pydantic_v2.BaseModel",
        "--target-python-version",
        "3.11",
        "--formatters",
        "builtin",
        "--use-double-quotes",
        "--disable-timestamp",
        "--custom-file-header",
        header,
        "--skip-root-model",
        "--collapse-root-models",
        "--keep-model-order",
        "--use-schema-description",
        "--use-annotated",
        "--snake-case-field",
        "--aliases",
        json.dumps(FIELD_ALIASES),
        "--strict-types",
        "str",
        "int",
        "float",
        "bool",
        "--output-datetime-class",
        "AwareDatetime",
        "--import-overrides",
        json.dumps({"AwareDatetime": "tmf_models._base", "AnyUrl": "tmf_models._base"}),
        # ``format: uri`` becomes ``AnyUrl`` imported from _base, renamed ``AnyUri`` by uri_type():
        # a string checked against RFC 3986 and kept as sent (pydantic's AnyUrl would rewrite the
        # value, a trailing slash or the case, and break the round trip).
        "--base-class",
        "tmf_models._base.TMFModel",
        "--use-specialized-enum",
        "--enum-field-as-literal",
        "none",
        "--union-mode",
        "left_to_right",
        "--disable-warnings",
    ]
    for path, module in external.items():
        cmd += ["--external-ref-mapping", f"{path}={module}"]
    subprocess.run(cmd, check=True, cwd=source.parent)
    return number_type(uri_type(output.read_text(encoding="utf-8")))


def uri_type(text: str) -> str:
    """``format: uri`` fields: the generator names pydantic's ``AnyUrl``, imported from ``_base``
    (``--import-overrides``); the type there is ``AnyUri``, a string checked against RFC 3986."""
    if re.search(r"^from pydantic import .*\bAnyUrl\b", text, re.MULTILINE):
        raise SystemExit("AnyUrl imported from pydantic: --import-overrides did not apply")
    return re.sub(r"\bAnyUrl\b", "AnyUri", text)


_PYDANTIC_IMPORT = re.compile(r"^from pydantic import (.*)$", re.MULTILINE)
_BASE_IMPORT = re.compile(r"^from tmf_models\._base import (.*)$", re.MULTILINE)


def number_type(text: str) -> str:
    """``type: number`` fields: the generator writes pydantic's ``StrictFloat``; they become ``Number``
    from ``_base``, a JSON number held as a ``Decimal`` (money must not pass through a float)."""
    if not re.search(r"\bStrictFloat\b", text):
        return text

    def names(match: re.Match[str], drop: str = "", add: str = "") -> str:
        found = {n.strip() for n in match.group(1).split(",")} - {drop}
        return match.group(0).split(" import ")[0] + " import " + ", ".join(sorted(found | ({add} - {""})))

    text = _PYDANTIC_IMPORT.sub(lambda m: names(m, drop="StrictFloat"), text, count=1)
    text = _BASE_IMPORT.sub(lambda m: names(m, add="Number"), text, count=1)
    if not re.search(r"^from tmf_models\._base import .*\bNumber\b", text, re.MULTILINE):
        raise SystemExit("StrictFloat used but tmf_models._base is not imported")
    text = re.sub(r"\bStrictFloat\b", "Number", text)
    # A numeric default (Quantity.amount's 1) stays the JSON number the spec gives, so the JSON
    # Schema's "default" is a number too (a Decimal default would be documented as a string).
    return _NUMBER_DEFAULT.sub(r"\1 = \2  # type: ignore[assignment]  # a JSON number, read as Decimal", text)


_NUMBER_DEFAULT = re.compile(
    r"(Annotated\[\s*Number \| None,(?:[^\[\]]|\[[^\]]*\])*\]) = (-?[0-9][0-9.eE+-]*)$", re.MULTILINE
)


CLASS_RE = re.compile(r"^class (\w+)\(", re.MULTILINE)
MODEL_RE = re.compile(r"^class (\w+)\(TMFModel\):", re.MULTILINE)
IMPORTED_RE = re.compile(r"^from tmf_models\._generated\.common import (\([^)]*\)|[^\n]*)", re.MULTILINE)


def restore_names(text: str, definitions: dict[str, Any]) -> str:
    """The generator drops ``_`` from class names; the spec's ``ProductOrder_Create`` keeps it."""
    for name in sorted(definitions):
        if "_" not in name:
            continue
        generated = name.replace("_", "")
        if generated in definitions:
            raise SystemExit(f"cannot restore {name}: {generated} is also a definition")
        if f"class {generated}(" not in text:
            raise SystemExit(f"expected class {generated} for definition {name}")
        text = re.sub(rf"\b{generated}\b", name, text)
    return text


def finish_module(text: str, events: list[str], shared: set[str] | None = None) -> str:
    classes = CLASS_RE.findall(text)
    imported: list[str] = []
    for match in IMPORTED_RE.finditer(text):
        imported += [n.strip() for n in match.group(1).strip("()").split(",") if n.strip()]
    # Shared types the API defines but none of its models refers to (Error, the hub's
    # EventSubscription...): import them too, so that e.g. tmf622.Error exists.
    unreferenced = sorted((shared or set()) - set(imported))
    if unreferenced:
        first_class = text.index("\n\n\nclass ")
        extra = f"\nfrom tmf_models._generated.common import {', '.join(unreferenced)}"
        text = text[:first_class] + extra + text[first_class:]
        imported += unreferenced
    missing = [e for e in events if e not in classes]
    if missing:
        raise SystemExit(f"events without a model: {missing}")
    lines = [text.rstrip("\n"), ""]
    models = MODEL_RE.findall(text)
    if models:
        # Models that refer to classes defined further down are built on first use, and
        # until then their ``model_fields`` hold forward references. Services read
        # ``model_fields`` (TMF630 filters), so resolve everything at import.
        lines += ["", "for _model in ("]
        lines += [f"    {m}," for m in models]
        lines += ["):", "    _model.model_rebuild()"]
    if events:
        lines += [
            "",
            "#: eventType name -> envelope model, for every event the API names.",
            "EVENT_TYPES: dict[str, type[TMFModel]] = {",
            *(f'    "{e}": {e},' for e in events),
            "}",
        ]
    exported = sorted({*classes, *imported, *(["EVENT_TYPES"] if events else [])})
    lines += ["", "__all__ = [", *(f'    "{n}",' for n in exported), "]", ""]
    return "\n".join(lines)


def header_for(title: str, sources: list[tuple[str, Path]]) -> str:
    lines = [
        f"# {title}: generated by libs/tmf_models/scripts/generate.py (make models). Do not edit.",
        f"# datamodel-code-generator {DMCG_VERSION}; source files under tmf-specs/:",
    ]
    lines += [f"#   {rel} (sha256 {sha256(path)[:16]})" for rel, path in sources]
    return "\n".join(lines)


def generate(output_dir: Path) -> list[Path]:
    specs_dir = reference_dir() / "tmf-specs"
    if not specs_dir.is_dir():
        raise SystemExit(
            f"TM Forum reference specs not found at {specs_dir}. Set TMF_REFERENCE_DIR to the folder "
            "that holds tmf-specs/ (default: <repo root>/../shared)."
        )
    check_generator_version()

    loaded = {api.module: load_json(specs_dir / api.spec) for api in APIS}
    common_defs = loaded[COMMON_SOURCE]["definitions"]
    template_module, template_name = ENVELOPE_TEMPLATE
    template = loaded[template_module]["definitions"][template_name]

    output_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="tmf-models-") as tmp:
        work = Path(tmp)
        common_schema = {"definitions": {n: rewrite_refs(common_defs[n], set()) for n in COMMON_NAMES}}
        (work / "common.json").write_text(json.dumps(common_schema, indent=1), encoding="utf-8")
        common_spec = next(a for a in APIS if a.module == COMMON_SOURCE)
        text = run_codegen(
            work / "common.json",
            work / "common.py",
            header_for("Types shared by the TMF APIs", [(common_spec.spec, specs_dir / common_spec.spec)]),
            {},
        )
        written.append(write(output_dir / "common.py", finish_module(text, [])))

        for api in APIS:
            definitions = copy.deepcopy(loaded[api.module]["definitions"])
            events = listener_events(loaded[api.module]["paths"])
            sources = [(api.spec, specs_dir / api.spec)]
            if api.v5_events_from:
                v5 = specs_dir / api.v5_events_from
                synthesize_events(
                    definitions, v5, template, f"event named by {Path(api.v5_events_from).name}"
                )
                events += list(listener_events(yaml.safe_load(v5.read_text(encoding="utf-8"))["paths"]))
                sources.append((api.v5_events_from, v5))
            apply_patches(api.module, definitions)
            shared = {
                n
                for n in COMMON_NAMES
                if n in definitions
                and strip_descriptions(definitions[n]) == strip_descriptions(common_defs[n])
            }
            schema = {
                "definitions": {
                    name: rewrite_refs(body, shared)
                    for name, body in definitions.items()
                    if name not in shared and name != "Any"
                }
            }
            source = work / f"{api.module}.json"
            source.write_text(json.dumps(schema, indent=1), encoding="utf-8")
            text = run_codegen(
                source,
                work / f"{api.module}.py",
                header_for(f"{api.title} v4.0.0", sources),
                {"common.json": "tmf_models._generated.common"},
            )
            text = restore_names(text, definitions)
            written.append(write(output_dir / f"{api.module}.py", finish_module(text, events, shared)))

    written.append(
        write(
            output_dir / "__init__.py",
            '"""Models generated from the TM Forum specs by scripts/generate.py. Do not edit."""\n',
        )
    )
    return written


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="output folder (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    for _path in generate(args.output):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
