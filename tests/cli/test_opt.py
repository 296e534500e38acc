"""skvm-opt in process: normal use and every error path (located diagnostics, exit 1,
no traceback, output file never overwritten on error)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from skvm import __version__
from skvm.cli.opt import OptDriver

GOOD = 'skill @m {\n  ctx.text "a" "b"\n  proc @main(%t: text) -> text {\n    ctl.return (%t)\n  }\n}\n'
ALL_OPS = (Path(__file__).parents[1] / "ir" / "Inputs" / "all_ops.skir").read_text(encoding="utf-8")
#: A diagnostic: header, the quoted source line, a caret line.
DIAG = re.compile(r"^(?P<file>[^\n:]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>[^\n]+)\n(?P<src>[^\n]*)\n(?P<caret> *\^)$", re.MULTILINE)


def run(args: list[str], stdin: str = "") -> tuple[int, str, str]:
    """Run skvm-opt in process; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = OptDriver(args, io.StringIO(stdin), out, err).run()
    assert "Traceback" not in err.getvalue() and "Traceback" not in out.getvalue()
    return code, out.getvalue(), err.getvalue()


def diagnostics(stderr: str) -> list[re.Match]:
    """The rendered diagnostics in ``stderr``; each caret sits under its column."""
    found = list(DIAG.finditer(stderr))
    for m in found:
        assert len(m["caret"]) == int(m["col"]) or len(m["caret"]) == len(m["src"].expandtabs(1)) + 1
    return found


def write(tmp_path: Path, text: str | bytes, name: str = "in.skir") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


# ---- normal use ----------------------------------------------------------------------------


def test_prints_canonical_form(tmp_path):
    """No -passes: parse, verify, print the canonical form."""
    messy = 'skill   @m{ctx.text "a"   "b" // c\nproc @main(%t:text)->text{ctl.return(%t)}}'
    code, out, err = run([write(tmp_path, messy)])
    assert (code, out, err) == (0, GOOD, "")


def test_stdin_dash():
    """'-' (and no input) reads stdin."""
    assert run(["-"], GOOD) == (0, GOOD, "")
    assert run([], GOOD) == (0, GOOD, "")


def test_output_file(tmp_path):
    """-o writes the artifact to a file, nothing to stdout."""
    target = tmp_path / "out.skir"
    code, out, _ = run([write(tmp_path, GOOD), "-o", str(target)])
    assert code == 0 and out == "" and target.read_text(encoding="utf-8") == GOOD


def test_unwritable_output_is_an_error_not_a_traceback(tmp_path):
    """-o into a missing directory, or onto a directory: exit 1 with the reason."""
    source = write(tmp_path, GOOD)
    code, out, err = run([source, "-o", str(tmp_path / "missing" / "out.skir")])
    assert code == 1 and out == ""
    assert f"skvm-opt: error: cannot write '{tmp_path / 'missing' / 'out.skir'}': No such file or directory" in err
    code, _, err = run([source, "-o", str(tmp_path)])
    assert code == 1 and f"cannot write '{tmp_path}': it is a directory" in err


def test_print_generic_round_trips(tmp_path):
    """--print-generic output parses back to the same canonical text."""
    code, generic, _ = run([write(tmp_path, ALL_OPS), "--print-generic"])
    assert code == 0 and '"skill.proc"()' in generic
    assert run(["-"], generic) == (0, ALL_OPS, "")


def test_version_and_list_passes():
    """--version and --list-passes print and exit 0."""
    assert run(["--version"]) == (0, f"skvm-opt (skvm) {__version__}\n", "")
    code, out, _ = run(["--list-passes"])
    assert code == 0
    assert re.search(r"^  canonicalize +\S", out, re.MULTILINE)
    assert re.search(r"^  effects +\S", out, re.MULTILINE) and re.search(r"^  dep-graph +\S", out, re.MULTILINE)
    assert "Named pipelines:" in out


def test_print_pipeline_passes():
    """--print-pipeline-passes prints the expanded canonical pipeline and exits."""
    code, out, _ = run(["-passes=canonicalize, print<effects>", "--print-pipeline-passes"])
    assert (code, out) == (0, "canonicalize,print<effects>\n")


def test_unregistered_allowed_in_generic_form(tmp_path):
    """--allow-unregistered accepts an unknown op, printed generically."""
    text = 'skill @m {\n  "foo.bar"() {k = 1} : () -> ()\n}\n'
    path = write(tmp_path, text)
    assert run([path, "--allow-unregistered"]) == (0, text, "")
    code, _, err = run([path])
    assert code == 1
    (d,) = diagnostics(err)
    assert d["msg"] == "unknown op 'foo.bar' (use --allow-unregistered to accept it)"
    assert (d["line"], d["col"]) == ("2", "3")


# ---- error paths -------------------------------------------------------------------------------

