"""Fixtures for front-end tests: SkIR snapshots stored as readable .skir files."""

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode


class SkirSnapshotExtension(SingleFileSnapshotExtension):
    """Stores a snapshot as one text file with the .skir extension."""

    _write_mode = WriteMode.TEXT
    file_extension = "skir"


@pytest.fixture
def skir_snapshot(snapshot):
    """A syrupy snapshot that writes printed SkIR to a .skir file."""
    return snapshot.use_extension(SkirSnapshotExtension)
