"""The back-end interface and what every target shares.

A back end is a class with a ``name``, a conventions row
(:class:`~skvm.backends.conventions.Harness`) and ``emit(module) -> Bundle``.
:class:`Backend` does the common work: name and description to the spec and
the harness's budget, frontmatter text, the body (:mod:`skvm.backends.render`),
bundled files copied from ``source_root`` with their hashes checked, the
environment setup script and the manifest. Targets override small hooks
(:meth:`Backend.frontmatter`, :meth:`Backend.extra_files`).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any, ClassVar

from skvm.backends import lowering
from skvm.backends.bundle import Bundle
from skvm.backends.conventions import Harness, harness
from skvm.backends.render import BodyRenderer
from skvm.diagnostics import DiagnosticEngine, Location, SkvmError
from skvm.ir.attributes import DictAttr, to_python
from skvm.ir.operation import Module, Op

NAME_MAX = 64
COMPATIBILITY_MAX = 500
MANIFEST = "skvm-manifest.json"
ELLIPSIS = "…"

# A YAML plain scalar we can write unquoted: starts with a letter or digit, no
# characters YAML gives meaning to, and not a word YAML would read as non-string.
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.,()/+*-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar on one line (JSON-quoted unless plainly safe)."""
    if (
        _PLAIN.match(value)
        and value.lower() not in _YAML_WORDS
        and not value.endswith(" ")
        and not re.fullmatch(r"[0-9.+-eE_]+", value)
    ):
        return value
    return json.dumps(value, ensure_ascii=False)