BAD_INPUTS = {
    "unparsable": ('skill @m {\n  ctx.text "a" ]\n}\n', 2, 16, "unexpected ']'"),
    "unknown-op": ("skill @m {\n  proc @p() {\n    foo.bar\n  }\n}\n", 3, 5, "unknown op 'foo.bar'"),
    "type-error": ('skill @m {\n  proc @p(%t: text) {\n    %b = llm.judge "q" (%t) : text\n  }\n}\n', 3, 10,
                   "llm.judge must produce a bool"),
    "dangling-ref": ('skill @m {\n  ctx.ref @nowhere\n}\n', 2, 3, "reference to undefined symbol @nowhere"),
    "empty": ("", 1, 1, "empty input"),
    "blank": ("  \n\n", 1, 1, "empty input"),
    "binary": (b"skill @m {\n  \x00\x01\x02\n}", 2, 3, "input is a binary file (NUL byte)"),
    "non-utf8": (b"skill @m {\n  ctx.text \"caf\xe9\" \"b\"\n}\n", 2, 16, "input is not valid UTF-8"),
    "bad-type": ('skill @m {\n  proc @p(%t: txt) {\n  }\n}\n', 2, 3, "bad type of %t: unknown type 'txt'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_a_located_diagnostic(tmp_path, case):
    """Each bad input: exit 1, a located diagnostic with source line and caret, -o untouched."""
    text, line, col, message = BAD_INPUTS[case]
    output = tmp_path / "out.skir"
    output.write_text("keep me\n", encoding="utf-8")
    path = write(tmp_path, text)
    code, out, err = run([path, "-o", str(output)])
    assert code == 1 and out == ""
    found = diagnostics(err)
    assert found, err
    first = found[0]
    assert first["file"] == path
    assert (int(first["line"]), int(first["col"])) == (line, col)
    assert message in first["msg"]
    assert output.read_text(encoding="utf-8") == "keep me\n"
    assert not list(tmp_path.glob(".out.skir.*")), "a temporary file was left behind"


def test_missing_file_and_directory(tmp_path):
    """A missing file or a directory (unreadable as text) is an error, not a traceback."""
    code, _, err = run([str(tmp_path / "missing.skir")])
    assert code == 1 and err == f"error: no such file: {tmp_path / 'missing.skir'}\n"
    folder = tmp_path / "dir.skir"
    folder.mkdir()
    code, _, err = run([str(folder)])
    assert code == 1 and "error:" in err


@pytest.mark.parametrize(
    "pipeline, message, col",
    [
        ("canonicalize,nope", "unknown pass 'nope'", 14),
        ("canonicalize{nope=1}", "pass 'canonicalize' has no option 'nope'", 14),
        ("print<nothing>", "unknown analysis 'nothing'", 1),
    ],
)
def test_bad_pipeline(tmp_path, pipeline, message, col):
    """Unknown passes and options: a diagnostic on <pipeline> with the column, exit 1."""
    code, out, err = run([write(tmp_path, GOOD), f"-passes={pipeline}"])
    assert code == 1 and out == ""
    assert err.startswith(f"<pipeline>:1:{col}: error: {message}")


def test_usage_error():
    """An unknown flag is a usage error, exit 1."""
    code, _, err = run(["--no-such-flag"])
    assert code == 1 and err.startswith("skvm-opt: error: unrecognized arguments")


def test_all_problems_reported(tmp_path):
    """Several verifier problems are all printed, each with its caret."""
    text = 'skill @m {\n  ctx.ref @a\n  ctx.ref @b\n  check.cmd ["x"]\n}\n'
    code, _, err = run([write(tmp_path, text)])
    assert code == 1
    assert [d["msg"] for d in diagnostics(err)] == [
        "reference to undefined symbol @a",
        "reference to undefined symbol @b",
        "'check.cmd' must be inside a procedure, not at skill level",
    ]


# ---- --split-input-file and --verify-diagnostics --------------------------------------------


SPLIT = GOOD + "// -----\n" + "skill @n {\n  ctx.ref @x\n}\n" + "// -----\n" + "skill @o {\n}\n"


def test_split_input_file(tmp_path):
    """Each chunk is processed on its own; lines stay those of the whole file."""
    path = write(tmp_path, SPLIT)
    code, out, err = run([path, "--split-input-file"])
    assert code == 1
    (d,) = diagnostics(err)
    assert (d["line"], d["msg"]) == ("9", "reference to undefined symbol @x")
    assert d["src"] == "  ctx.ref @x"
    ok = SPLIT.replace("  ctx.ref @x\n", "")
    code, out, err = run([write(tmp_path, ok, "ok.skir"), "--split-input-file"])
    assert (code, err) == (0, "")
    assert out == GOOD + "// -----\nskill @n {\n}\n// -----\nskill @o {\n}\n"


def test_verify_diagnostics_pass(tmp_path):
    """Expected diagnostics that are produced: exit 0, nothing printed."""
    text = (
        "skill @n {\n  ctx.ref @x // expected-error {{undefined symbol @x}}\n}\n// -----\n"
        "skill @o {\n  // expected-error@+1 {{unexpected ']'}}\n  ctx.text ]\n}\n"
    )
    code, out, err = run([write(tmp_path, text), "--split-input-file", "--verify-diagnostics"])
    assert (code, out, err) == (0, "", "")


def test_verify_diagnostics_fail(tmp_path):
    """A missing or an unexpected diagnostic fails with a located report."""
    text = "skill @n {\n  ctx.ref @x // expected-error {{something else}}\n}\n"
    code, _, err = run([write(tmp_path, text), "--verify-diagnostics"])
    assert code == 1
    messages = [d["msg"] for d in diagnostics(err)]
    assert messages == [
        'expected error "something else" was not produced',
        "unexpected error: reference to undefined symbol @x",
    ]
