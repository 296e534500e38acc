"""Find what a skill needs from its environment.

Sources, each a small table-driven extractor returning :class:`Requirement`:

* install commands in shell code and inline code (pip, uv, npm, npx, pnpm,
  yarn, apt, brew, cargo, go install);
* imports in Python code (parsed with :mod:`ast`; the standard library and
  the skill's own modules excluded; import names mapped to distributions);
* ``require`` / ``import`` in JavaScript (Node built-ins and relative paths
  excluded);
* binaries invoked in shell commands (split with :mod:`shlex`; shell
  built-ins and ubiquitous POSIX tools excluded);
* the ``compatibility`` frontmatter field ("Requires git, docker and jq").
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from collections import deque
from collections.abc import Iterable, Iterator

import attrs


@attrs.frozen
class Requirement:
    """One requirement: manager, package, optional version, and the text that implied it."""

    manager: str
    package: str
    version: str | None = None
    evidence: str = ""
    import_name: str | None = None
    offset: int = 0  # character offset of the evidence in the scanned text


#: Import name -> distribution name, where they differ.
IMPORT_TO_DISTRIBUTION: dict[str, str] = {
    "PIL": "Pillow",
    "cv2": "opencv-python",
    "yaml": "PyYAML",
    "bs4": "beautifulsoup4",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "fitz": "PyMuPDF",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "PyJWT",
    "Crypto": "pycryptodome",
    "OpenSSL": "pyOpenSSL",
    "serial": "pyserial",
    "usb": "pyusb",
    "magic": "python-magic",
    "attr": "attrs",
    "google.generativeai": "google-generativeai",
    "googleapiclient": "google-api-python-client",
    "mpl_toolkits": "matplotlib",
    "playwright": "playwright",
    "lxml": "lxml",
    "markdown": "Markdown",
    "pypdf": "pypdf",
    "PyPDF2": "PyPDF2",
    "gi": "PyGObject",
    "win32api": "pywin32",
    "Levenshtein": "python-Levenshtein",
    "zmq": "pyzmq",
    "git": "GitPython",
    "github": "PyGithub",
    "slack_sdk": "slack-sdk",
    "imageio": "imageio",
    "mcp": "mcp",
}

#: Shell words that are not binaries worth requiring.
SHELL_BUILTINS = frozenset(
    [".", ":", "[", "[[", "alias", "bg", "bind", "break", "builtin", "case", "cd", "command", "continue", "declare", "dirs", "disown", "echo", "enable", "eval", "exec", "exit", "export", "false", "fc", "fg", "for", "function", "getopts", "hash", "help", "history", "if", "jobs", "kill", "let", "local", "logout", "popd", "printf", "pushd", "pwd", "read", "readonly", "return", "select", "set", "shift", "shopt", "source", "suspend", "test", "then", "time", "times", "trap", "true", "type", "typeset", "ulimit", "umask", "unalias", "unset", "until", "wait", "while", "do", "done", "fi", "esac", "else", "elif", "sudo", "env", "nohup", "xargs"]
)
#: Tools every POSIX system has; requiring them is noise.
UBIQUITOUS = frozenset(
    ["ls", "cat", "cp", "mv", "rm", "mkdir", "rmdir", "touch", "chmod", "chown", "ln", "grep", "egrep", "fgrep", "sed", "awk", "head", "tail", "sort", "uniq", "wc", "cut", "tr", "tee", "find", "diff", "date", "sleep", "basename", "dirname", "which", "whoami", "uname", "pwd", "stat", "file", "du", "df", "ps", "less", "more", "open", "xdg-open", "clear", "true", "false", "yes", "seq", "expr", "mktemp", "realpath", "readlink"]
)

_INSTALL_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"\b(?:python3?\s+-m\s+)?pip3?\s+install\s+(?P<args>[^\n;&|`]+)"), "pip"),
    (re.compile(r"\buv\s+(?:pip\s+install|add)\s+(?P<args>[^\n;&|`]+)"), "pip"),
    (re.compile(r"\buvx\s+(?P<args>[^\n;&|`]+)"), "pip-run"),
    (re.compile(r"\bpipx\s+(?:install|run)\s+(?P<args>[^\n;&|`]+)"), "pip"),
    (re.compile(r"\bnpm\s+(?:install|i|add)\s+(?P<args>[^\n;&|`]+)"), "npm"),
    (re.compile(r"\bpnpm\s+(?:add|install|i)\s+(?P<args>[^\n;&|`]+)"), "npm"),
    (re.compile(r"\byarn\s+(?:global\s+)?add\s+(?P<args>[^\n;&|`]+)"), "npm"),
    (re.compile(r"\bnpx\s+(?P<args>[^\n;&|`]+)"), "npm-run"),
    (re.compile(r"\bapt(?:-get)?\s+install\s+(?P<args>[^\n;&|`]+)"), "apt"),
    (re.compile(r"\bbrew\s+install\s+(?P<args>[^\n;&|`]+)"), "brew"),
    (re.compile(r"\bcargo\s+install\s+(?P<args>[^\n;&|`]+)"), "cargo"),
    (re.compile(r"\bgo\s+install\s+(?P<args>[^\n;&|`]+)"), "go"),
)

_VERSION_SPLIT = re.compile(r"^(?P<name>[A-Za-z0-9_.\-\[\]@/]+?)(?P<spec>(?:==|>=|<=|~=|!=|>|<).+)?$")
_PLACEHOLDER = re.compile(r"<[A-Za-z][^>]*>|[{}$*]|\.\.\.")


def _package_words(args: str) -> Iterator[tuple[str, int]]:
    """Package-looking words of an install command's arguments, with offsets."""
    position = 0
    for word in args.split():
        offset = args.index(word, position)
        position = offset + len(word)
        bare = word.strip("'\"")
        if not bare or bare.startswith("-") or _PLACEHOLDER.search(bare):
            if bare in ("-r", "--requirement", "-e", "--editable", "-t", "--target"):
                return  # the rest names files or folders, not packages
            continue
        if bare.startswith((".", "/", "~")) or bare.endswith((".txt", ".toml", ".whl", ".tar.gz")):
            continue
        if bare in ("install", "add", "i", "global", "-g"):
            continue
        yield bare, offset


