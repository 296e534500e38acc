"""What a back end produces: a :class:`Bundle` of files, and its atomic writer.

A bundle is an ordered map of relative POSIX path -> ``str`` or ``bytes``.
It prints as one text stream (``=== path ===`` sections; binary files are
summarized by size and sha256) for FileCheck tests, snapshots and
``skvm-translate --print``; :func:`write_bundle` writes it to a folder so
that a failure never leaves a half-written folder behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from skvm.diagnostics import Diagnostic, Severity, SkvmError

#: Files whose name ends like this are written executable (0755).
EXECUTABLE_SUFFIXES = (".sh",)


def _check_path(path: str) -> str:
    """Reject absolute paths, ``..`` and empty components (bundles stay inside their folder)."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path or str(pure) != path:
        raise SkvmError(Diagnostic(Severity.ERROR, f"bundle path '{path}' must be a plain relative path"))
    return path


class Bundle:
    """An ordered map of relative path -> text or bytes (one emitted skill folder)."""

    def __init__(self, files: dict[str, str | bytes] | None = None, folder: str = ""):
        self.folder = folder
        self._files: dict[str, str | bytes] = {}
        for path, data in (files or {}).items():
            self[path] = data

    # -- mapping -------------------------------------------------------------
    def __setitem__(self, path: str, data: str | bytes) -> None:
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"bundle file {path} must be str or bytes")
        self._files[_check_path(path)] = data

    def __getitem__(self, path: str) -> str | bytes:
        return self._files[path]

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Bundle)
            and self.folder == other.folder
            and list(self._files.items()) == list(other._files.items())
        )

    def items(self):
        """(path, data) pairs in order."""
        return self._files.items()

    def text(self, path: str) -> str:
        """The text of ``path`` (decoding bytes as UTF-8)."""
        data = self._files[path]
        return data if isinstance(data, str) else data.decode("utf-8")

    # -- printing --------------------------------------------------------------
    def to_text(self) -> str:
        """The whole bundle as one text stream of ``=== path ===`` sections."""
        out: list[str] = []
        for path, data in self._files.items():
            out.append(f"=== {path} ===\n")
            if isinstance(data, bytes):
                digest = hashlib.sha256(data).hexdigest()
                out.append(f"<binary: {len(data)} bytes, sha256 {digest}>\n")
            else:
                out.append(data if data.endswith("\n") or not data else data + "\n")
        return "".join(out)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def write_bundle(bundle: Bundle, dest: str | Path, force: bool = False) -> Path:
    """Write ``bundle`` as the folder ``dest``, atomically.

    Files go to a temporary folder next to ``dest`` which is renamed into
    place only when everything was written. An existing non-empty ``dest`` is
    refused unless ``force``; then it is replaced as a whole (the old folder
    is removed only after the new one is complete).

    Raises:
        SkvmError: when ``dest`` exists and is not an empty folder (without
            ``force``), is a file, or cannot be written.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise SkvmError(Diagnostic(Severity.ERROR, f"{dest} exists and is not a folder"))
    if dest.exists() and not _is_empty_dir(dest) and not force:
        raise SkvmError(
            Diagnostic(Severity.ERROR, f"{dest} is not empty; use --force to replace it")
        )
    parent = dest.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=parent))
    except OSError as exc:
        raise SkvmError(Diagnostic(Severity.ERROR, f"cannot write {dest}: {exc.strerror}")) from None
    old: Path | None = None
    try:
        for rel, data in bundle.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                target.write_bytes(data)
            else:
                target.write_bytes(data.encode("utf-8"))
            if rel.endswith(EXECUTABLE_SUFFIXES) or (isinstance(data, str) and data.startswith("#!")):
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.chmod(0o755)
        if dest.exists():
            # Move the old folder aside first so the rename below cannot fail on a
            # non-empty target; it is deleted only once the new folder is in place.
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=parent))
            os.replace(dest, old / "x")
        os.replace(tmp, dest)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "x").exists() and not dest.exists():
            os.replace(old / "x", dest)  # put the user's folder back
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError):
            raise SkvmError(
                Diagnostic(Severity.ERROR, f"cannot write {dest}: {exc.strerror or exc}")
            ) from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest
