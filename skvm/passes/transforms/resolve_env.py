"""The ``resolve-env{env=host|<file>}`` transform: bind requirements to an environment.

The environment is probed from the host (``env=host``, the default when
neither the option nor ``--env`` names a file) or read from a JSON file (see
:mod:`skvm.environment`). Then:

* every ``env.if`` whose condition the environment decides (OS,
  architecture, a binary's or variable's presence, the Python version) is
  folded: the chosen branch's ops are inlined in its place, and when the
  ``env.if`` has results, their uses are replaced by the values the branch's
  ``ctl.yield`` passes (SSA names are unique per procedure, so inlined
  definitions cannot clash); undecidable ones stay;
* every ``env.require`` becomes an ``env.bind``: ``present`` (with
  ``found_version`` or ``path``), ``missing`` (with an ``install`` plan: one
  command per package manager the environment has, most preferred first;
  ``found_version`` when the installed version violates the constraint) or
  ``unknown`` (the description does not say; an install plan is still given).
  Version constraints are checked with ``packaging.specifiers``; a bare
  version ``4.2`` means ``>=4.2``.

It never installs anything. :func:`setup_plan` turns the bound module into
idempotent shell lines (check, then install) for the back ends' setup script.
Remarks (``-Rpass=resolve-env``) say what was found and folded; counters go to
``ctx.extra["stats"]``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

import attrs

from skvm.diagnostics import SkvmError
from skvm.environment import (
    Environment,
    load_environment,
    normalize_arch,
    normalize_os,
    probe_host,
)
from skvm.ir.attributes import DictAttr, Keyword, ValueRef
from skvm.ir.operation import Module, Op, Region, replace_ops_deep
from skvm.passes.analysis.env_usage import needed_binaries, requirement_binary
from skvm.passes.base import ModulePass, PassContext, PassResult
from skvm.passes.irutil import value_uses

PASS = "resolve-env"

#: Install command per package manager; ``{spec}`` is already shell-quoted.
INSTALL_TEMPLATES: dict[str, str] = {
    "pip": "python -m pip install {spec}",
    "uv": "uv pip install {spec}",
    "npm": "npm install -g {spec}",
    "apt": "apt-get install -y {spec}",
    "dnf": "dnf install -y {spec}",
    "brew": "brew install {spec}",
    "cargo": "cargo install {spec}",
    "go": "go install {spec}",
    "gem": "gem install {spec}",
    "winget": "winget install --exact --id {spec}",
    "choco": "choco install -y {spec}",
}

#: Requirement manager -> the package managers that can satisfy it, preferred first.
PLANNERS: dict[str, tuple[str, ...]] = {
    "pip": ("pip", "uv"),
    "npm": ("npm",),
    "bin": ("apt", "dnf", "brew", "winget", "choco"),
    "apt": ("apt", "dnf", "brew"),
    "brew": ("brew", "apt", "dnf"),
    "cargo": ("cargo",),
    "go": ("go",),
    "gem": ("gem",),
    "node": ("apt", "dnf", "brew", "winget", "choco"),
    "python": ("uv", "brew", "apt", "dnf", "winget"),
}

#: System package providing a binary, per package manager (default: the binary's name).
BIN_PACKAGES: dict[str, dict[str, str]] = {
    "pdftotext": {"apt": "poppler-utils", "dnf": "poppler-utils", "brew": "poppler"},
    "pdftoppm": {"apt": "poppler-utils", "dnf": "poppler-utils", "brew": "poppler"},
    "pdfinfo": {"apt": "poppler-utils", "dnf": "poppler-utils", "brew": "poppler"},
    "magick": {"apt": "imagemagick", "dnf": "ImageMagick", "brew": "imagemagick"},
    "convert": {"apt": "imagemagick", "dnf": "ImageMagick", "brew": "imagemagick"},
    "rg": {"apt": "ripgrep", "dnf": "ripgrep", "brew": "ripgrep", "winget": "BurntSushi.ripgrep.MSVC"},
    "tesseract": {"apt": "tesseract-ocr", "dnf": "tesseract", "brew": "tesseract"},
    "soffice": {"apt": "libreoffice", "dnf": "libreoffice", "brew": "libreoffice"},
    "libreoffice": {"apt": "libreoffice", "dnf": "libreoffice", "brew": "libreoffice"},
    "node": {"apt": "nodejs", "dnf": "nodejs", "brew": "node", "winget": "OpenJS.NodeJS", "choco": "nodejs"},
    "gh": {"winget": "GitHub.cli"},
    "psql": {"apt": "postgresql-client", "dnf": "postgresql", "brew": "libpq"},
    "python": {"apt": "python3", "dnf": "python3", "brew": "python", "winget": "Python.Python.3.12"},
    "python3": {"apt": "python3", "dnf": "python3", "brew": "python", "winget": "Python.Python.3.12"},
    "git": {"winget": "Git.Git"},
    "ffmpeg": {"winget": "Gyan.FFmpeg"},
    "jq": {"winget": "jqlang.jq"},
    "pandoc": {"winget": "JohnMacFarlane.Pandoc"},
    "sqlite3": {"brew": "sqlite", "winget": "SQLite.SQLite"},
}

#: How a shell checks that what an install command installs is there already.
_SYSTEM_CHECKS: dict[str, str] = {
    "apt-get": "dpkg -s {pkg} >/dev/null 2>&1",
    "dnf": "rpm -q {pkg} >/dev/null 2>&1",
    "brew": "brew list {pkg} >/dev/null 2>&1",
    "winget": "winget list --exact --id {pkg} >/dev/null 2>&1",
    "choco": "choco list --exact {pkg} >/dev/null 2>&1",
}


# -- small helpers -----------------------------------------------------------------


def _kw(value: Any) -> str:
    return value.name if isinstance(value, Keyword) else str(value or "")


def _specifier(text: str | None):
    """A SpecifierSet for ``text`` (bare ``4.2`` means ``>=4.2``), None if absent; raises ValueError."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if not text:
        return None
    text = text.strip()
    if text[:1].isdigit():
        text = ">=" + text
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise ValueError(text) from None