#: A word every match of an install pattern contains ("pnpm" holds "npm").
_INSTALL_WORDS = ("pip", "uv", "npm", "npx", "yarn", "apt", "brew", "cargo", "go")


def install_requirements(text: str) -> list[Requirement]:
    """Requirements named by install commands in ``text``."""
    found: list[Requirement] = []
    # Most texts name no package manager: one substring test each instead of
    # scanning the text once per pattern.
    if not any(word in text for word in _INSTALL_WORDS):
        return found
    for pattern, manager in _INSTALL_PATTERNS:
        for m in pattern.finditer(text):
            evidence = m.group(0).strip()
            args = m.group("args")
            base = m.start("args")
            words = list(_package_words(args))
            if manager in ("npm-run", "pip-run"):
                words = words[:1]  # npx tool args… / uvx tool args…: only the tool
            for word, offset in words:
                if manager in ("npm", "npm-run"):
                    name, _, version = word.rpartition("@") if word.count("@") > (
                        1 if word.startswith("@") else 0
                    ) else (word, "", "")
                    found.append(
                        Requirement("npm", name, version or None, evidence, offset=base + offset)
                    )
                    continue
                if manager == "go":
                    name, _, version = word.partition("@")
                    found.append(Requirement("go", name, version or None, evidence, offset=base + offset))
                    continue
                vm = _VERSION_SPLIT.match(word)
                name = vm.group("name") if vm else word
                spec = vm.group("spec") if vm else None
                real_manager = "pip" if manager == "pip-run" else manager
                found.append(Requirement(real_manager, name, spec, evidence, offset=base + offset))
    return found


_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


#: A line that is one import statement in its plainest form (``import a.b``,
#: ``import a as b``, ``from a.b import c, d``), with the module it names.
_PLAIN_IMPORT_LINE = re.compile(
    r"[ \t]*(?:import[ \t]+(?P<imported>[\w.]+)(?:[ \t]+as[ \t]+\w+)?"
    r"|from[ \t]+(?P<source>[\w.]+)[ \t]+import[ \t]+\w+(?:[ \t]*,[ \t]*\w+)*)[ \t]*"
)


