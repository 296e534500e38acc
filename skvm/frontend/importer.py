"""Import a skill folder (or its SKILL.md) into verified SkIR.

The front end in one call: read the folder, parse and check the frontmatter,
parse the Markdown body, lower to SkIR, verify. Deterministic and offline.
"""

from __future__ import annotations

from pathlib import Path

from skvm.diagnostics import DiagnosticEngine, SkvmError
from skvm.frontend.folder import load_skill_folder
from skvm.frontend.frontmatter import parse_frontmatter
from skvm.frontend.lower import Lowering
from skvm.frontend.markdown import parse_markdown
from skvm.ir.operation import Module
from skvm.ir.verifier import verify
from skvm.perf import paused_gc


def import_skill(path: str | Path, diag: DiagnosticEngine | None = None) -> Module:
    """Import the skill at ``path``; warnings go to ``diag``.

    Raises:
        SkvmError: the folder or SKILL.md cannot be read or parsed, or (a bug)
            the lowered module does not verify.
    """
    if diag is None:
        diag = DiagnosticEngine(stream=None)
    source = load_skill_folder(path)
    diag.sources.add(source.display_name, source.text)
    front = parse_frontmatter(source.text, source.display_name, source.folder_name, diag)
    with paused_gc():
        blocks = parse_markdown(front.body, source.display_name, front.body_start_line)
        module = Lowering(source, front, blocks, diag).run()
        # Free the Markdown tree now: when the collector resumes it scans
        # every object allocated during the pause that is still alive.
        del blocks
        problems = verify(module)
    if problems:
        raise SkvmError(problems)
    return module