def _satisfies(found: str, spec) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return spec.contains(Version(found), prereleases=True)
    except InvalidVersion:
        return False


@attrs.frozen
class Resolution:
    """The outcome for one requirement."""

    status: str
    found_version: str | None = None
    path: str | None = None
    install: tuple[str, ...] = ()
    #: Why, for the remark.
    detail: str = ""
    #: A warning to emit at the requirement (bad input, impossible requirement).
    warning: str | None = None


def _system_package(binary: str, manager: str, op: Op) -> str:
    explicit = op.attr(manager if manager != "dnf" else "apt")
    if isinstance(explicit, str) and manager in ("apt", "brew", "dnf"):
        return explicit
    return BIN_PACKAGES.get(binary, {}).get(manager, binary)


def install_plan(op: Op, env: Environment) -> tuple[str, ...]:
    """Install commands for requirement ``op`` with the managers ``env`` has (preferred first)."""
    manager = _kw(op.attr("manager"))
    package = str(op.attr("package", ""))
    version = op.attr("version")
    plans: list[str] = []
    for pm in PLANNERS.get(manager, ()):
        if not env.has_manager(pm):
            continue
        if manager == "pip":
            spec = package + (str(_safe_spec_text(version)) if version else "")
        elif manager == "npm":
            spec = package + (f"@{version}" if version else "")
        elif manager == "go":
            spec = package if "@" in package else f"{package}@{version or 'latest'}"
        elif manager == "cargo":
            spec = package + (f" --version {shlex.quote(version)}" if version else "")
            plans.append(INSTALL_TEMPLATES[pm].format(spec=shlex.quote(package) + spec[len(package):]))
            continue
        elif manager == "python":
            wanted = _python_install_version(op)
            spec = {"uv": f"python install {wanted}" if wanted else "python install"}.get(pm)
            if spec is not None:
                plans.append(f"uv {spec}")
                continue
            spec = _system_package("python3", pm, op)
        elif manager in ("apt", "brew"):
            spec = package if pm == manager else (
                op.attr(pm) if isinstance(op.attr(pm), str) else
                BIN_PACKAGES.get(requirement_binary(op), {}).get(pm, package)
            )
        elif manager == "node":
            spec = _system_package("node", pm, op)
        else:  # bin
            spec = _system_package(package, pm, op)
        plans.append(INSTALL_TEMPLATES[pm].format(spec=shlex.quote(spec)))
    return tuple(dict.fromkeys(plans))