def _only_known_imports(code: str, local: set[str]) -> bool:
    """Whether ``code`` surely imports nothing but standard and ``local`` modules.

    True when every line holding the word ``import`` is a plain import of
    such a module: every import statement has that keyword on some line, so
    the parse could only find those (or nothing, for a syntax error). A
    backslash might join lines into another statement: the parse decides.
    """
    if "\\" in code:
        return False
    for line in code.split("\n"):
        if "import" not in line:
            continue
        m = _PLAIN_IMPORT_LINE.fullmatch(line)
        if m is None:
            return False
        top = (m.group("imported") or m.group("source")).split(".")[0]
        # An empty top is a relative import, which the parse ignores too.
        if top and top not in _STDLIB and top not in local:
            return False
    return True


def python_imports(code: str, local_modules: Iterable[str] = ()) -> list[Requirement]:
    """Third-party distributions imported by Python ``code`` (empty if it does not parse)."""
    if "import" not in code:
        return []  # no import statement to find (nor a parse worth the time)
    local = set(local_modules)
    # Snippets importing only the standard library are common: skip their parse.
    if _only_known_imports(code, local):
        return []
    return _parsed_imports(code, local)


def _parsed_imports(code: str, local: set[str]) -> list[Requirement]:
    """:func:`python_imports` by parsing ``code``."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    seen: dict[str, Requirement] = {}
    lines = code.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for node in _import_statements(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif node.level == 0 and node.module:
            names = [node.module]
        for full in names:
            top = full.split(".")[0]
            if top in _STDLIB or top in local or not top:
                continue
            dist = IMPORT_TO_DISTRIBUTION.get(full) or IMPORT_TO_DISTRIBUTION.get(top) or top
            if dist not in seen:
                line = lines[node.lineno - 1] if 0 < node.lineno <= len(lines) else full
                offset = offsets[node.lineno - 1] + node.col_offset if node.lineno <= len(lines) else 0
                seen[dist] = Requirement("pip", dist, None, line.strip(), top, offset)
    return sorted(seen.values(), key=lambda r: r.offset)


#: The nodes statements nest in (besides statements themselves).
_STATEMENT_HOLDERS = (ast.stmt, ast.excepthandler, ast.match_case)


def _import_statements(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree`` in :func:`ast.walk` order (breadth first).

    Statements only nest in statements, except handlers and match cases, so
    the walk skips every expression: pruning subtrees without statements keeps
    each statement's depth and the order within a depth, hence the order
    ``ast.walk`` gives (which decides the evidence kept for a repeated import).
    """
    queue = deque([tree])
    while queue:
        node = queue.popleft()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                queue.extend(child for child in value if isinstance(child, _STATEMENT_HOLDERS))


_JS_IMPORT = re.compile(
    r"""(?:require\(\s*['"](?P<a>[^'"]+)['"]\s*\)|import\s+(?:[^'";]+?\s+from\s+)?['"](?P<b>[^'"]+)['"])"""
)
_NODE_BUILTINS = frozenset(
    ["assert", "buffer", "child_process", "cluster", "console", "constants", "crypto", "dgram", "dns", "domain", "events", "fs", "http", "http2", "https", "inspector", "module", "net", "os", "path", "perf_hooks", "process", "punycode", "querystring", "readline", "repl", "stream", "string_decoder", "sys", "timers", "tls", "tty", "url", "util", "v8", "vm", "wasi", "worker_threads", "zlib", "test"]
)


def javascript_imports(code: str) -> list[Requirement]:
    """npm packages imported by JavaScript/TypeScript ``code``."""
    seen: dict[str, Requirement] = {}
    for m in _JS_IMPORT.finditer(code):
        spec = m.group("a") or m.group("b")
        if not spec or spec.startswith((".", "/", "node:", "http:", "https:", "npm:", "jsr:")):
            continue
        parts = spec.split("/")
        name = "/".join(parts[:2]) if spec.startswith("@") else parts[0]
        if name in _NODE_BUILTINS or not re.fullmatch(r"@?[a-z0-9][a-z0-9._\-/]*", name):
            continue
        seen.setdefault(name, Requirement("npm", name, None, m.group(0), offset=m.start()))
    return list(seen.values())


