"""Read a skill folder: its SKILL.md text and an inventory of bundled files.

``load_skill_folder`` accepts a folder or a path to its ``SKILL.md`` (or
lowercase ``skill.md``). SKILL.md is checked before it is read (a regular
file of at most :data:`MAX_SKILL_MD_BYTES`), then decoded as UTF-8: a BOM is
stripped, CRLF and lone CR become LF (each still one line, so line numbers
match the file). Every problem is an :class:`SkvmError` with a located
diagnostic; nothing is printed here.

Bundled files are every other file under the folder, walked without following
symlinks (a link is listed as a file if it points to a regular file; a link
loop, or a directory link back into its own ancestors, is an error), minus
:data:`EXCLUDED_DIRS` and :data:`EXCLUDED_FILES`. Each gets a kind, decided by
the first matching rule:

1. :data:`KIND_BY_NAME` on the file name (``LICENSE*``, dependency manifests)
   -> ``asset``;
2. a dot file (``.gitignore``, ``.env``) -> ``other``;
3. :data:`KIND_BY_DIR` on the top-level directory (``scripts/`` -> script,
   ``references/`` -> reference, ``assets/``/``templates/`` -> asset);
4. :data:`KIND_BY_EXTENSION` (code -> script, prose -> reference);
5. no extension and a ``#!`` line or an executable bit -> ``script``;
6. anything else (images, fonts, JSON, archives...) -> ``asset``.

The shared test corpus stores a skill as ``SKILL.md`` + ``files.txt`` (the
other files' paths) + ``SOURCE.txt`` (provenance). When ``SOURCE.txt`` is
present, that layout is assumed: the files listed in ``files.txt`` become
bundle entries that exist but are not available (no size, no hash), the two
manifest files are not bundle entries, and the folder name for the name check
is taken from the ``path:`` line of ``SOURCE.txt``.

A folder written by a back end holds ``skvm-manifest.json``
(:data:`EXPORT_MANIFEST`). It is not a bundle entry, nor are the files its
``generated`` list names (SKILL.md, the setup script, dependency fragments,
command scripts: they are lowered from the IR, not bundled). Its
``resources`` entries that were not copied (``missing``, ``hash-mismatch``)
come back as listed-but-unavailable entries, like the corpus layout; its
``moved_to_metadata`` keys and ``original`` meta values are kept on
:attr:`SkillSource.export` for the lowering to restore. A manifest that is
not valid JSON of that shape is an ordinary bundled file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath

import attrs

from skvm.diagnostics import Location, SkvmError

MAX_SKILL_MD_BYTES = 10 * 1024 * 1024
MAX_BUNDLE_FILES = 10_000
SKILL_MD_NAMES = ("SKILL.md", "skill.md")
EXCLUDED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"})
EXCLUDED_FILES = frozenset({".DS_Store", "Thumbs.db"})
CORPUS_MANIFEST = "files.txt"
CORPUS_SOURCE = "SOURCE.txt"
EXPORT_MANIFEST = "skvm-manifest.json"
#: Resource statuses of an export manifest whose file is not in the folder.
NOT_COPIED = frozenset({"missing", "hash-mismatch"})
BUNDLE_KINDS = frozenset({"script", "reference", "asset", "other"})

# File-name prefixes (case-insensitive) and exact names -> kind.
KIND_BY_NAME: dict[str, str] = {
    "license": "asset",
    "licence": "asset",
    "copying": "asset",
    "notice": "asset",
    "requirements": "asset",
    "package.json": "asset",
    "package-lock.json": "asset",
    "pyproject.toml": "asset",
    "cargo.toml": "asset",
    "go.mod": "asset",
    "gemfile": "asset",
}
KIND_BY_DIR: dict[str, str] = {
    "scripts": "script",
    "bin": "script",
    "references": "reference",
    "reference": "reference",
    "docs": "reference",
    "assets": "asset",
    "templates": "asset",
    "static": "asset",
}
KIND_BY_EXTENSION: dict[str, str] = {
    **dict.fromkeys(
        [
            ".py",
            ".sh",
            ".bash",
            ".zsh",
            ".js",
            ".mjs",
            ".cjs",
            ".ts",
            ".rb",
            ".pl",
            ".ps1",
            ".bat",
            ".cmd",
            ".go",
            ".rs",
            ".lua",
            ".php",
            ".r",
        ],
        "script",
    ),
    **dict.fromkeys([".md", ".markdown", ".txt", ".rst", ".adoc", ".org"], "reference"),
}
_KIND_NAME_PREFIXES = tuple(KIND_BY_NAME)
_SNIFF_BYTES = 8192


@attrs.frozen(order=True)
class BundledFile:
    """One file of the skill folder other than SKILL.md."""

    rel_path: str  # POSIX, relative to the skill root
    size: int | None  # None: listed in a corpus manifest, not available
    sha256: str | None
    kind: str  # "script" | "reference" | "asset" | "other"
    is_text: bool | None  # None when unknown (not available)

    @property
    def available(self) -> bool:
        """Whether the file's contents were read (not just listed)."""
        return self.sha256 is not None


