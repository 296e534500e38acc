"""Tests of skvm.jsonfile: reading schema-checked JSON files with located diagnostics."""

from __future__ import annotations

import pytest

from skvm import jsonfile
from skvm.diagnostics import SkvmError
from skvm.targets.profile import load_profile_file


def test_locate_finds_nested_keys_and_array_items():
    text = '{\n  "a": {\n    "b": [\n      1,\n      2\n    ]\n  }\n}'
    assert (jsonfile.locate(text, "f.json", ("a", "b")).line) == 3
    assert (jsonfile.locate(text, "f.json", ("a", "b", 1)).line) == 5
    assert jsonfile.locate(None, "f.json", ("a",)) is None


def test_read_json_errors_are_located(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "x": ,\n}')
    with pytest.raises(SkvmError) as info:
        jsonfile.read_json(bad, "thing file")
    diag = info.value.diagnostics[0]
    assert diag.message.startswith("thing file is not valid JSON") and diag.loc.line == 2
    with pytest.raises(SkvmError, match="cannot read thing file"):
        jsonfile.read_json(tmp_path / "absent.json", "thing file")


def test_non_utf8_profile_is_a_diagnostic(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes(b'{"model": "\xff"}')
    with pytest.raises(SkvmError, match="target profile is not UTF-8 text"):
        load_profile_file(path)


def test_schema_errors_are_sorted_by_path():
    errors = jsonfile.schema_errors("target-profile.schema.json", {"model": 1, "harness": 2})
    paths = [list(map(str, e.path)) for e in errors]
    assert paths == sorted(paths) and errors
