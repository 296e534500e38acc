"""Shared pytest fixtures (keep this file small: fixtures used by several folders)."""

from __future__ import annotations

import pytest


@pytest.fixture
def register_pass(monkeypatch):
    """Register test pass or analysis classes in the registry tables for one test.

    Usage: ``register_pass(MyPass)`` (a ModulePass) or ``register_pass(MyAnalysis)``;
    the tables are restored afterwards.
    """
    from skvm.passes import registry
    from skvm.passes.base import Analysis

    def add(cls):
        is_analysis = isinstance(cls, type) and issubclass(cls, Analysis)
        table = registry.ANALYSIS_TABLE if is_analysis else registry.PASS_TABLE
        lazy = registry.ANALYSES if is_analysis else registry.PASSES
        monkeypatch.setitem(table, cls.name, f"{cls.__module__}:{cls.__qualname__}")
        monkeypatch.setitem(lazy._loaded, cls.name, cls)
        return cls

    return add