@attrs.frozen
class ExportManifest:
    """What a back end's ``skvm-manifest.json`` tells the importer."""

    target: str
    generated: tuple[str, ...]
    moved_to_metadata: tuple[str, ...]
    # (key, value the source had, value the emitted frontmatter holds), e.g. a normalised name.
    original: tuple[tuple[str, str, str], ...] = ()


@attrs.frozen
class SkillSource:
    """A skill folder as read from disk: SKILL.md text plus bundled files."""

    root: Path
    skill_md_path: Path
    display_name: str  # "SKILL.md" (or "skill.md"): what diagnostics print
    folder_name: str  # for the name == folder check
    text: str  # decoded, BOM stripped, LF line ends
    files: tuple[BundledFile, ...]
    # True for the shared corpus layout (files.txt + SOURCE.txt).
    from_manifest: bool = False
    # The back end's manifest when the folder was emitted by skvm.
    export: ExportManifest | None = None

    def file(self, rel_path: str) -> BundledFile | None:
        """The bundled file at ``rel_path`` (POSIX, relative), or None."""
        for f in self.files:
            if f.rel_path == rel_path:
                return f
        return None


def _posix_parts(rel_path: str) -> tuple[str, ...]:
    """``PurePosixPath(rel_path).parts``, without building a path for the usual case.

    A path with no empty or ``.`` component (``a/b.py``, the form of every
    walked or listed file) is its split; pathlib normalises the others.
    """
    parts = rel_path.split("/")
    if "" in parts or "." in parts:
        return PurePosixPath(rel_path).parts
    return tuple(parts)


def classify_path(rel_path: str, head: bytes = b"", executable: bool = False) -> str:
    """The kind of a bundled file from its path (and first bytes / mode)."""
    parts = _posix_parts(rel_path)
    # PurePosixPath's name and suffix ("" for the root, a dotfile or a trailing dot).
    name = parts[-1] if parts and "/" not in parts[-1] else ""
    dot = name.rfind(".")
    suffix = name[dot:] if 0 < dot < len(name) - 1 else ""
    lower = name.lower()
    # Every name rule needs the name to start with its prefix: one test rules
    # them all out for most files.
    if lower.startswith(_KIND_NAME_PREFIXES):
        for prefix, kind in KIND_BY_NAME.items():
            if (
                lower == prefix
                or lower.startswith(prefix + ".")
                or ("." not in prefix and lower.startswith(prefix))
            ):
                return kind
    if lower.startswith("."):
        return "other"
    if len(parts) > 1 and parts[0].lower() in KIND_BY_DIR:
        return KIND_BY_DIR[parts[0].lower()]
    suffix = suffix.lower()
    if suffix in KIND_BY_EXTENSION:
        return KIND_BY_EXTENSION[suffix]
    if not suffix and (head.startswith(b"#!") or executable):
        return "script"
    return "asset"


def _error(message: str, file: str | None = None, line: int = 1, col: int = 1) -> SkvmError:
    """An error located in ``file`` (or unlocated)."""
    return SkvmError.at(Location(file, line, col) if file else None, message)


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based (line, character column) of byte ``offset`` in UTF-8 ``data``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    prefix = data[line_start:offset]
    if line_start == 0 and prefix.startswith(b"\xef\xbb\xbf"):
        prefix = prefix[3:]
    return line, len(prefix.decode("utf-8", "replace")) + 1


