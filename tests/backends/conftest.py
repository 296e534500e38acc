"""Fixtures of the back-end tests."""

import pytest

from backends._support import MarkdownSnapshot


@pytest.fixture
def md_snapshot(snapshot):
    """A syrupy snapshot writing text ``.md`` files."""
    return snapshot.use_extension(MarkdownSnapshot)
