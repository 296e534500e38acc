"""Lowering of deterministic IR to files: setup script, dependency fragments, command scripts.

* ``env.require`` / ``env.bind`` -> an idempotent ``scripts/setup-env.sh``
  that checks each requirement before installing it (``command -v``,
  ``python -m pip show``, ``dpkg -s`` …) and never runs ``apt-get update``
  unless ``SKVM_APT_UPDATE=1`` asks for it; plus ``scripts/requirements.txt``
  and ``scripts/package.json`` fragments for pip and npm packages.
* runs of model-free ``tool.exec`` / ``tool.script`` ops and ``jit.solid``
  argv templates -> shell scripts taking the values they need as arguments.

Every check and install command comes from the :data:`ENV_RULES` table.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Sequence

from skvm.ir.attributes import SymbolRef, UnitAttr, ValueRef
from skvm.ir.operation import Module, Op

#: How a script resource is run, by file extension.
INTERPRETERS: dict[str, str] = {
    ".py": "python3",
    ".sh": "bash",
    ".bash": "bash",
    ".js": "node",
    ".mjs": "node",
    ".cjs": "node",
    ".ts": "npx tsx",
    ".rb": "ruby",
    ".pl": "perl",
}

SETUP_SCRIPT = "scripts/setup-env.sh"
REQUIREMENTS = "scripts/requirements.txt"
PACKAGE_JSON = "scripts/package.json"


def _q(s: str) -> str:
    return shlex.quote(s)


def _pip_spec(pkg: str, version: str) -> str:
    if not version:
        return pkg
    return pkg + (version if version[0] in "<>=!~" else f"=={version}")


# manager -> (check command, install command | None, message when it cannot install).
# ``{p}`` is the quoted package, ``{spec}`` the quoted versioned spec, ``{v}`` the version.
ENV_RULES: dict[str, tuple[str, str | None]] = {
    "pip": ('python3 -m pip show {p} >/dev/null 2>&1', 'python3 -m pip install {spec}'),
    "npm": ('npm ls -g --depth=0 {p} >/dev/null 2>&1', 'npm install -g {spec}'),
    "apt": ('dpkg -s {p} >/dev/null 2>&1', 'apt_install {p}'),
    "brew": ('brew list {p} >/dev/null 2>&1', 'brew install {p}'),
    "cargo": ('cargo install --list 2>/dev/null | grep -q "^"{p}" "', 'cargo install {p}'),
    "go": ('command -v "$(basename {p} | cut -d@ -f1)" >/dev/null 2>&1', 'go install {spec}'),
    "gem": ('gem list -i {p} >/dev/null 2>&1', 'gem install {p}'),
    "bin": ('command -v {p} >/dev/null 2>&1', None),
    "env": ('[ -n "${{{raw}:-}}" ]', None),
    "service": ('command -v {p} >/dev/null 2>&1', None),
    "python": ('python3 -c "import sys; sys.exit(0 if sys.version_info >= tuple(int(x) for x in {pv}.split(\'.\')) else 1)"', None),
    "node": ('command -v node >/dev/null 2>&1', None),
    "os": ('[ "$(uname -s | tr A-Z a-z)" = {pos} ]', None),
}

_OS_UNAME = {"macos": "darwin", "mac": "darwin", "darwin": "darwin", "linux": "linux"}


def _spec_for(manager: str, pkg: str, version: str) -> str:
    if manager == "pip":
        return _q(_pip_spec(pkg, version))
    if manager == "npm":
        return _q(f"{pkg}@{version.lstrip('=')}" if version else pkg)
    if manager == "go":
        return _q(f"{pkg}@{version or 'latest'}")
    return _q(pkg)


def _requirement_lines(op: Op) -> list[str]:
    """Shell lines that check one requirement and install it when possible."""
    manager = op.attr("manager").name
    pkg = op.attr("package")
    version = op.attr("version", "") or ""
    check_t, install_t = ENV_RULES[manager]
    digits = "".join(c for c in (version or pkg) if c.isdigit() or c == ".").strip(".") or "3"
    check = check_t.format(
        p=_q(pkg), raw=pkg if pkg.replace("_", "a").isalnum() else "SKVM_BAD_NAME",
        pv=_q(digits), pos=_q(_OS_UNAME.get(pkg.lower(), pkg.lower())),
    )
    installs: list[str] = []
    plan = op.attr("install", ())
    if plan:
        installs = [str(cmd) for cmd in plan]
    elif install_t is not None:
        installs = [install_t.format(p=_q(pkg), spec=_spec_for(manager, pkg, version))]
    elif manager == "bin":
        if op.has_attr("apt"):
            installs = [f"apt_install {_q(op.attr('apt'))}"]
        if op.has_attr("brew"):
            installs = [f"brew_install {_q(op.attr('brew'))}"] + installs
            if op.has_attr("apt"):
                installs = [f"brew_install {_q(op.attr('brew'))} || apt_install {_q(op.attr('apt'))}"]
    label = f"{manager} {pkg}" + (f" {version}" if version else "")
    optional = op.has_attr("optional")
    lines = [f"# {label}" + (" (optional)" if optional else "")]
    if installs:
        body = " && ".join(installs)
        lines.append(f"if ! {check}; then")
        lines.append(f"  echo {_q('setup-env: installing ' + label)} >&2")
        lines.append(f"  {body} || missing {_q(label)} {'optional' if optional else 'required'}")
        lines.append("fi")
    else:
        lines.append(f"{check} || missing {_q(label)} {'optional' if optional else 'required'}")
    return lines


_SETUP_HEADER = """\
#!/usr/bin/env bash
# Checks what the skill {name} needs and installs only what is missing.
# Safe to run again: every step checks before it installs.
# apt-get update runs only when SKVM_APT_UPDATE=1 is set.
set -u
status=0
missing() {{
  echo "setup-env: missing $1" >&2
  if [ "$2" = required ]; then status=1; fi
}}
apt_install() {{
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  if [ "${{SKVM_APT_UPDATE:-0}}" = 1 ]; then $sudo apt-get update; fi
  $sudo apt-get install -y "$@"
}}
brew_install() {{
  command -v brew >/dev/null 2>&1 || return 1
  brew install "$@"
}}
"""


def env_ops(module: Module) -> list[Op]:
    """Every env.require / env.bind of the module (nested in env.if too), in order."""
    return [op for op in module.walk() if op.name in ("env.require", "env.bind")]


def setup_script(module: Module, name: str) -> str | None:
    """The idempotent setup script, or None when the skill has no requirements."""
    reqs = env_ops(module)
    if not reqs:
        return None
    lines = [_SETUP_HEADER.format(name=name).rstrip("\n")]
    seen: set[tuple[str, str]] = set()
    for op in reqs:
        key = (op.attr("manager").name, op.attr("package"))
        if key in seen:
            continue
        seen.add(key)
        lines.extend(_requirement_lines(op))
    lines.append("exit $status")
    return "\n".join(lines) + "\n"


def requirements_txt(module: Module) -> str | None:
    """A pip requirements fragment for the pip requirements, or None."""
    specs = sorted({
        _pip_spec(op.attr("package"), op.attr("version", "") or "")
        for op in env_ops(module) if op.attr("manager").name == "pip"
    })
    return "\n".join(specs) + "\n" if specs else None


def package_json(module: Module, name: str) -> str | None:
    """A package.json fragment for the npm requirements, or None."""
    deps = {
        op.attr("package"): op.attr("version", "") or "*"
        for op in env_ops(module) if op.attr("manager").name == "npm"
    }
    if not deps:
        return None
    doc = {"name": f"{name}-scripts", "private": True, "dependencies": dict(sorted(deps.items()))}
    return json.dumps(doc, indent=2) + "\n"


# -- commands ----------------------------------------------------------------


def argv_words(
    argv: Sequence, resource_path: Callable[[str], str], value: Callable[[str], str], shell: bool
) -> str:
    """An argv as one command line: strings quoted, @resources as paths, %values via ``value``."""
    if shell and len(argv) == 1 and isinstance(argv[0], str):
        return argv[0]
    words = []
    for item in argv:
        if isinstance(item, SymbolRef):
            words.append(resource_path(item.name))
        elif isinstance(item, ValueRef):
            words.append(value(item.name))
        else:
            words.append(_q(str(item)))
    return " ".join(words)


def interpreter_for(path: str) -> str:
    """How to run a script resource (``python3``, ``bash``, … or "" to run it directly)."""
    for suffix, interp in INTERPRETERS.items():
        if path.endswith(suffix):
            return interp
    return ""


def command_line(op: Op, resource_path: Callable[[str], str], value: Callable[[str], str]) -> str:
    """The command line a tool.exec / tool.script / check.cmd / jit.solid op runs."""
    if op.name == "tool.script":
        path = resource_path(op.attr("script").name)
        interp = interpreter_for(path)
        args = argv_words(op.attr("args", ()), resource_path, value, False)
        return " ".join(w for w in (interp, path, args) if w)
    line = argv_words(op.attr("argv", ()), resource_path, value, isinstance(op.attr("shell"), UnitAttr))
    cwd = op.attr("cwd")
    return f"(cd {_q(cwd)} && {line})" if cwd else line


def value_refs(op: Op) -> list[str]:
    """The %values an op's command line uses, in first-use order."""
    seen: list[str] = []
    for item in tuple(op.attr("argv", ())) + tuple(op.attr("args", ())):
        if isinstance(item, ValueRef) and item.name not in seen:
            seen.append(item.name)
    return seen


_SCRIPT_HEADER = """\
#!/usr/bin/env bash
# {what}
# Run from the work directory; bundled files are found next to this script.
set -euo pipefail
SKILL_DIR="$(cd "$(dirname "${{BASH_SOURCE[0]}}")/.." && pwd)"
"""


def command_script(what: str, ops: Sequence[Op], resources: dict[str, str], params: Sequence[str]) -> str:
    """A script running ``ops``' commands in order; ``params`` become ``$1``, ``$2`` …"""
    position = {name: i + 1 for i, name in enumerate(params)}
    lines = [_SCRIPT_HEADER.format(what=what).rstrip("\n")]
    if params:
        usage = " ".join(f"<{p}>" for p in params)
        lines.append(f'if [ "$#" -lt {len(params)} ]; then echo "usage: $0 {usage}" >&2; exit 2; fi')
    for op in ops:
        line = command_line(
            op,
            lambda sym: '"$SKILL_DIR"/' + _q(resources.get(sym, sym)),
            lambda v: f'"${position[v]}"' if v in position else f'"${{{v}:?}}"',
        )
        lines.append(line)
    return "\n".join(lines) + "\n"
