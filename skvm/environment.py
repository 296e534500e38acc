"""Environment descriptions: what a machine offers a skill, probed or read from a file.

An :class:`Environment` says which OS and architecture a skill runs on, the
Python version, the installed Python distributions and global npm packages,
the binaries on ``PATH``, the package managers that may install what is
missing, the *names* of the environment variables that are set (never their
values) and whether the network may be used. ``resolve-env`` binds each
``env.require`` against one.

* :func:`probe_host` inspects the running machine without starting any
  process (``importlib.metadata``, :func:`shutil.which`, :mod:`platform`,
  the npm global ``node_modules`` folders); the result is cached per process.
* :func:`load_environment` reads a JSON file checked against
  ``skvm/schemas/environment.schema.json``; problems are located diagnostics.

A field that is ``None`` is *unknown* (a file that does not mention it); an
empty mapping means *none*. Run ``python -m skvm.environment`` to print the
host's description as JSON (a starting point for an environment file).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from skvm import jsonfile
from skvm.diagnostics import Diagnostic, Location, Severity, SkvmError, SourceManager

SCHEMA_NAME = "environment.schema.json"

#: ``platform.system()`` / ``sys.platform`` spellings -> the schema's OS names.
OS_ALIASES: dict[str, str] = {
    "linux": "linux",
    "darwin": "macos",
    "macos": "macos",
    "osx": "macos",
    "mac": "macos",
    "windows": "windows",
    "win32": "windows",
    "win": "windows",
    "cygwin": "windows",
}

#: ``platform.machine()`` spellings -> normalised architecture names.
ARCH_ALIASES: dict[str, str] = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "x86-64": "x86_64",
    "aarch64": "arm64",
    "armv8": "arm64",
    "i386": "x86",
    "i686": "x86",
}

#: Binaries worth knowing about for any skill (probed on the host).
INTERESTING_BINARIES: tuple[str, ...] = (
    "apt-get", "bash", "brew", "bun", "cargo", "choco", "conda", "convert", "curl", "deno",
    "dnf", "docker", "dpkg", "ffmpeg", "gcc", "gem", "gh", "git", "go", "java", "jq", "libreoffice",
    "magick", "make", "node", "npm", "npx", "pandoc", "pdftoppm", "pdftotext", "pip", "pip3",
    "pipx", "pnpm", "psql", "pwsh", "python", "python3", "qpdf", "rg", "ruby", "rustc", "sh",
    "soffice", "sqlite3", "tar", "tesseract", "unzip", "uv", "wget", "winget", "yarn", "zip",
)

#: Package manager -> the binary whose presence makes it available.
MANAGER_BINARIES: dict[str, str] = {
    "uv": "uv",
    "pipx": "pipx",
    "conda": "conda",
    "npm": "npm",
    "pnpm": "pnpm",
    "yarn": "yarn",
    "apt": "apt-get",
    "dnf": "dnf",
    "brew": "brew",
    "cargo": "cargo",
    "go": "go",
    "gem": "gem",
    "winget": "winget",
    "choco": "choco",
}

#: Set this variable (any value) to make the host description say "no network".
OFFLINE_VARIABLE = "SKVM_OFFLINE"


def normalize_os(name: str) -> str:
    """The schema's OS name for a platform spelling (``Darwin`` -> ``macos``)."""
    return OS_ALIASES.get(name.strip().lower(), name.strip().lower())


def normalize_arch(name: str) -> str:
    """A normalised architecture name (``AMD64`` -> ``x86_64``)."""
    lowered = name.strip().lower()
    return ARCH_ALIASES.get(lowered, lowered)