_SEGMENT_SPLIT = re.compile(r"\|\||&&|[|;&\n]|\$\(|`")
_PROMPT = re.compile(r"^\$\s+")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_BINARY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: Interpreters are requirements of their own kind, not binaries.
_INTERPRETERS = {"python": "python", "python3": "python", "node": "node"}
#: Package managers: implied by the requirements they install, not listed as binaries.
_PACKAGE_MANAGERS = frozenset(
    ["pip", "pip3", "uv", "uvx", "pipx", "npm", "npx", "pnpm", "yarn", "apt", "apt-get", "brew", "cargo", "go", "gem"]
)


def invoked_binaries(command_text: str) -> list[Requirement]:
    """Binaries a shell snippet invokes (first word of each simple command)."""
    found: dict[str, Requirement] = {}
    position = 0
    for segment in _SEGMENT_SPLIT.split(command_text):
        offset = command_text.find(segment, position)
        position = max(position, offset + len(segment)) if offset >= 0 else position
        stripped = segment.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = _PROMPT.sub("", stripped)  # "$ cmd" prompts
        if any(c in stripped for c in "'\"\\#"):
            try:
                words = shlex.split(stripped, comments=True)
            except ValueError:
                words = stripped.split()
        else:
            words = stripped.split()  # nothing for shlex to interpret: the fast path
        while words and (words[0] in ("sudo", "env", "nohup", "time", "exec", "command")
                         or _ASSIGNMENT.match(words[0]) or words[0].startswith("-")):
            words = words[1:]
        if not words:
            continue
        word = words[0]
        if "/" in word or not _BINARY_NAME.match(word):
            continue
        if word in SHELL_BUILTINS or word in UBIQUITOUS or word in _PACKAGE_MANAGERS:
            continue
        manager = _INTERPRETERS.get(word, "bin")
        name = manager if manager != "bin" else word
        if name not in found:
            found[name] = Requirement(
                manager, name, None, stripped.split("\n")[0][:120], offset=max(offset, 0)
            )
    return list(found.values())


_COMPAT_BINARIES = re.compile(r"\b(?:requires?|needs?|uses?|with)\b(?P<list>[^.\n]*)", re.IGNORECASE)
_COMPAT_PYTHON = re.compile(r"\bPython\s*(?P<v>\d+(?:\.\d+)*)\s*(?P<plus>\+|or\s+(?:later|newer))?", re.IGNORECASE)
_COMPAT_NODE = re.compile(r"\bNode(?:\.js)?\s*(?P<v>\d+(?:\.\d+)*)\s*(?P<plus>\+)?", re.IGNORECASE)
_COMPAT_SKIP = frozenset(
    {"python", "node", "nodejs", "node.js", "access", "the", "internet", "network", "and", "a", "an",
     "or", "to", "internet access", "network access", "access to the internet", "permissions"}
)


def compatibility_requirements(text: str) -> list[Requirement]:
    """Requirements stated in the ``compatibility`` frontmatter field."""
    found: list[Requirement] = []
    for m in _COMPAT_PYTHON.finditer(text):
        version = (">=" if m.group("plus") else "==") + m.group("v") + ("" if m.group("plus") else ".*")
        found.append(Requirement("python", "python", version, m.group(0), offset=m.start()))
    for m in _COMPAT_NODE.finditer(text):
        version = (">=" if m.group("plus") else "") + m.group("v")
        found.append(Requirement("node", "node", version, m.group(0), offset=m.start()))
    for m in _COMPAT_BINARIES.finditer(text):
        for raw in re.split(r",|\band\b|\bor\b", m.group("list")):
            word = raw.strip().strip("`'\"").lower()
            if not word or word in _COMPAT_SKIP or " " in word or not _BINARY_NAME.match(word):
                continue
            if word.startswith(("python", "node")):
                continue
            found.append(Requirement("bin", word, None, m.group(0).strip(), offset=m.start()))
    return found


_SECRET_ENV = re.compile(r"\$\{?([A-Z][A-Z0-9_]*(?:_API_KEY|_TOKEN|_KEY|_SECRET))\}?")


def env_var_requirements(text: str) -> list[Requirement]:
    """Environment variables a skill expects to be set (API keys and tokens)."""
    seen: dict[str, Requirement] = {}
    if "$" not in text:  # every match starts with one; most texts have none
        return []
    for m in _SECRET_ENV.finditer(text):
        seen.setdefault(m.group(1), Requirement("env", m.group(1), None, m.group(0), offset=m.start()))
    return list(seen.values())