def _find_skill_md(path: Path, shown: str) -> tuple[Path, Path]:
    """Resolve the user's path to (skill root, SKILL.md path)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _error(f"no such skill folder or file: '{shown}'") from None
    except OSError as exc:
        raise _error(f"cannot access '{shown}': {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        for name in SKILL_MD_NAMES:
            candidate = path / name
            if os.path.lexists(candidate):
                return path, candidate
        raise _error(f"no SKILL.md in skill folder '{shown}'")
    if path.name in SKILL_MD_NAMES:
        return path.parent, path
    raise _error(f"'{shown}' is not a skill folder or a SKILL.md file")


def _read_skill_md(skill_md: Path, display: str) -> str:
    """Read and decode SKILL.md, refusing bad input before reading it all."""
    try:
        st = skill_md.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _error(f"{display} is a symlink loop", display) from None
        raise _error(f"cannot read {display}: {exc.strerror or exc}", display) from None
    if not stat.S_ISREG(st.st_mode):
        raise _error(f"{display} is not a regular file", display)
    if st.st_size > MAX_SKILL_MD_BYTES:
        raise _error(
            f"{display} is too large ({st.st_size} bytes; the limit is {MAX_SKILL_MD_BYTES})",
            display,
        )
    try:
        with open(skill_md, "rb") as fh:
            data = fh.read(MAX_SKILL_MD_BYTES + 1)
    except OSError as exc:
        raise _error(f"cannot read {display}: {exc.strerror or exc}", display) from None
    if len(data) > MAX_SKILL_MD_BYTES:
        raise _error(f"{display} is too large (over {MAX_SKILL_MD_BYTES} bytes)", display)
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _position(data, nul)
        raise _error(f"{display} is a binary file (NUL byte)", display, line, col)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(data, exc.start)
        raise _error(
            f"{display} is not valid UTF-8 (byte 0x{data[exc.start]:02x})", display, line, col
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _error(f"{display} is empty", display)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _hash_file(path: str, rel: str) -> tuple[int, str, bool, bytes]:
    """(size, sha256, is_text, first bytes) of a bundled file."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                if not head:
                    head = chunk[:_SNIFF_BYTES]
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise _error(f"cannot read bundled file '{rel}': {exc.strerror or exc}") from None
    is_text = b"\x00" not in head
    if is_text:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the sniff boundary is still text.
            is_text = exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return size, digest.hexdigest(), is_text, head


