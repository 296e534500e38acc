"""The ``env-usage`` analysis: every environment requirement and the ops that need it.

For each ``env.require`` / ``env.bind`` (grouped by manager) it lists the ops
that depend on it, found from what each op needs:

* the binaries a command runs: ``argv[0]`` of ``tool.exec``, ``check.cmd``
  and ``jit.solid`` (the first word of every pipeline stage for a shell
  command line), the interpreter of a ``tool.script`` (by extension),
  ``npx <pkg>``;
* the Python modules it imports: ``python -m mod``, ``import`` lines of
  ``python -c`` code and of Python ``ctx.example`` code, and an ``imports``
  attribute (a string or list of strings) a front end may record on any op;
* the environment variables its command line expands (``$NAME``).

It also lists every ``env.if`` (what it tests, how many ops each branch
holds) and the binaries commands run that no requirement declares (common
POSIX utilities excepted). ``resolve-env`` uses :func:`needed_binaries` to
know which binaries to look up on the host.
"""

from __future__ import annotations

import re
import shlex

import attrs

from skvm.environment import canonical_dist_name
from skvm.ir.attributes import Keyword, SymbolRef
from skvm.ir.operation import Module, Op
from skvm.passes.base import Analysis
from skvm.passes.irutil import walk, walk_paths

#: Interpreter binary a bundled script needs, by file extension.
SCRIPT_INTERPRETERS: dict[str, str] = {
    ".py": "python",
    ".sh": "bash",
    ".bash": "bash",
    ".js": "node",
    ".mjs": "node",
    ".cjs": "node",
    ".rb": "ruby",
    ".pl": "perl",
    ".ps1": "pwsh",
}

#: Python import name -> distribution, for imports whose names differ.
IMPORT_TO_DIST: dict[str, str] = {
    "PIL": "pillow",
    "cv2": "opencv-python",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "sklearn": "scikit-learn",
    "fitz": "pymupdf",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "magic": "python-magic",
    "Crypto": "pycryptodome",
    "google.generativeai": "google-generativeai",
}

#: Binary a system package provides when its name differs from the package's.
PACKAGE_BINARIES: dict[str, str] = {
    "poppler-utils": "pdftotext",
    "poppler": "pdftotext",
    "imagemagick": "magick",
    "ripgrep": "rg",
    "tesseract-ocr": "tesseract",
    "nodejs": "node",
    "python3": "python3",
    "libreoffice": "soffice",
    "sqlite": "sqlite3",
    "postgresql-client": "psql",
    "github-cli": "gh",
    "gh": "gh",
    "qpdf": "qpdf",
}

#: Commands every POSIX shell offers: using them needs no requirement.
BASELINE_COMMANDS: frozenset[str] = frozenset(
    [".", ":", "[", "[[", "awk", "basename", "bash", "cat", "cd", "chmod", "command", "cp", "cut", "date", "diff", "dirname", "do", "done", "echo", "elif", "else", "env", "esac", "eval", "exec", "exit", "export", "false", "fi", "find", "for", "grep", "head", "if", "kill", "ln", "ls", "mkdir", "mktemp", "mv", "printf", "pwd", "read", "realpath", "rm", "rmdir", "sed", "set", "sh", "sleep", "sort", "source", "tail", "tee", "test", "then", "time", "touch", "tr", "true", "type", "uniq", "unset", "wc", "which", "while", "xargs", "sudo"]
)

#: Words that prefix a command without being the command.
_COMMAND_PREFIXES = frozenset({"sudo", "env", "exec", "time", "nohup", "command", "xargs"})
_PYTHONS = ("python", "python3")
_IMPORT_LINE = re.compile(r"^\s*(?:from\s+([A-Za-z_][\w.]*)\s+import|import\s+([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*))", re.MULTILINE)
_ENV_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_SHELL_SPLIT = re.compile(r"\|\||&&|[|;&()\n]|\$\(|`")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@attrs.frozen
class Use:
    """One op that needs something from the environment."""

    path: str
    op_name: str
    #: What it needs, e.g. ``argv[0] pdftotext``, ``import pypdf``, ``$API_KEY``.
    how: str


