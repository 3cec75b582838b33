"""Unit tests for PATCH handling: RFC 7396 merge patch and RFC 6902 JSON Patch."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_kit.errors import BadRequest, Conflict, UnsupportedMediaType
from switchboard_kit.patch import apply_json_patch, apply_patch, merge_patch

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


# -- RFC 7396 Appendix A --------------------------------------------------------------------------

RFC7396_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7396_EXAMPLES)
def test_rfc7396_appendix_a(target: Any, patch: Any, expected: Any) -> None:
    target_before = copy.deepcopy(target)
    patch_before = copy.deepcopy(patch)
    assert merge_patch(target, patch) == expected
    assert target == target_before
    assert patch == patch_before


def test_rfc7396_section3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert apply_patch(target, body(patch), MERGE) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        MERGE,
        "application/json",
        "application/json; charset=utf-8",
        "Application/Merge-Patch+JSON ;charset=UTF-8",
    ],
)
def test_merge_patch_media_types(content_type: str | None) -> None:
    assert apply_patch({"a": 1, "b": 2}, b'{"b": null, "c": 3}', content_type) == {"a": 1, "c": 3}


@pytest.mark.parametrize("payload", [b'["x"]', b'"x"', b"null", b"3"])
def test_merge_patch_body_must_be_object(payload: bytes) -> None:
    with pytest.raises(BadRequest):
        apply_patch({"a": 1}, payload, MERGE)


@pytest.mark.parametrize(
    "payload", [b"", b"  ", b"{", b"{'a': 1}", b'{"a": NaN}', b'{"a": Infinity}', b"\xff\xfe"]
)
@pytest.mark.parametrize("content_type", [MERGE, JSON_PATCH])
def test_malformed_json(payload: bytes, content_type: str) -> None:
    with pytest.raises(BadRequest):
        apply_patch({"a": 1}, payload, content_type)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/json-patch-query+json", "multipart/form-data; boundary=x"],
)
def test_unsupported_media_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        apply_patch({"a": 1}, b"{}", content_type)
    assert info.value.status == 415
    assert "application/merge-patch+json" in info.value.headers["Accept-Patch"]


def test_merge_result_is_independent() -> None:
    doc: dict[str, Any] = {"a": {"b": [1, 2]}, "keep": {"x": [1]}}
    patch = {"a": {"c": {"d": [3]}}}
    result = apply_patch(doc, body(patch), MERGE)
    result["a"]["b"].append(99)
    result["keep"]["x"].append(99)
    assert doc == {"a": {"b": [1, 2]}, "keep": {"x": [1]}}
    shared = merge_patch({}, patch)
    shared["a"]["c"]["d"].append(4)
    assert patch == {"a": {"c": {"d": [3]}}}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@given(json_objects, json_objects)
def test_merge_patch_properties(target: dict[str, Any], patch: dict[str, Any]) -> None:
    before = copy.deepcopy(target)
    once = merge_patch(target, patch)
    assert target == before
    assert merge_patch(once, patch) == once  # idempotent
    for key, value in patch.items():
        if value is None:
            assert key not in once
        elif not isinstance(value, dict):
            assert once[key] == value


# -- RFC 6902 -----------------------------------------------------------------------------------------

RFC6902_EXAMPLES: list[tuple[Any, list[dict[str, Any]], Any]] = [
    # A.1 Adding an Object Member
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    # A.2 Adding an Array Element
    (
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    # A.3 Removing an Object Member
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    # A.4 Removing an Array Element
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    # A.5 Replacing a Value
    (
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    # A.6 Moving a Value
    (
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    # A.7 Moving an Array Element
    (
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    # A.8 Testing a Value: Success
    (
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    # A.10 Adding a Nested Member Object
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    # A.11 Ignoring Unrecognized Elements
    (
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    # A.14 ~ Escape Ordering
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    # A.16 Adding an Array Value
    (
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    # copy
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
]


@pytest.mark.parametrize(("doc", "ops", "expected"), RFC6902_EXAMPLES)
def test_rfc6902_appendix_a(doc: Any, ops: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert apply_patch(doc, body(ops), JSON_PATCH) == expected
    assert doc == before


def test_json_patch_charset_param() -> None:
    ops = [{"op": "replace", "path": "/a", "value": 2}]
    assert apply_patch({"a": 1}, body(ops), "application/json-patch+json; charset=utf-8") == {"a": 2}


def test_failed_test_op_is_conflict_and_nothing_applied() -> None:
    doc = {"baz": "qux", "foo": ["a", 2, "c"]}
    ops = [{"op": "replace", "path": "/baz", "value": "x"}, {"op": "test", "path": "/baz", "value": "bar"}]
    with pytest.raises(Conflict) as info:
        apply_patch(doc, body(ops), JSON_PATCH)
    assert info.value.status == 409
    assert doc == {"baz": "qux", "foo": ["a", 2, "c"]}


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "add", "path": "/a", "value": 1},  # not a list
        "add",
        [1],
        [{"path": "/a", "value": 1}],  # no op
        [{"op": "frobnicate", "path": "/a"}],  # A.12 invalid operation
        [{"op": "add", "value": 1}],  # no path
        [{"op": "add", "path": 5, "value": 1}],
        [{"op": "add", "path": "/a"}],  # no value
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],  # A.9 non-existent target
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "add", "path": "a", "value": 1}],  # pointer without leading slash
        [{"op": "add", "path": "/list/9", "value": 1}],  # index out of range
        [{"op": "add", "path": "/list/x", "value": 1}],
        [{"op": "move", "from": "/missing", "path": "/b"}],
        [{"op": "move", "from": "/a", "path": "/a/b"}],  # into its own child
        [{"op": "copy", "from": 3, "path": "/b"}],
        [{"op": "replace", "path": "", "value": [1]}],  # the document must stay an object
        [{"op": "test", "path": "/missing", "value": 1}],
    ],
)
def test_invalid_json_patch(ops: Any) -> None:
    doc = {"a": {"x": 1}, "list": [1, 2]}
    with pytest.raises((BadRequest, Conflict)) as info:
        apply_patch(doc, body(ops), JSON_PATCH)
    assert info.value.status in (400, 409)
    assert doc == {"a": {"x": 1}, "list": [1, 2]}


def test_bad_path_is_400() -> None:
    with pytest.raises(BadRequest):
        apply_json_patch({"a": 1}, [{"op": "remove", "path": "/nope"}])


def test_json_patch_result_is_independent() -> None:
    doc: dict[str, Any] = {"a": {"b": [1]}}
    result = apply_json_patch(doc, [{"op": "add", "path": "/c", "value": 1}])
    result["a"]["b"].append(2)
    assert doc == {"a": {"b": [1]}}