def _walk(root: Path, skill_md: Path) -> list[BundledFile]:
    """Inventory the folder without following directory symlinks."""
    files: list[BundledFile] = []

    def on_error(exc: OSError) -> None:
        rel = os.path.relpath(exc.filename, root) if exc.filename else "."
        raise _error(f"cannot read folder '{Path(rel).as_posix()}': {exc.strerror or exc}")

    # Plain strings, not Paths: a folder may hold hundreds of files, and
    # building (and comparing) a Path per file cost more than reading it.
    top = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(top, onerror=on_error, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                _check_dir_link(full, root)
        # os.walk joins each directory onto ``top``: the rest is its relative path.
        rel_dir = dirpath[len(top) :].lstrip("/")
        for name in sorted(filenames):
            if name in EXCLUDED_FILES:
                continue
            if not rel_dir and name == skill_md.name:
                continue  # SKILL.md itself (it always sits at the root)
            full = os.path.join(dirpath, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                st = os.stat(full)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise _error(f"symlink loop at '{rel}' in the skill folder") from None
                if os.path.islink(full):
                    continue  # a dangling link names nothing to bundle
                raise _error(f"cannot read bundled file '{rel}': {exc.strerror or exc}") from None
            if stat.S_ISDIR(st.st_mode):
                _check_dir_link(full, root)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # sockets, FIFOs, devices: nothing to bundle (and reading could block)
            size, digest, is_text, head = _hash_file(full, rel)
            kind = classify_path(rel, head, bool(st.st_mode & 0o111))
            files.append(BundledFile(rel, size, digest, kind, is_text))
            if len(files) > MAX_BUNDLE_FILES:
                raise _error(f"skill folder has more than {MAX_BUNDLE_FILES} files")
    return files


def _check_dir_link(link: str, root: Path) -> None:
    """Reject a directory symlink that loops; others are simply not followed."""
    rel = Path(os.path.relpath(link, root)).as_posix()
    try:
        target = os.path.realpath(link, strict=True)
    except OSError:
        raise _error(f"symlink loop at '{rel}' in the skill folder") from None
    parent = os.path.realpath(os.path.dirname(link))
    if parent == target or parent.startswith(target.rstrip(os.sep) + os.sep):
        raise _error(f"symlink loop at '{rel}' in the skill folder (it points to its own ancestor)")


def _manifest(root: Path) -> tuple[list[BundledFile], str | None]:
    """Bundle entries from the corpus files.txt and the folder name from SOURCE.txt."""
    files: list[BundledFile] = []
    folder_name = None
    try:
        source = (root / CORPUS_SOURCE).read_text("utf-8", "replace")
        listed = (root / CORPUS_MANIFEST).read_text("utf-8", "replace")
    except OSError:
        return files, folder_name
    for line in source.splitlines():
        if line.startswith("path:"):
            parent = PurePosixPath(line[5:].strip()).parent.name
            folder_name = parent or None
    seen = set()
    for line in listed.splitlines():
        rel = line.strip()
        if not rel or rel.startswith("/") or rel in seen:
            continue
        parts = _posix_parts(rel)
        if ".." in parts:
            continue
        seen.add(rel)
        # The normalised path (PurePosixPath.as_posix of a relative path).
        files.append(BundledFile("/".join(parts) or ".", None, None, classify_path(rel), None))
    return files, folder_name


def _strings(value) -> tuple[str, ...]:
    """``value`` as a tuple of strings (empty when it is not a list of strings)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ()
    return tuple(value)


def _export_manifest(root: Path) -> tuple[ExportManifest, list[BundledFile]] | None:
    """The export manifest and its not-copied resources, or None when there is none."""
    path = os.path.join(root, EXPORT_MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.loads(fh.read())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("target"), str):
        return None
    original = []
    for key, change in sorted((doc.get("original") or {}).items()) if isinstance(doc.get("original"), dict) else ():
        if isinstance(change, dict) and isinstance(change.get("from"), str) and isinstance(change.get("to"), str):
            original.append((key, change["from"], change["to"]))
    manifest = ExportManifest(
        target=doc["target"],
        generated=_strings(doc.get("generated")),
        moved_to_metadata=_strings(doc.get("moved_to_metadata")),
        original=tuple(original),
    )
    absent = []
    for record in doc.get("resources") or ():
        if not isinstance(record, dict) or record.get("status") not in NOT_COPIED:
            continue
        rel = record.get("path")
        if not isinstance(rel, str) or not rel or PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
            continue
        kind = record.get("kind") if record.get("kind") in BUNDLE_KINDS else classify_path(rel)
        absent.append(BundledFile(PurePosixPath(rel).as_posix(), None, None, kind, None))
    return manifest, absent


def load_skill_folder(path: str | Path) -> SkillSource:
    """Read a skill folder (or its SKILL.md) into a :class:`SkillSource`.

    Raises:
        SkvmError: missing folder or SKILL.md, SKILL.md binary, not UTF-8,
            empty or over 10 MB, a symlink loop, an unreadable file.
    """
    shown = str(path)
    root, skill_md = _find_skill_md(Path(path), shown)
    display = skill_md.name
    text = _read_skill_md(skill_md, display)
    folder_name = os.path.basename(os.path.abspath(root))
    from_manifest = os.path.isfile(os.path.join(root, CORPUS_SOURCE)) and os.path.isfile(
        os.path.join(root, CORPUS_MANIFEST)
    )
    files = _walk(root, skill_md)
    if from_manifest:
        files = [f for f in files if f.rel_path not in (CORPUS_MANIFEST, CORPUS_SOURCE)]
        listed, source_folder = _manifest(root)
        present = {f.rel_path for f in files}
        files += [f for f in listed if f.rel_path not in present]
        folder_name = source_folder or folder_name
    export = _export_manifest(root)
    if export is not None:
        skipped = {EXPORT_MANIFEST, *export[0].generated}
        files = [f for f in files if f.rel_path not in skipped]
        present = {f.rel_path for f in files}
        files += [f for f in export[1] if f.rel_path not in present]
    return SkillSource(
        root=root,
        skill_md_path=skill_md,
        display_name=display,
        folder_name=folder_name,
        text=text,
        files=tuple(sorted(files, key=lambda f: f.rel_path)),
        from_manifest=from_manifest,
        export=export[0] if export is not None else None,
    )