def _safe_spec_text(version: str) -> str:
    try:
        spec = _specifier(version)
    except ValueError:
        return ""
    return str(spec) if spec is not None else ""


def _python_install_version(op: Op) -> str:
    text = _python_spec_text(op)
    for part in text.split(","):
        part = part.strip().lstrip("=<>~!")
        if part[:1].isdigit():
            return part.rstrip(".*")
    return ""


def _python_spec_text(op: Op) -> str:
    package = str(op.attr("package", ""))
    if package[:1].isdigit() or package[:1] in "<>=~!":
        return package
    return str(op.attr("version", ""))


# -- per-manager resolution (a table of small functions) -------------------------------


def _version_check(name: str, found: str | None, op: Op) -> Resolution:
    """Present/missing for an installed ``found`` version against the op's constraint."""
    try:
        spec = _specifier(op.attr("version"))
    except ValueError as exc:
        return Resolution(
            "present" if found is not None else "missing",
            found_version=found,
            detail=f"'{name}' {found or 'is not installed'} (constraint not checked)",
            warning=f"resolve-env: invalid version constraint '{exc}' for '{name}'",
        )
    if found is None:
        return Resolution("missing", detail=f"'{name}' is not installed")
    if spec is not None and not _satisfies(found, spec):
        return Resolution(
            "missing", found_version=found, detail=f"'{name}' {found} does not satisfy '{spec}'"
        )
    return Resolution("present", found_version=found, detail=f"'{name}' {found}")


def _resolve_pip(op: Op, env: Environment) -> Resolution:
    package = str(op.attr("package", ""))
    if env.python_packages is None:
        return Resolution("unknown", detail="the environment does not list Python packages")
    return _version_check(package, env.python_package(package), op)


def _resolve_npm(op: Op, env: Environment) -> Resolution:
    package = str(op.attr("package", ""))
    if env.npm_packages is None:
        return Resolution("unknown", detail="the environment does not list npm packages")
    found = env.npm_package(package)
    if found is None:
        return Resolution("missing", detail=f"'{package}' is not installed globally")
    try:
        spec = _specifier(op.attr("version"))
    except ValueError:
        # npm ranges (^1.2, ~3) are not PEP 440: report what is there.
        return Resolution("present", found_version=found, detail=f"'{package}' {found} (npm range not checked)")
    if spec is not None and not _satisfies(found, spec):
        return Resolution("missing", found_version=found, detail=f"'{package}' {found} does not satisfy '{spec}'")
    return Resolution("present", found_version=found, detail=f"'{package}' {found}")


def _resolve_binary(binary: str, env: Environment) -> Resolution:
    present = env.has_binary(binary)
    if present is None:
        return Resolution("unknown", detail="the environment does not list binaries")
    if present:
        return Resolution("present", path=env.binary(binary), detail=f"'{binary}' at {env.binary(binary)}")
    return Resolution("missing", detail=f"'{binary}' is not on PATH")


def _resolve_bin(op: Op, env: Environment) -> Resolution:
    return _resolve_binary(str(op.attr("package", "")), env)


def _resolve_system(op: Op, env: Environment) -> Resolution:
    package = str(op.attr("package", ""))
    binary = requirement_binary(op)
    found = _resolve_binary(binary, env)
    if found.status == "missing" and (package.startswith("lib") or package.endswith("-dev")):
        # A library has no binary to look for: absence of one proves nothing.
        return Resolution("unknown", detail=f"'{package}' is a library; cannot tell without the package database")
    return found


def _resolve_python(op: Op, env: Environment) -> Resolution:
    if env.python is None:
        return Resolution("unknown", detail="the environment does not say its Python version")
    text = _python_spec_text(op)
    try:
        spec = _specifier(text)
    except ValueError:
        return Resolution(
            "present",
            found_version=env.python,
            detail=f"Python {env.python} (constraint not checked)",
            warning=f"resolve-env: invalid Python version constraint '{text}'",
        )
    if spec is not None and not _satisfies(env.python, spec):
        return Resolution("missing", found_version=env.python, detail=f"Python {env.python} does not satisfy '{spec}'")
    return Resolution("present", found_version=env.python, detail=f"Python {env.python}")


def _resolve_node(op: Op, env: Environment) -> Resolution:
    result = _resolve_binary("node", env)
    if result.status == "present" and op.has_attr("version"):
        return attrs.evolve(result, detail=result.detail + " (version not checked: no process is run)")
    return result