def canonical_dist_name(name: str) -> str:
    """PEP 503 normalised distribution name (``PyYAML`` -> ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _frozen_map(value: Mapping[str, str] | None) -> dict[str, str] | None:
    return None if value is None else dict(sorted(value.items()))


@attrs.frozen(eq=True, hash=False)
class Environment:
    """A machine description; ``None`` fields are unknown, empty ones mean none."""

    os: str
    arch: str | None = None
    python: str | None = None
    python_packages: dict[str, str] | None = attrs.field(default=None, converter=_frozen_map)
    npm_packages: dict[str, str] | None = attrs.field(default=None, converter=_frozen_map)
    binaries: dict[str, str] | None = attrs.field(default=None, converter=_frozen_map)
    package_managers: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    env_vars: frozenset[str] | None = attrs.field(
        default=None, converter=lambda v: None if v is None else frozenset(v)
    )
    network: bool | None = None
    #: Where it came from: ``host`` or the file name (for remarks, not serialised).
    origin: str = attrs.field(default="host", eq=False)

    # ---- queries (None: the description does not say) -----------------------------
    def binary(self, name: str) -> str | None:
        """The path of binary ``name`` on PATH, or None."""
        return (self.binaries or {}).get(name)

    def has_binary(self, name: str) -> bool | None:
        """Whether ``name`` is on PATH; None when binaries are unknown."""
        if self.binaries is None:
            return None
        return name in self.binaries

    def python_package(self, name: str) -> str | None:
        """The installed version of distribution ``name`` (any spelling), or None."""
        packages = self.python_packages or {}
        return packages.get(canonical_dist_name(name))

    def npm_package(self, name: str) -> str | None:
        """The installed version of global npm package ``name``, or None."""
        return (self.npm_packages or {}).get(name)

    def has_env_var(self, name: str) -> bool | None:
        """Whether variable ``name`` is set; None when unknown."""
        if self.env_vars is None:
            return None
        return name in self.env_vars

    def has_manager(self, name: str) -> bool:
        """Whether package manager ``name`` is available."""
        return name in self.package_managers

    def with_binaries(self, extra: Mapping[str, str]) -> Environment:
        """A copy that also knows ``extra`` binaries (name -> path)."""
        if not extra:
            return self
        merged = dict(self.binaries or {})
        merged.update(extra)
        return attrs.evolve(self, binaries=merged)

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON data valid against the schema (unknown fields are omitted)."""
        data: dict[str, Any] = {"os": self.os}
        optional = {
            "arch": self.arch,
            "python": self.python,
            "python_packages": self.python_packages,
            "npm_packages": self.npm_packages,
            "binaries": self.binaries,
            "package_managers": sorted(self.package_managers) if self.package_managers else None,
            "env_vars": sorted(self.env_vars) if self.env_vars is not None else None,
            "network": self.network,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        return data

    def to_json(self) -> str:
        """Pretty JSON text of :meth:`to_dict` (sorted, deterministic)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


# -- schema and files ---------------------------------------------------------------


def environment_schema() -> dict[str, Any]:
    """The JSON Schema of environment descriptions, as shipped in the package."""
    return jsonfile.load_schema(SCHEMA_NAME)


def _locate(text: str | None, origin: str, path: Iterable[Any]) -> Location:
    """Line:col of the JSON value at ``path`` in ``text`` (the file's start without text)."""
    return jsonfile.locate(text, origin, path) or Location(origin, 1, 1)


def validate_environment(data: Any, origin: str = "<environment>", text: str | None = None) -> list[Diagnostic]:
    """Check environment data against the schema; return located errors."""
    errors = jsonfile.schema_errors(SCHEMA_NAME, data)
    diags = []
    for err in errors:
        message = err.message
        where = tuple(err.path)
        if err.validator == "additionalProperties" and not err.path and isinstance(err.instance, dict):
            known = sorted(environment_schema()["properties"])
            extra = sorted(k for k in err.instance if k not in known)
            message = f"unknown key '{extra[0]}' (known keys: {', '.join(known)})"
            where = (extra[0],)
        elif err.validator == "pattern" and where[:1] == ("env_vars",):
            # Never echo the entry: it may hold a secret value.
            message = "entries must be variable names (NAME), never NAME=value"
        diags.append(
            Diagnostic(
                Severity.ERROR,
                f"invalid environment at {err.json_path}: {message}",
                _locate(text, origin, where),
            )
        )
    return diags


def environment_from_dict(data: Any, origin: str = "<environment>", text: str | None = None) -> Environment:
    """Build an :class:`Environment` from JSON data; raise SkvmError when invalid."""
    diags = validate_environment(data, origin, text)
    if diags:
        raise SkvmError(diags)
    python_packages = data.get("python_packages")
    if python_packages is not None:
        python_packages = {canonical_dist_name(k): v for k, v in python_packages.items()}
    return Environment(
        os=data["os"],
        arch=normalize_arch(data["arch"]) if "arch" in data else None,
        python=data.get("python"),
        python_packages=python_packages,
        npm_packages=data.get("npm_packages"),
        binaries=data.get("binaries"),
        package_managers=tuple(sorted(data.get("package_managers", ()))),
        env_vars=data.get("env_vars"),
        network=data.get("network"),
        origin=origin,
    )


def load_environment(path: str | Path, sources: SourceManager | None = None) -> Environment:
    """Read and validate an environment file; raise SkvmError with located diagnostics.

    When ``sources`` is given the file's text is registered there, so the
    diagnostics quote the offending line.
    """
    origin = str(path)
    data, text = jsonfile.read_json(path, "environment file", origin, sources)
    return environment_from_dict(data, origin, text)


# -- host probing -------------------------------------------------------------------


#: ``name-version.dist-info`` (wheel installs: the version holds no dash).
_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-py[^-]*)?\.(dist|egg)-info$")


def _python_packages() -> dict[str, str]:
    """Installed distributions of the running interpreter.

    Folder names (``pypdf-4.2.0.dist-info``) give name and version without
    parsing every METADATA file, which is ten times faster; entries whose
    name does not say (old egg-info) fall back to ``importlib.metadata``.
    """
    from importlib import metadata

    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if not name.endswith(("-info",)):
                continue
            m = _DIST_INFO.match(name)
            if m is not None:
                # The first distribution on sys.path wins, as for imports.
                found.setdefault(canonical_dist_name(m["name"]), m["version"])
                continue
            try:
                dist = metadata.Distribution.at(os.path.join(entry or ".", name))
                dist_name = dist.metadata.get("Name") if dist.metadata is not None else None
            except Exception:  # a broken install folder says nothing useful
                continue
            if dist_name and dist.version:
                found.setdefault(canonical_dist_name(dist_name), dist.version)
    return found


def _npm_roots(npm_path: str | None) -> list[Path]:
    """Folders holding global npm packages, found without running npm."""
    roots: list[Path] = []
    prefix = os.environ.get("NPM_CONFIG_PREFIX") or os.environ.get("npm_config_prefix")
    if prefix:
        roots += [Path(prefix) / "lib" / "node_modules", Path(prefix) / "node_modules"]
    if npm_path:
        bin_dir = Path(npm_path).resolve().parent
        roots += [bin_dir.parent / "lib" / "node_modules", bin_dir / "node_modules"]
    appdata = os.environ.get("APPDATA")
    if appdata:
        roots.append(Path(appdata) / "npm" / "node_modules")
    return [r for r in dict.fromkeys(roots) if r.is_dir()]


def _npm_packages(npm_path: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for root in _npm_roots(npm_path):
        for entry in sorted(root.iterdir()):
            candidates = sorted(entry.iterdir()) if entry.name.startswith("@") and entry.is_dir() else [entry]
            for pkg in candidates:
                manifest = pkg / "package.json"
                try:
                    data = json.loads(manifest.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(data, dict) and isinstance(data.get("version"), str):
                    found.setdefault(str(data.get("name") or pkg.name), data["version"])
    return found


def _which_all(names: Iterable[str]) -> dict[str, str]:
    found = {}
    for name in names:
        path = _which(name)
        if path:
            found[name] = path
    return found


@functools.lru_cache(maxsize=4096)
def _which(name: str) -> str | None:
    # Only plain command names: a path-like "binary" says nothing about PATH.
    if not name or "/" in name or "\\" in name:
        return None
    return shutil.which(name)


@functools.cache
def _probe_base() -> Environment:
    import importlib.util

    binaries = _which_all(INTERESTING_BINARIES)
    managers = {m for m, b in MANAGER_BINARIES.items() if b in binaries}
    if importlib.util.find_spec("pip") is not None or "pip" in binaries or "pip3" in binaries:
        managers.add("pip")
    return Environment(
        os=normalize_os(platform.system() or sys.platform),
        arch=normalize_arch(platform.machine() or "unknown"),
        python=platform.python_version(),
        python_packages=_python_packages(),
        npm_packages=_npm_packages(binaries.get("npm")),
        binaries=binaries,
        package_managers=tuple(sorted(managers)),
        env_vars=frozenset(os.environ),
        network=OFFLINE_VARIABLE not in os.environ,
        origin="host",
    )


def probe_host(extra_bins: Iterable[str] = ()) -> Environment:
    """Describe the running machine (cached per process); also look up ``extra_bins``.

    Python distributions are those of the interpreter running skvm; binaries
    are the :data:`INTERESTING_BINARIES` plus ``extra_bins`` (typically every
    ``bin`` requirement of the module being resolved). No process is started.
    """
    base = _probe_base()
    missing = [b for b in extra_bins if b not in (base.binaries or {})]
    return base.with_binaries(_which_all(sorted(set(missing))))


def clear_probe_cache() -> None:
    """Forget the cached host description (tests that change PATH use this)."""
    _probe_base.cache_clear()
    _which.cache_clear()


if __name__ == "__main__":  # pragma: no cover - a convenience for writing env files
    sys.stdout.write(probe_host().to_json())