@attrs.frozen
class Requirement:
    """An ``env.require`` or ``env.bind`` and the ops that depend on it."""

    path: str
    op: Op
    manager: str
    package: str
    users: tuple[Use, ...] = ()


@attrs.frozen
class Condition:
    """An ``env.if``: what it tests and the size of each branch."""

    path: str
    op: Op
    kind: str
    value: str
    negate: bool
    branch_ops: tuple[int, ...]


@attrs.frozen
class EnvUsageResult:
    """Requirements (in module order), conditions and undeclared binaries."""

    requirements: tuple[Requirement, ...]
    conditions: tuple[Condition, ...]
    #: binary -> uses, for binaries commands run that no requirement declares.
    undeclared: dict[str, tuple[Use, ...]]

    def by_manager(self) -> dict[str, list[Requirement]]:
        """Requirements grouped by manager (managers sorted)."""
        groups: dict[str, list[Requirement]] = {}
        for req in self.requirements:
            groups.setdefault(req.manager, []).append(req)
        return dict(sorted(groups.items()))


def _keyword(value) -> str:
    return value.name if isinstance(value, Keyword) else str(value or "")


# -- what an op needs ---------------------------------------------------------------


def _imports_in_code(code: str) -> list[str]:
    names: list[str] = []
    for m in _IMPORT_LINE.finditer(code):
        if m.group(1):
            names.append(m.group(1))
        else:
            names.extend(part.strip().split(" ")[0] for part in m.group(2).split(","))
    return names


def _shell_commands(line: str) -> list[str]:
    """The command word of every stage of a shell command line."""
    words: list[str] = []
    for stage in _SHELL_SPLIT.split(line):
        try:
            tokens = shlex.split(stage, comments=True)
        except ValueError:
            tokens = stage.split()
        while tokens and (_ASSIGNMENT.match(tokens[0]) or tokens[0] in _COMMAND_PREFIXES):
            tokens = tokens[1:]
        if tokens:
            words.append(tokens[0])
    return words


def _binary_name(word: str) -> str | None:
    """The PATH name a command word runs (None for ``./x`` and values)."""
    if not word or word.startswith((".", "$", "-")):
        return None
    return word.rsplit("/", 1)[-1] if word.startswith("/") else (None if "/" in word else word)


def op_needs(op: Op, module: Module) -> list[tuple[str, str, str]]:
    """What ``op`` needs: ``(kind, name, how)`` with kind bin, import, npm or env."""
    needs: list[tuple[str, str, str]] = []
    name = op.name
    argv = op.attr("argv") if name in ("tool.exec", "check.cmd", "jit.solid") else None
    if isinstance(argv, tuple) and argv:
        strings = [a for a in argv if isinstance(a, str)]
        if op.has_attr("shell") and strings:
            for word in _shell_commands(strings[0]):
                binary = _binary_name(word)
                if binary:
                    needs.append(("bin", binary, f"runs {binary}"))
            try:
                words = shlex.split(strings[0])
            except ValueError:
                words = strings[0].split()
        else:
            words = list(argv)
            head = argv[0]
            if isinstance(head, str):
                binary = _binary_name(head)
                if binary:
                    needs.append(("bin", binary, f"argv[0] {binary}"))
            elif isinstance(head, SymbolRef):
                needs.extend(_script_needs(head, module))
        for k, word in enumerate(words[:-1]):
            if not isinstance(word, str) or not isinstance(words[k + 1], str):
                continue
            base = _binary_name(word) or ""
            nxt = words[k + 1 + (1 if words[k + 1] in ("-m", "-c") else 0)] if k + 2 < len(words) else None
            if base.startswith(_PYTHONS) and words[k + 1] == "-m" and isinstance(nxt, str):
                needs.append(("import", nxt, f"python -m {nxt}"))
            elif base.startswith(_PYTHONS) and words[k + 1] == "-c" and isinstance(nxt, str):
                needs.extend(("import", mod, f"import {mod}") for mod in _imports_in_code(nxt))
            elif base == "npx" and not words[k + 1].startswith("-"):
                needs.append(("npm", words[k + 1], f"npx {words[k + 1]}"))
        for item in strings:
            needs.extend(("env", var, f"${var}") for var in _ENV_REF.findall(item))
    elif name == "tool.script":
        ref = op.attr("script")
        if isinstance(ref, SymbolRef):
            needs.extend(_script_needs(ref, module))
    elif name == "ctx.example":
        lang = str(op.attr("lang", "")).lower()
        if lang in ("python", "py", "python3"):
            code = op.attr("code", "")
            needs.extend(("import", mod, f"example imports {mod}") for mod in _imports_in_code(code))
    imports = op.attr("imports")
    if isinstance(imports, str):
        imports = (imports,)
    if isinstance(imports, tuple):
        needs.extend(("import", mod, f"import {mod}") for mod in imports if isinstance(mod, str))
    return needs