def _resolve_os(op: Op, env: Environment) -> Resolution:
    wanted = [normalize_os(p) for p in str(op.attr("package", "")).replace("|", ",").split(",") if p.strip()]
    if env.os in wanted:
        return Resolution("present", detail=f"os {env.os}")
    return Resolution(
        "missing",
        detail=f"the environment is {env.os}",
        warning=f"resolve-env: the skill requires os {', '.join(wanted)} but the environment is {env.os}",
    )


def _resolve_env_var(op: Op, env: Environment) -> Resolution:
    name = str(op.attr("package", ""))
    present = env.has_env_var(name)
    if present is None:
        return Resolution("unknown", detail="the environment does not list variables")
    return Resolution("present" if present else "missing", detail=f"${name} is {'set' if present else 'not set'}")


def _resolve_service(op: Op, env: Environment) -> Resolution:
    return Resolution("unknown", detail="services cannot be checked without running anything")


RESOLVERS: dict[str, Callable[[Op, Environment], Resolution]] = {
    "pip": _resolve_pip,
    "npm": _resolve_npm,
    "bin": _resolve_bin,
    "apt": _resolve_system,
    "brew": _resolve_system,
    "cargo": _resolve_system,
    "go": _resolve_system,
    "gem": _resolve_system,
    "python": _resolve_python,
    "node": _resolve_node,
    "os": _resolve_os,
    "env": _resolve_env_var,
    "service": _resolve_service,
}


def resolve_requirement(op: Op, env: Environment) -> tuple[Op, Resolution]:
    """The ``env.bind`` for one ``env.require`` and how it was decided."""
    manager = _kw(op.attr("manager"))
    result = RESOLVERS.get(manager, _resolve_service)(op, env)
    if manager == "pip" and result.warning is None:
        try:
            _specifier(op.attr("version"))
        except ValueError as exc:
            warning = f"resolve-env: invalid version constraint '{exc}' for '{op.attr('package')}'"
            result = attrs.evolve(result, warning=warning)
    if result.status != "present" and manager not in ("os", "env", "service"):
        result = attrs.evolve(result, install=install_plan(op, env))
    attributes = op.attributes.to_dict()
    attributes["status"] = Keyword(result.status)
    if result.found_version is not None:
        attributes["found_version"] = result.found_version
    if result.path is not None:
        attributes["path"] = result.path
    if result.install:
        attributes["install"] = result.install
    bound = Op.build("env.bind", attributes=attributes, loc=op.loc, pos=op.pos)
    return bound, result


# -- env.if ----------------------------------------------------------------------------


def decide(op: Op, env: Environment) -> bool | None:
    """Whether an ``env.if`` takes its first branch in ``env``; None if undecidable."""
    kind = _kw(op.attr("kind"))
    value = str(op.attr("value", ""))
    answer: bool | None
    if kind == "os":
        answer = env.os in {normalize_os(v) for v in value.replace("|", ",").split(",") if v.strip()}
    elif kind == "arch":
        answer = None if env.arch is None else normalize_arch(value) == env.arch
    elif kind == "bin":
        answer = env.has_binary(value)
    elif kind == "env":
        answer = env.has_env_var(value)
    elif kind == "python":
        if env.python is None:
            return None
        text = value.strip()
        if text[:1].isdigit():
            text = f"=={text}.*" if text.count(".") < 2 else f"=={text}"
        try:
            from packaging.specifiers import SpecifierSet

            answer = _satisfies(env.python, SpecifierSet(text))
        except Exception:
            return None
    else:
        return None
    if answer is None:
        return None
    return not answer if op.has_attr("negate") else answer


def _rename_attr(value: Any, renames: dict[str, str]) -> Any:
    if isinstance(value, ValueRef):
        return ValueRef(renames.get(value.name, value.name))
    if isinstance(value, tuple):
        return tuple(_rename_attr(v, renames) for v in value)
    if isinstance(value, DictAttr):
        return DictAttr(tuple((k, _rename_attr(v, renames)) for k, v in value.items))
    return value


def _rename_op(op: Op, renames: dict[str, str]) -> Op:
    if not any(name in renames for name in value_uses(op)):
        return op
    attributes = DictAttr(tuple((k, _rename_attr(v, renames)) for k, v in op.attributes.items))
    operands = tuple(renames.get(n, n) for n in op.operands)
    return attrs.evolve(op, operands=operands, attributes=attributes)