def normalize_name(name: str) -> str:
    """``name`` made spec-valid: lowercase ``[a-z0-9-]``, single inner hyphens, ≤ 64 chars."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    slug = slug[:NAME_MAX].rstrip("-")
    return slug or "skill"


def trim(text: str, budget: int) -> str:
    """``text`` cut at a word boundary to at most ``budget`` characters (with an ellipsis)."""
    if len(text) <= budget:
        return text
    cut = text[: budget - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space > budget // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + ELLIPSIS


def meta_value(meta: Op | None, key: str, default: Any = None) -> Any:
    """A meta attribute as plain Python data."""
    if meta is None or not meta.has_attr(key):
        return default
    return to_python(meta.attr(key))


def as_metadata_string(value: Any) -> str:
    """A frontmatter ``metadata`` value: strings as is, anything else JSON-encoded."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class Backend:
    """Base of every target: ``Backend(source_root=..., diagnostics=...).emit(module)``.

    Args:
        source_root: the source skill folder, to copy bundled files from.
        diagnostics: where warnings and errors go (a silent engine when None).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self, source_root: str | Path | None = None, diagnostics: DiagnosticEngine | None = None):
        self.source_root = Path(source_root) if source_root is not None else None
        self.diagnostics = diagnostics if diagnostics is not None else DiagnosticEngine(stream=None)
        self.harness: Harness = harness(self.name)

    # -- entry point --------------------------------------------------------------
    def emit(self, module: Module) -> Bundle:
        """Lower ``module`` to this target's skill folder.

        Raises:
            SkvmError: a bundled file does not match its recorded hash, or the
                module cannot be emitted.
        """
        self.module = module
        self.meta = module.meta
        self._errors_before = self.diagnostics.error_count
        self.notes: dict[str, Any] = {"dropped_keys": [], "moved_to_metadata": [], "warnings": [], "original": {}}
        self.skill_name = self.make_name()
        self.description = self.make_description()
        self.remember_original("name", self.skill_name)
        self.remember_original("description", self.description)
        renderer = BodyRenderer(module, self.harness, self.resource_prefix())
        body = self.body(renderer)
        bundle = Bundle(folder=self.skill_name)
        bundle["SKILL.md"] = "---\n" + self.frontmatter() + "---\n\n" + body
        generated = ["SKILL.md"]
        for path, text in self.generated_files(renderer).items():
            bundle[path] = text
            generated.append(path)
        resources = self.copy_resources(bundle, set(generated) | {MANIFEST})
        for path, text in self.extra_files().items():
            bundle[path] = text
            generated.append(path)
        if self.diagnostics.error_count > self._errors_before:
            raise SkvmError([d for d in self.diagnostics.diagnostics[self._errors_before:]
                             if d.severity.value == "error"])
        bundle[MANIFEST] = self.manifest(generated, resources)
        return bundle

    # -- hooks ------------------------------------------------------------------------
    def resource_prefix(self) -> str:
        """Prefix of bundled paths in the prose (e.g. OpenClaw's ``{baseDir}/``)."""
        return ""

    def body(self, renderer: BodyRenderer) -> str:
        """The SKILL.md body."""
        return renderer.render()

    def frontmatter_fields(self) -> dict[str, Any]:
        """Frontmatter key -> value (str, or a dict of str for ``metadata``), in order."""
        meta = self.meta
        keys = self.harness.frontmatter_keys
        fields: dict[str, Any] = {"name": self.skill_name, "description": self.description}
        if "license" in keys and meta_value(meta, "license"):
            fields["license"] = meta_value(meta, "license")
        compat = meta_value(meta, "compatibility")
        if compat and "compatibility" in keys:
            if len(compat) > COMPATIBILITY_MAX:
                self.warn(f"compatibility trimmed to {COMPATIBILITY_MAX} characters")
            fields["compatibility"] = trim(compat, COMPATIBILITY_MAX)
            self.remember_original("compatibility", fields["compatibility"])
        elif compat:
            self.notes["dropped_keys"].append("compatibility")
        metadata = {k: as_metadata_string(v) for k, v in (meta_value(meta, "metadata") or {}).items()}
        for key, value in sorted((meta_value(meta, "extensions") or {}).items()):
            if key in keys and key not in fields:
                fields[key] = value
            elif key in metadata:
                self.warn(f"extension key '{key}' clashes with metadata key '{key}'; dropped")
                self.notes["dropped_keys"].append(key)
            elif "metadata" in keys:
                metadata[key] = as_metadata_string(value)
                self.notes["moved_to_metadata"].append(key)
            else:
                self.notes["dropped_keys"].append(key)
        if metadata and "metadata" in keys:
            fields["metadata"] = dict(sorted(metadata.items()))
        elif metadata:
            self.notes["dropped_keys"].append("metadata")
        tools = meta_value(meta, "allowed_tools") or []
        if tools and "allowed-tools" in keys:
            fields["allowed-tools"] = " ".join(tools)
        elif tools:
            self.notes["dropped_keys"].append("allowed-tools")
        if meta_value(meta, "license") and "license" not in keys:
            self.notes["dropped_keys"].append("license")
        return fields

    def frontmatter(self) -> str:
        """The YAML frontmatter text (without the ``---`` lines)."""
        out: list[str] = []
        for key, value in self.frontmatter_fields().items():
            if isinstance(value, dict) and self.harness.single_line_frontmatter:
                out.append(f"{key}: {json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(',', ':'))}")
            elif isinstance(value, dict):
                out.append(f"{key}:")
                out.extend(f"  {yaml_scalar(k)}: {yaml_scalar(as_metadata_string(v))}" for k, v in value.items())
            elif isinstance(value, bool):
                out.append(f"{key}: {'true' if value else 'false'}")
            elif isinstance(value, (list, tuple)) and not self.harness.single_line_frontmatter:
                out.append(f"{key}:")
                out.extend(f"  - {yaml_scalar(as_metadata_string(v))}" for v in value)
            else:
                out.append(f"{key}: {yaml_scalar(as_metadata_string(value))}")
        return "\n".join(out) + "\n"

    def generated_files(self, renderer: BodyRenderer) -> dict[str, str]:
        """Files lowered from the IR: setup script, dependency fragments, command scripts."""
        files: dict[str, str] = {}
        setup = lowering.setup_script(self.module, self.skill_name)
        if setup is not None:
            files[lowering.SETUP_SCRIPT] = setup
        reqs = lowering.requirements_txt(self.module)
        if reqs is not None:
            files[lowering.REQUIREMENTS] = reqs
        pkg = lowering.package_json(self.module, self.skill_name)
        if pkg is not None:
            files[lowering.PACKAGE_JSON] = pkg
        files.update(renderer.scripts)
        return files

    def extra_files(self) -> dict[str, str]:
        """Target-specific sidecar files (Codex ``agents/openai.yaml`` …)."""
        return {}

    # -- shared steps -----------------------------------------------------------------
    def loc(self) -> Location | None:
        """Where skill-level diagnostics point: the meta op."""
        return self.meta.location if self.meta is not None else None

    def warn(self, message: str, loc: Location | None = None) -> None:
        """Report a warning and record it in the manifest."""
        self.diagnostics.warning(f"{self.name}: {message}", loc or self.loc())
        self.notes["warnings"].append(message)

    def remember_original(self, key: str, written: str) -> None:
        """Record in the manifest a meta value the target changed (the importer restores it)."""
        source = meta_value(self.meta, key)
        if isinstance(source, str) and source != written:
            self.notes["original"][key] = {"from": source, "to": written}

    def make_name(self) -> str:
        """The spec-valid skill name (also the folder name)."""
        raw = meta_value(self.meta, "name") or self.module.sym_name.replace("_", "-")
        name = normalize_name(raw)
        if name != raw:
            self.warn(f"name '{raw}' normalized to '{name}'")
        return name

    def make_description(self) -> str:
        """The description, non-empty and inside the harness's listing budget."""
        desc = " ".join((meta_value(self.meta, "description") or "").split())
        if not desc:
            desc = f"The {self.skill_name} skill."
            self.warn(f"empty description replaced by '{desc}'")
        budget = self.harness.description_budget
        if len(desc) > budget:
            self.warn(f"description is {len(desc)} characters; trimmed to the {budget}-character listing budget")
            desc = trim(desc, budget)
        return desc

    def copy_resources(self, bundle: Bundle, generated: set[str]) -> list[dict[str, Any]]:
        """Copy every ``skill.resource`` from ``source_root``, checking its sha256."""
        records = []
        for res in self.module.resources():
            path = res.attr("path")
            expected = res.attr("sha256")
            record = {"path": path, "kind": to_python(res.attr("kind")), "sha256": expected}
            source = self.source_root / path if self.source_root is not None else None
            if path in generated:
                self.warn(f"bundled file {path} is replaced by a generated file", res.location)
                record["status"] = "replaced"
            elif res.has_attr("missing") or source is None or not source.is_file():
                why = "missing in the source skill" if res.has_attr("missing") or source is not None else "no source folder given"
                self.warn(f"bundled file {path} not copied ({why})", res.location)
                record["status"] = "missing"
            else:
                data = source.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                if expected and digest != expected:
                    self.diagnostics.error(
                        f"{self.name}: bundled file {path} has sha256 {digest[:12]}…, "
                        f"the module records {expected[:12]}…", res.location)
                    record["status"] = "hash-mismatch"
                else:
                    bundle[path] = _text_or_bytes(data)
                    record["status"] = "copied"
                    record["sha256"] = digest
            records.append(record)
        return records

    def manifest(self, generated: list[str], resources: list[dict[str, Any]]) -> str:
        """The manifest: what was generated, copied, missing, dropped, moved."""
        doc = {
            "target": self.name,
            "skill": self.skill_name,
            "generated": generated,
            "resources": resources,
            "dropped_keys": sorted(set(self.notes["dropped_keys"])),
            "moved_to_metadata": sorted(set(self.notes["moved_to_metadata"])),
            "warnings": self.notes["warnings"],
        }
        if self.notes.get("original"):
            doc["original"] = dict(sorted(self.notes["original"].items()))
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _text_or_bytes(data: bytes) -> str | bytes:
    """Keep text files as text (readable snapshots), anything else as bytes."""
    if b"\x00" in data:
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    # Only when decoding is lossless (no \r\n normalisation happens: we keep the bytes' text).
    return text if text.encode("utf-8") == data else data


def dict_attr_to_python(value: DictAttr | None) -> dict[str, Any]:
    """A dictionary attribute as plain data ({} when absent)."""
    return to_python(value) if value is not None else {}