def _script_needs(ref: SymbolRef, module: Module) -> list[tuple[str, str, str]]:
    target = module.lookup(ref.name)
    path = target.attr("path", "") if target is not None else ""
    for ext, interpreter in SCRIPT_INTERPRETERS.items():
        if isinstance(path, str) and path.endswith(ext):
            return [("bin", interpreter, f"runs @{ref.name} with {interpreter}")]
    return []


def requirement_keys(op: Op) -> list[tuple[str, str]]:
    """The ``(kind, name)`` needs an ``env.require``/``env.bind`` satisfies."""
    manager = _keyword(op.attr("manager"))
    package = str(op.attr("package", ""))
    keys: list[tuple[str, str]] = []
    if manager == "pip":
        dist = canonical_dist_name(package)
        keys.append(("dist", dist))
        if op.has_attr("import_name"):
            keys.append(("import", str(op.attr("import_name"))))
        keys.append(("import", package))
    elif manager == "npm":
        keys += [("npm", package), ("bin", package.rsplit("/", 1)[-1])]
    elif manager in ("bin",):
        keys.append(("bin", package))
    elif manager in ("apt", "brew", "cargo", "go", "gem"):
        keys.append(("bin", requirement_binary(op)))
    elif manager == "python":
        keys += [("bin", b) for b in _PYTHONS]
    elif manager == "node":
        keys.append(("bin", "node"))
    elif manager == "env":
        keys.append(("env", package))
    return keys


def requirement_binary(op: Op) -> str:
    """The binary that shows a system package (apt, brew, cargo, go, gem) is installed."""
    explicit = op.attr("bin")
    if isinstance(explicit, str):
        return explicit
    package = str(op.attr("package", ""))
    base = package.split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if base in ("...", "") and "/" in package:
        base = package.split("@", 1)[0].rstrip("/.").rsplit("/", 1)[-1]
    return PACKAGE_BINARIES.get(base, base)


def needed_binaries(module: Module) -> set[str]:
    """Every binary name resolve-env may ask about: requirements, env.if bin, commands."""
    names: set[str] = set()
    for op in walk(module.body.ops):  # a set: the order of the walk does not matter
        if op.name in ("env.require", "env.bind"):
            names |= {n for k, n in requirement_keys(op) if k == "bin"}
            for alt in ("apt", "brew"):
                if isinstance(op.attr(alt), str):
                    names.add(PACKAGE_BINARIES.get(op.attr(alt), op.attr(alt)))
        elif op.name == "env.if" and _keyword(op.attr("kind")) == "bin":
            names.add(str(op.attr("value", "")))
    return names