def _resolve_chains(renames: dict[str, str]) -> dict[str, str]:
    final: dict[str, str] = {}
    for name in renames:
        target = renames[name]
        seen = {name}
        while target in renames and target not in seen:
            seen.add(target)
            target = renames[target]
        final[name] = target
    return final


@attrs.define
class _Folder:
    """Folds decidable env.if ops of one region tree, collecting result renames."""

    env: Environment
    ctx: PassContext
    renames: dict[str, str] = attrs.field(factory=dict)
    folded: int = 0

    def region(self, region: Region) -> Region:
        new_ops: list[Op] = []
        for op in region.ops:
            if op.regions:
                op = op.with_regions([self.region(r) for r in op.regions])
            if op.name != "env.if":
                new_ops.append(op)
                continue
            taken = decide(op, self.env)
            if taken is None:
                new_ops.append(op)
                continue
            index = 0 if taken else 1
            chosen = list(op.regions[index].ops) if index < len(op.regions) else []
            if chosen and chosen[-1].name == "ctl.yield":
                y = chosen.pop()
                if len(y.operands) != len(op.results):
                    raise SkvmError.at(op.location, "env.if branch yields a different number of values than its results")
                for res, val in zip(op.results, y.operands):
                    self.renames[res.name] = val
            elif op.results:
                raise SkvmError.at(op.location, "env.if with results needs a ctl.yield in the branch it takes")
            self.folded += 1
            test = ("not " if op.has_attr("negate") else "") + f"{_kw(op.attr('kind'))} \"{op.attr('value')}\""
            branch = "then" if taken else "else"
            self.ctx.diagnostics.remark(
                PASS,
                f"folded env.if {test}: kept the {branch} branch ({len(chosen)} op{'s' if len(chosen) != 1 else ''})",
                op.location,
            )
            new_ops.extend(chosen)
        return region.with_ops(new_ops)


def fold_env_ifs(module: Module, env: Environment, ctx: PassContext) -> tuple[Module, int]:
    """Fold every decidable env.if of ``module``; return the module and how many were folded."""
    # Module-level env.if ops hold context and requirements, never values.
    top = _Folder(env, ctx)
    procs = {id(op) for op in module.body.ops if op.name == "skill.proc"}
    top_ops: list[Op] = []
    for op in module.body.ops:
        if id(op) in procs or (op.name != "env.if" and not op.regions):
            top_ops.append(op)  # nothing to fold in it
        else:
            top_ops.extend(top.region(Region((op,))).ops)
    total = top.folded
    new_ops: list[Op] = []
    for op in top_ops:
        if op.name == "skill.proc" and op.regions:
            folder = _Folder(env, ctx)
            proc_body = folder.region(op.regions[0])
            if folder.renames:
                renames = _resolve_chains(folder.renames)
                proc_body = replace_ops_deep(proc_body, lambda o: _rename_op(o, renames))
            op = op.with_regions([proc_body])
            total += folder.folded
        new_ops.append(op)
    return module.with_ops(new_ops), total


# -- the pass --------------------------------------------------------------------------


def environment_for(spec: str | None, module: Module, ctx: PassContext | None = None) -> Environment:
    """The environment ``spec`` names: ``host`` (probed, default) or a JSON file."""
    if spec is None or spec == "host":
        return probe_host(sorted(needed_binaries(module)))
    return load_environment(spec, ctx.diagnostics.sources if ctx is not None else None)


def resolve_module(module: Module, env: Environment, ctx: PassContext) -> tuple[Module, dict[str, int]]:
    """Fold env.if ops then bind every env.require; returns the module and counters."""
    counts = {"env-if-folded": 0, "present": 0, "missing": 0, "unknown": 0}
    module, counts["env-if-folded"] = fold_env_ifs(module, env, ctx)

    def bind(op: Op):
        if op.name != "env.require":
            return op
        bound, result = resolve_requirement(op, env)
        counts[result.status] += 1
        what = f"{_kw(op.attr('manager'))} '{op.attr('package')}'"
        message = f"{what} {result.status}: {result.detail}"
        if result.install:
            message += "; install with: " + result.install[0]
            if env.network is False:
                message += " (the environment allows no network)"
        elif result.status == "missing" and _kw(op.attr("manager")) not in ("os", "env"):
            message += "; no package manager of the environment can install it"
        ctx.diagnostics.remark(PASS, message, op.location)
        if result.warning:
            ctx.diagnostics.warning(result.warning, op.location)
        return bound

    new_ops: list[Op] = []
    for op in module.body.ops:
        if op.regions:
            op = op.with_regions([replace_ops_deep(r, bind) for r in op.regions])
        new_ops.append(bind(op))
    return module.with_ops(new_ops), counts


