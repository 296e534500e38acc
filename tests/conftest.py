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


@pytest.fixture(scope="session")
def model_pool():
    """The process's shared model-worker pool (2 workers), started once per test session.

    Starting one costs seconds (its zygote imports litellm), so the runtime and
    CLI tests share it; it is closed when the session ends.
    """
    from skvm.runtime import model_workers

    model_workers.close_shared()
    pool = model_workers.shared(2)
    assert pool.wait_ready(), pool.error
    yield pool
    model_workers.close_shared()