def _import_key(module_name: str) -> list[tuple[str, str]]:
    top = module_name.split(".", 1)[0]
    keys = [("import", module_name), ("import", top)]
    for name in (module_name, top):
        if name in IMPORT_TO_DIST:
            keys.append(("dist", IMPORT_TO_DIST[name]))
    keys.append(("dist", canonical_dist_name(top)))
    return keys


def compute_env_usage(module: Module) -> EnvUsageResult:
    """Build the :class:`EnvUsageResult` of ``module`` in one walk plus a join."""
    requirements: list[tuple[str, Op]] = []
    conditions: list[Condition] = []
    needs: list[tuple[str, str, str, str, str]] = []  # path, op name, kind, name, how
    for path, op in walk_paths(module):
        if op.name in ("env.require", "env.bind"):
            requirements.append((path, op))
        elif op.name == "env.if":
            conditions.append(
                Condition(
                    path,
                    op,
                    _keyword(op.attr("kind")),
                    str(op.attr("value", "")),
                    op.has_attr("negate"),
                    tuple(len(r.ops) for r in op.regions),
                )
            )
        for kind, name, how in op_needs(op, module):
            needs.append((path, op.name, kind, name, how))
    index: dict[tuple[str, str], list[int]] = {}
    for i, (_, op) in enumerate(requirements):
        for key in requirement_keys(op):
            index.setdefault(key, []).append(i)
    users: list[list[Use]] = [[] for _ in requirements]
    undeclared: dict[str, list[Use]] = {}
    for path, op_name, kind, name, how in needs:
        keys = _import_key(name) if kind == "import" else [(kind, name)]
        hits: list[int] = []
        for key in keys:
            for i in index.get(key, ()):
                if i not in hits:
                    hits.append(i)
        use = Use(path, op_name, how)
        for i in hits:
            users[i].append(use)
        if not hits and kind == "bin" and name not in BASELINE_COMMANDS:
            undeclared.setdefault(name, []).append(use)
    reqs = tuple(
        Requirement(path, op, _keyword(op.attr("manager")), str(op.attr("package", "")), tuple(users[i]))
        for i, (path, op) in enumerate(requirements)
    )
    return EnvUsageResult(
        reqs, tuple(conditions), {k: tuple(v) for k, v in sorted(undeclared.items())}
    )


class EnvUsageAnalysis(Analysis):
    """Lists requirements by manager with their users, env.if tests and undeclared binaries."""

    name = "env-usage"
    summary = "environment requirements by manager, the ops that need them, env.if tests"

    def run(self, module: Module, am) -> EnvUsageResult:
        return compute_env_usage(module)

    def print(self, result: EnvUsageResult, module: Module) -> str:
        lines: list[str] = []
        for manager, reqs in result.by_manager().items():
            lines.append(f"manager {manager} ({len(reqs)})")
            for req in reqs:
                extra = []
                for key in ("version", "status", "found_version", "path"):
                    value = req.op.attr(key)
                    if value is not None:
                        extra.append(f"{key}={_keyword(value)}")
                suffix = (" " + " ".join(extra)) if extra else ""
                lines.append(f"  {req.path} {req.op.name} \"{req.package}\"{suffix}")
                if not req.users:
                    lines.append("    (no op uses it)")
                for use in req.users:
                    lines.append(f"    used by {use.path} {use.op_name}: {use.how}")
        if result.conditions:
            lines.append(f"env.if ({len(result.conditions)})")
            for cond in result.conditions:
                test = ("not " if cond.negate else "") + f"{cond.kind} \"{cond.value}\""
                sizes = ", ".join(f"{n} op{'s' if n != 1 else ''}" for n in cond.branch_ops)
                lines.append(f"  {cond.path} {test}: {sizes}")
        if result.undeclared:
            lines.append(f"undeclared binaries ({len(result.undeclared)})")
            for binary, uses in result.undeclared.items():
                where = ", ".join(f"{u.path} {u.op_name}" for u in uses)
                lines.append(f"  {binary}: {where}")
        if not lines:
            lines.append("no environment requirements")
        return "\n".join(lines) + "\n"