@attrs.frozen
class ResolveEnv(ModulePass):
    """Binds env.require to a probed or described environment and folds env.if."""

    name = "resolve-env"
    summary = "bind env.require to the host or an environment file, fold env.if (installs nothing)"

    #: ``host`` or the path of an environment JSON file (default: ``--env``, else host).
    env: str | None = None

    def run(self, module: Module, am, ctx: PassContext) -> PassResult:
        env = environment_for(self.env or ctx.env, module, ctx)
        new, counts = resolve_module(module, env, ctx)
        ctx.add_stats(counts, prefix=PASS)
        if new is module:
            return self.unchanged(module)
        return self.changed(new)


# -- setup plan ------------------------------------------------------------------------


def _q(text: str) -> str:
    return shlex.quote(text)


def _check_for(op: Op, install: str | None) -> str:
    """A shell test that succeeds when requirement ``op`` is already satisfied."""
    manager = _kw(op.attr("manager"))
    package = str(op.attr("package", ""))
    version = op.attr("version")
    if manager == "pip":
        dist = _q(package)
        spec = _safe_spec_text(version) if version else ""
        if spec:
            code = (
                "import importlib.metadata as m, sys; "
                "from pip._vendor.packaging.specifiers import SpecifierSet as S; "
                f"sys.exit(m.version({package!r}) not in S({spec!r}))"
            )
            return f"python -c {_q(code)} >/dev/null 2>&1"
        return f"python -m pip show {dist} >/dev/null 2>&1"
    if manager == "npm":
        return f"npm ls -g --depth=0 {_q(package)} >/dev/null 2>&1"
    if manager == "gem":
        return f"gem list -i {_q(package)} >/dev/null 2>&1"
    if manager == "env":
        return f'[ -n "${{{package}:-}}" ]'
    if manager == "python":
        spec = _python_spec_text(op)
        code = "import platform, sys"
        if spec:
            code += (
                "; from pip._vendor.packaging.specifiers import SpecifierSet as S; "
                f"sys.exit(platform.python_version() not in S({_safe_spec_text(spec)!r}))"
            )
        return f"python -c {_q(code)} >/dev/null 2>&1"
    if manager in ("apt", "brew") and install:
        head, _, rest = install.partition(" ")
        template = _SYSTEM_CHECKS.get(head)
        if template:
            return template.format(pkg=rest.split()[-1])
    binary = package if manager == "bin" else ("node" if manager == "node" else requirement_binary(op))
    return f"command -v {_q(binary)} >/dev/null 2>&1"


def setup_plan(module: Module) -> list[str]:
    """Idempotent shell lines (check, then install) for every unsatisfied env.bind.

    Present requirements need no line; missing or unknown ones become
    ``<check> || <first install command>``; requirements nothing can install
    print a message instead; an OS requirement the environment does not meet
    becomes a comment. Lines are in module order, without duplicates; no line
    runs ``apt-get update`` or ``sudo``.
    """
    lines: list[str] = []
    for op in module.walk():
        if op.name != "env.bind":
            continue
        status = _kw(op.attr("status"))
        if status == "present":
            continue
        manager = _kw(op.attr("manager"))
        package = str(op.attr("package", ""))
        if manager == "os":
            lines.append(f"# skvm: this skill requires os {package}")
            continue
        install = tuple(op.attr("install", ()))
        check = _check_for(op, install[0] if install else None)
        if manager == "env":
            lines.append(f"{check} || echo {_q(f'skvm: environment variable {package} is not set')} >&2")
        elif install:
            lines.append(f"{check} || {install[0]}")
        else:
            message = f"skvm: {manager} {package} is needed and no package manager here can install it"
            lines.append(f"{check} || echo {_q(message)} >&2")
    return list(dict.fromkeys(lines))
