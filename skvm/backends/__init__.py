"""Back ends: lower a SkIR module to a skill folder for each harness.

``get_backend("codex", source_root=...).emit(module) -> Bundle``; the
registry :data:`BACKENDS` maps target names (``skvm-translate --to=``) to
classes. Conventions per harness are data in :mod:`skvm.backends.conventions`.
"""

from __future__ import annotations

from pathlib import Path

from skvm.backends.agentskills import AgentSkillsBackend
from skvm.backends.base import Backend
from skvm.backends.bundle import Bundle, write_bundle
from skvm.backends.claude_code import ClaudeCodeBackend
from skvm.backends.codex import CodexBackend
from skvm.backends.gemini_cli import GeminiCliBackend
from skvm.backends.hermes import HermesBackend
from skvm.backends.openclaw import OpenClawBackend
from skvm.backends.opencode import OpenCodeBackend
from skvm.backends.vm import VmBackend
from skvm.diagnostics import DiagnosticEngine
from skvm.ir.operation import Module

#: Target name -> back-end class.
BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls
    for cls in (
        AgentSkillsBackend, ClaudeCodeBackend, CodexBackend, GeminiCliBackend,
        OpenCodeBackend, OpenClawBackend, HermesBackend, VmBackend,
    )
}

__all__ = ["BACKENDS", "Backend", "Bundle", "emit", "get_backend", "list_targets", "write_bundle"]


def get_backend(
    target: str, source_root: str | Path | None = None, diagnostics: DiagnosticEngine | None = None
) -> Backend:
    """An instance of the back end for ``target`` (KeyError when unknown)."""
    return BACKENDS[target](source_root=source_root, diagnostics=diagnostics)


def emit(
    module: Module, target: str, source_root: str | Path | None = None,
    diagnostics: DiagnosticEngine | None = None,
) -> Bundle:
    """Emit ``module`` for ``target``."""
    return get_backend(target, source_root, diagnostics).emit(module)


def list_targets() -> list[tuple[str, str]]:
    """(name, summary) of every target, in registry order."""
    return [(name, cls.summary) for name, cls in BACKENDS.items()]
