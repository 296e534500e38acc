"""Rules of the ``secure`` static-security pass, over plain text.

The pass walks the IR and hands each piece of text to :func:`scan` with its
kind:

* ``command`` — a shell command line (``tool.exec`` argv joined, shell blocks);
* ``code`` — a code block or bundled script, with its language;
* ``prose`` — instructions to the model (context, rules, step prompts, HTML
  comments);
* ``frontmatter`` — the skill's frontmatter (``allowed-tools`` and friends).

Each :class:`Rule` has a stable id (``SEC001``...), a kebab-case name, a
severity and the kinds it applies to. Matchers are precompiled regexes or
small functions over the text; everything here is independent of the IR so
that it can be tested, and measured for false positives, on its own.

Severities are chosen so that an ``error`` is something an ordinary useful
skill has no reason to do (pipe an unknown script into a shell, read SSH
keys, send secrets out, hide instructions from the user); ``warning`` marks
what is legitimate in some skills but deserves a look (``--no-verify``,
cron jobs, unquoted arguments); ``note`` is informational (``sudo``).
"""

from __future__ import annotations

import bisect
import fnmatch
import re
import shlex
from typing import Callable, Iterable, Iterator

import attrs

KINDS: frozenset[str] = frozenset({"command", "code", "prose", "frontmatter"})
SEVERITIES: tuple[str, ...] = ("error", "warning", "note")

# Code-block languages that are shell: such blocks are commands.
SHELL_LANGS: frozenset[str] = frozenset(
    {"sh", "bash", "shell", "zsh", "fish", "ksh", "console", "shell-session", "shellsession",
     "terminal", "powershell", "ps1", "pwsh", "ps", "cmd", "bat", "batch"}
)

EXCERPT_MAX = 80

Span = tuple[int, int]
Matcher = Callable[[str], Iterable[Span]]

_I = re.IGNORECASE
_M = re.MULTILINE


@attrs.frozen
class Finding:
    """One rule match: where it is in the scanned text and what it says."""

    rule: str
    severity: str
    message: str
    offset: int
    excerpt: str
    name: str = ""


@attrs.frozen
class Rule:
    """A security rule: identity, severity, applicable kinds and a matcher.

    ``patterns`` are searched in the text; ``check`` is a function yielding
    match spans, for rules that need more than one regex. A rule may have
    both. ``negatable`` rules skip matches in prose that a negation governs
    ("never run ...", "do not read ...").
    """

    id: str
    name: str
    severity: str
    kinds: frozenset[str]
    description: str
    message: str
    patterns: tuple[re.Pattern[str], ...] = ()
    check: Matcher | None = None
    negatable: bool = False
    # Also run on inline code spans and HTML comment bodies inside prose.
    in_prose_code: bool = False
    # Lower-case substrings one of which every match contains: a rule whose
    # triggers are all absent is skipped (substring tests are much cheaper
    # than running the regexes over a long SKILL.md).
    triggers: tuple[str, ...] = ()

    def applies_to(self, lowered: str) -> bool:
        """Whether the rule can match the (lower-cased) text at all."""
        return not self.triggers or any(t in lowered for t in self.triggers)

    def spans(self, text: str) -> Iterator[Span]:
        """Every (start, end) span of ``text`` this rule matches."""
        for pattern in self.patterns:
            for m in pattern.finditer(text):
                yield m.span()
        if self.check is not None:
            yield from self.check(text)


def _re(*alternatives: str, flags: int = 0) -> re.Pattern[str]:
    """Compile alternatives into one pattern."""
    return re.compile("|".join(f"(?:{a})" for a in alternatives), flags)


def _kinds(*names: str) -> frozenset[str]:
    return frozenset(names)


# ---------------------------------------------------------------------------
# Shared vocabularies (data, so that a reader can audit them in one place).
# ---------------------------------------------------------------------------

# Installer scripts from these hosts (URL prefix, no scheme) are piped into a
# shell by their vendors' own instructions: a warning, not an error.
TRUSTED_INSTALLERS: tuple[str, ...] = (
    "astral.sh/",
    "sh.rustup.rs",
    "get.docker.com",
    "deno.land/install.sh",
    "deno.land/x/install",
    "bun.sh/install",
    "install.python-poetry.org",
    "get.pnpm.io/",
    "raw.githubusercontent.com/Homebrew/install/",
    "raw.githubusercontent.com/nvm-sh/nvm/",
    "get.sdkman.io",
    "cli.github.com/",
    "claude.ai/install.sh",
    "ollama.com/install.sh",
    "pyenv.run",
)

# Hosts used to receive stolen data, tunnel out or paste payloads.
EXFIL_HOSTS = (
    r"hooks\.slack\.com/services|discord(?:app)?\.com/api/webhooks|webhook\.site|"
    r"requestbin\.\w+|[\w-]+\.requestcatcher\.com|pipedream\.net|[\w-]+\.m\.pipedream\.net|"
    r"[\w-]+\.ngrok(?:-free)?\.(?:io|app|dev)|ngrok\.io|burpcollaborator\.net|"
    r"[\w-]+\.oast\.(?:fun|me|pro|site|live|online)|interact\.sh|interactsh\.com|"
    r"transfer\.sh|pastebin\.com|paste\.ee|hastebin\.com|0x0\.st|ix\.io|termbin\.com|"
    r"[\w-]+\.onion\b|api\.telegram\.org/bot|[\w-]+\.trycloudflare\.com|canarytokens\.com"
)

# Credential and key material that no ordinary skill reads.
CREDENTIAL_PATHS = (
    r"(?:~|\$HOME|\$\{HOME\}|%USERPROFILE%|/home/[\w.-]+|/root|/Users/[\w.-]+)/\.ssh"
    r"(?:/(?!known_hosts\b|config\b|authorized_keys\b|[\w.-]+\.pub\b)[\w*.-]*)?(?![\w/.-])",
    r"(?<![\w-])id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?(?![\w.-])",
    r"['\"]\.ssh['\"]\s*[,)/]",
    r"\.aws/credentials\b",
    r"['\"]\.aws['\"]\s*[,)/]",
    r"(?<![\w-])\.netrc\b",
    r"\.kube/config\b",
    r"/etc/(?:shadow|gshadow|master\.passwd|sudoers)\b",
    r"\.config/gh/hosts\.ya?ml\b",
    r"\.git-credentials\b",
    r"(?:~|\$HOME|\$\{HOME\}|/home/[\w.-]+|/Users/[\w.-]+)/\.(?:npmrc|pypirc)\b",
    r"\.docker/config\.json\b",
    r"(?:~|\$HOME|\$\{HOME\})/\.gnupg\b",
    r"\bsecurity\s+(?:find-(?:generic|internet)-password|dump-keychain)\b",
    r"\blogin\.keychain(?:-db)?\b",
    r"Library/Keychains\b",
    r"(?:Google/Chrome|Chromium|BraveSoftware|Microsoft/Edge|google-chrome|chromium)"
    r"/[^\n\"']{0,60}(?:Cookies|Login Data|Local State)\b",
    r"\bcookies\.sqlite\b",
    r"\blogins\.json\b",
    r"\bkey[34]\.db\b",
    r"\bwallet\.dat\b",
    r"\.config/solana/id\.json\b",
    r"\.ethereum/keystore\b",
    r"\.config/gcloud/(?:credentials\.db|application_default_credentials\.json|access_tokens\.db)\b",
    r"\.azure/(?:accessTokens\.json|msal_token_cache)",
    r"\.terraform\.d/credentials",
    r"(?:~|\$HOME)/\.(?:bash|zsh)_history\b",
    r"/var/run/secrets/kubernetes\.io\b",
    r"/proc/(?:self|\d+)/environ\b",
)
_CREDENTIAL_RE = _re(*CREDENTIAL_PATHS)
_CREDENTIAL_TRIGGERS = (
    ".ssh", "id_", ".aws", ".netrc", ".kube", "/etc/", "gh/hosts", ".git-credentials", "npmrc",
    "pypirc", ".docker", ".gnupg", "security ", "keychain", "cookies", "login data", "local state",
    "logins.json", "key3", "key4", "wallet", "solana", "ethereum", "gcloud", ".azure",
    "terraform.d", "_history", "secrets/kubernetes", "/environ",
)

# .env files hold secrets; examples and templates do not.
DOTENV = r"(?<![\w.-])\.env(?:\.(?!example\b|sample\b|template\b|dist\b|defaults?\b|schema\b)[\w-]+)?(?![\w.-])"

SECRET_ENV_NAME = r"[A-Z][A-Z0-9_]*(?:TOKEN|KEY|SECRET|PASSWORD|PASSWD|PASS|PWD|CREDENTIALS?|COOKIE|SESSION)[A-Z0-9_]*"

# Expressions whose value is a secret.
SECRET_SOURCES = (
    rf"\$\{{?{SECRET_ENV_NAME}\b\}}?",
    r"(?<![\w.$-])(?:printenv|env)(?=\s*(?:$|[|>);`]))",
    r"\bset\s*\|",
    r"\bos\.environ\b(?!\s*(?:\[|\.get\b|\.setdefault\b|\.copy\(\)\s*[,)]))",
    r"\bdict\(\s*os\.environ\s*\)",
    rf"\bos\.(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*['\"]{SECRET_ENV_NAME}['\"]",
    r"\bprocess\.env\b(?!\s*[.\[])",
    rf"\bprocess\.env(?:\.|\[\s*['\"]){SECRET_ENV_NAME}\b",
    r"\bGet-ChildItem\s+env:",
    r"\$env:" + SECRET_ENV_NAME,
    DOTENV,
    *CREDENTIAL_PATHS,
)
_SECRET_RE = _re(*SECRET_SOURCES, flags=_M)

# Calls and flags that send data somewhere else.
NETWORK_SINKS = (
    r"\bcurl\b[^\n]*?(?:\s-[a-zA-Z]*[dFT]\b|\s--data(?:-\w+)?\b|\s--form\b|\s--upload-file\b|"
    r"\s-X\s*['\"]?(?:POST|PUT|PATCH)\b|\s--json\b)",
    r"\bwget\b[^\n]*--post-(?:data|file)\b",
    r"\bInvoke-(?:WebRequest|RestMethod)\b[^\n]*-(?:Body|InFile)\b",
    r"(?<![\w-])(?:nc|ncat|netcat|socat|telnet)\s+(?:-[a-zA-Z]+\s+)*[\w.-]+\s+\d+",
    r"/dev/(?:tcp|udp)/",
    r"\bscp\b[^\n]*\s[\w.-]+@[\w.-]+:",
    r"\brsync\b[^\n]*\s[\w.-]+@[\w.-]+:",
    r"\b(?:dig|nslookup|host)\s+[^\n]*\$",
    r"\brequests\.(?:post|put|patch)\s*\(",
    r"\bhttpx\.(?:post|put|patch)\s*\(",
    r"\burlopen\s*\([^\n]*\bdata\s*=",
    r"\burllib\.request\.Request\s*\([^\n]*\bdata\s*=",
    r"\.sendall?\s*\(",
    r"\bsmtplib\b",
    r"\bfetch\s*\([^\n]*\bmethod\s*:\s*['\"](?:POST|PUT|PATCH)",
    r"\baxios\.(?:post|put|patch)\s*\(",
    r"\bnavigator\.sendBeacon\b",
    r"https?://(?:" + EXFIL_HOSTS + ")",
)
_SINK_RE = _re(*NETWORK_SINKS, flags=_I | _M)
_HOST_TRIGGERS = (
    "webhook", "slack.com", "discord", "requestbin", "requestcatcher", "pipedream", "ngrok",
    "burpcollaborator", "oast.", "interact", "transfer.sh", "paste", "0x0.st", "ix.io", "termbin",
    ".onion", "telegram", "trycloudflare", "canarytokens",
)
_SINK_TRIGGERS = (
    "curl", "wget", "invoke-", "nc ", "ncat", "netcat", "socat", "telnet", "/dev/tcp", "/dev/udp",
    "scp", "rsync", "dig ", "nslookup", "host ", "requests.", "httpx.", "urlopen", "request(",
    "send", "smtplib", "fetch", "axios", "sendbeacon",
) + _HOST_TRIGGERS

# Where a secret legitimately goes: authentication headers of the API call.
_AUTH_MASK_RE = _re(
    r"(?:-H|--header)\s*(?:\"[^\"\n]*\"|'[^'\n]*'|\S+)",
    r"(?<![\w-])-u\s+\S+",
    r"--oauth2-bearer\s+\S+",
    r"['\"](?:Authorization|Proxy-Authorization|X-[\w-]*(?:Key|Token)|Api-Key|PRIVATE-TOKEN)['\"]\s*:\s*[^,}\n]+",
    r"\bheaders\s*=\s*\{[^}\n]*\}",
    r"\bauth\s*=\s*\([^)\n]*\)",
    r"\bBearer\s+\S+",
    flags=_I,
)

# Words that mark a sentence as negated advice ("never", "do not").
_NEGATION_RE = re.compile(
    r"\b(?:never|not|don't|dont|avoid|refuse|forbid(?:den)?|prohibit(?:ed)?|must\s+not|"
    r"shouldn't|won't|cannot|can't|instead\s+of|rather\s+than)\b",
    _I,
)

_SENTENCE_END_RE = re.compile(r"[.!?](?:\s|$)|\n\s*\n|\n\s*[-*#>]|\n\s*\d+\.")


def _sentence_start(text: str, pos: int) -> int:
    """Index where the sentence holding ``pos`` starts."""
    start = 0
    for m in _SENTENCE_END_RE.finditer(text, max(0, pos - 400), pos):
        start = m.end()
    return start


def _sentence_end(text: str, pos: int) -> int:
    """Index where the sentence holding ``pos`` ends."""
    m = _SENTENCE_END_RE.search(text, pos)
    return m.start() if m else len(text)


def _negated(text: str, pos: int) -> bool:
    """Whether a negation governs the sentence before ``pos``."""
    return _NEGATION_RE.search(text, _sentence_start(text, pos), pos) is not None


def _quoted_phrase(text: str, start: int) -> bool:
    """Whether the match at ``start`` is a quoted example, not an instruction."""
    before = text[max(0, start - 2) : start]
    return any(q in before for q in "\"'`“‘«")


# ---------------------------------------------------------------------------
# Matchers that need more than one regex.
# ---------------------------------------------------------------------------

_URL_RE = re.compile(r"https?://[^\s\"'|;)<>`]+", _I)
_INTERP_SH = r"(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+(?:\w+=\S*\s+)*)?(?:ba|z|k|da|fi)?sh\b"
_INTERP_OTHER = r"(?:sudo\s+)?(?:python[0-9.]*|perl|ruby|node|php)(?=\s*(?:-\s|-$|$|[;&|)]))"
_PIPE_TO_SHELL_RE = re.compile(
    rf"\b(?:curl|wget|fetch)\b(?:[^\n;&]|&(?!&))*?\|\s*(?:{_INTERP_SH}|{_INTERP_OTHER})", _I | _M
)
_OTHER_REMOTE_EXEC_RE = _re(
    r"\b(?:irm|iwr|Invoke-RestMethod|Invoke-WebRequest)\b[^\n]*\|\s*(?:iex|Invoke-Expression)\b",
    r"\b(?:iex|Invoke-Expression)\b[^\n]*\b(?:irm|iwr|Invoke-RestMethod|Invoke-WebRequest|DownloadString)\b",
    r"(?:\b(?:ba|z)?sh|\bsource|(?<![\w.])\.)\s+<\(\s*(?:curl|wget)\b[^)\n]*\)",
    r"\b(?:(?:ba|z)?sh|python[0-9.]*|perl|ruby|node)\s+-c\s+[\"']?\$\(\s*(?:curl|wget)\b[^)\n]*\)",
    r"\beval\s+[\"']?\$\(\s*(?:curl|wget)\b[^)\n]*\)",
    r"\b(?:exec|eval)\s*\(\s*(?:requests\.get|httpx\.get|urllib\.request\.urlopen|urlopen|\(?\s*await\s+fetch)\b",
    flags=_I | _M,
)
# Fetch (or decode) into a file, then run that file.
_WRITE_FILE_RE = re.compile(
    r"\b(?:curl|wget|base64\s+(?:-d|--decode|-D)|xxd\s+-r)\b[^\n;&|]*?"
    r"(?:\s-o\s*|\s--output(?:-document)?[=\s]\s*|\s-O\s+|>\s*)([\w./~${}-]+)",
    _I,
)


def _host_trusted(span_text: str) -> bool:
    url = _URL_RE.search(span_text)
    if url is None or not url.group().lower().startswith("https://"):
        return False
    rest = url.group()[len("https://") :]
    return any(rest.startswith(prefix) for prefix in TRUSTED_INSTALLERS)


def _remote_exec_spans(text: str) -> Iterator[tuple[int, int, bool]]:
    """Spans of remote code run by a shell, with whether the host is trusted."""
    for m in _PIPE_TO_SHELL_RE.finditer(text):
        yield m.start(), m.end(), _host_trusted(m.group())
    for m in _OTHER_REMOTE_EXEC_RE.finditer(text):
        yield m.start(), m.end(), _host_trusted(m.group())
    for m in _WRITE_FILE_RE.finditer(text):
        if not re.match(r"(?:curl|wget)", m.group(), _I):
            continue
        name = m.group(1).rsplit("/", 1)[-1]
        if not name or name in {"-", "/dev/null"}:
            continue
        run = re.compile(
            r"(?:\b(?:ba|z)?sh|\bsource|(?<![\w.])\.|\bpython[0-9.]*|\bperl|\bchmod\s+\+?[0-7]*x?|"
            r"\bpowershell|&|;)\s+(?:-\S+\s+)*[\"']?[\w./~${}-]*" + re.escape(name) + r"(?![\w.-])"
        )
        after = run.search(text, m.end(), m.end() + 400)
        if after is not None:
            yield m.start(), after.end(), _host_trusted(m.group())


def _remote_exec_untrusted(text: str) -> Iterator[Span]:
    for start, end, trusted in _remote_exec_spans(text):
        if not trusted:
            yield start, end


def _remote_exec_trusted(text: str) -> Iterator[Span]:
    for start, end, trusted in _remote_exec_spans(text):
        if trusted:
            yield start, end


def _decode_then_run(text: str) -> Iterator[Span]:
    """A payload decoded into a file and then executed."""
    for m in _WRITE_FILE_RE.finditer(text):
        if re.match(r"(?:curl|wget)", m.group(), _I):
            continue
        name = re.escape(m.group(1).rsplit("/", 1)[-1])
        run = re.compile(rf"(?:\b(?:ba|z)?sh|\bsource|\bpython[0-9.]*|\bchmod\s+\+?x?)\s+[\w./~$-]*{name}\b")
        after = run.search(text, m.end(), m.end() + 400)
        if after is not None:
            yield m.start(), after.end()


_RM_RE = re.compile(r"(?<![\w-])rm\s+((?:[^\n;&|]|\\\n)*)")
# Targets whose recursive removal destroys a home, a system or an unknown cwd.
DANGEROUS_RM_TARGETS: frozenset[str] = frozenset(
    {"/", "/*", "~", "~/", "~/*", "$HOME", "$HOME/", "$HOME/*", "${HOME}", "${HOME}/", "${HOME}/*",
     "*", ".", "..", "./", "../", "/etc", "/usr", "/var", "/bin", "/boot", "/lib", "/home",
     "/root", "/opt", "/System", "/Users", "/home/*", "/Users/*", "C:\\", "C:/"}
)


def _dangerous_rm(text: str) -> Iterator[Span]:
    for m in _RM_RE.finditer(text):
        try:
            words = shlex.split(m.group(1), comments=True)
        except ValueError:
            words = m.group(1).split()
        flags = "".join(w[1:] for w in words if w.startswith("-") and not w.startswith("--"))
        longs = {w for w in words if w.startswith("--")}
        recursive = "r" in flags.lower() or "--recursive" in longs
        targets = [w for w in words if not w.startswith("-")]
        if recursive and any(t.rstrip() in DANGEROUS_RM_TARGETS for t in targets):
            yield m.start(), m.end()
        elif "--no-preserve-root" in longs:
            yield m.start(), m.end()


_GIT_PUSH_RE = re.compile(r"\bgit\s+push\b[^\n;&|]*")


def _force_push_main(text: str) -> Iterator[Span]:
    for m in _GIT_PUSH_RE.finditer(text):
        seg = m.group()
        forced = re.search(r"\s(?:--force(?!-with-lease)\b|-f\b)|\s\+(?:main|master)\b", seg)
        if forced and re.search(r"\b(?:main|master)\b", seg):
            yield m.span()


_SHELL_ASSIGN_RE = re.compile(r"^\s*(?:export\s+|local\s+|readonly\s+)?([A-Za-z_]\w*)=(.*)$")
_PY_ASSIGN_RE = re.compile(r"^\s*(?:const\s+|let\s+|var\s+)?([A-Za-z_]\w*)\s*(?::[^=\n]+)?=(?!=)(.*)$", re.S)


def _mask(text: str, pattern: re.Pattern[str]) -> str:
    """Blank out every match of ``pattern``, keeping offsets."""
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Statements of a script: lines joined across open brackets and ``\\``."""
    start = 0
    depth = 0
    pos = 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        stripped = line.rstrip("\r\n")
        depth += sum(stripped.count(c) for c in "([{") - sum(stripped.count(c) for c in ")]}")
        if depth > 0 and depth < 20 or stripped.endswith("\\"):
            continue
        depth = 0
        yield start, text[start:pos]
        start = pos
    if start < len(text):
        yield start, text[start:]


def _secret_exfiltration(text: str) -> Iterator[Span]:
    """A statement that sends a secret (directly or via a variable) out."""
    masked = _mask(text, _AUTH_MASK_RE)
    tainted: set[str] = set()
    for start, stmt in _logical_lines(masked):
        sink = _SINK_RE.search(stmt)
        if sink is not None:
            if _SECRET_RE.search(stmt) or _mentions(stmt, tainted):
                yield start + sink.start(), start + sink.end()
                continue
        assign = _SHELL_ASSIGN_RE.match(stmt) or _PY_ASSIGN_RE.match(stmt)
        if assign and (_SECRET_RE.search(assign.group(2)) or _mentions(assign.group(2), tainted)):
            tainted.add(assign.group(1))


def _mentions(text: str, names: set[str]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(n)}\b", text) for n in names)


def _secret_to_exfil_host(text: str) -> Iterator[Span]:
    """Any secret sent to a known exfiltration host, even inside a header."""
    host = re.compile(r"https?://(?:" + EXFIL_HOSTS + ")", _I)
    for start, stmt in _logical_lines(text):
        m = host.search(stmt)
        if m and _SECRET_RE.search(stmt):
            yield start + m.start(), start + m.end()


_DOTENV_READ_RE = _re(
    r"\b(?:cat|less|more|head|tail|source|grep|base64|xxd|strings|scp)\s+[^\n|;&]*?" + DOTENV,
    r"(?<![\w.])\.\s+" + DOTENV,
    r"\bopen\s*\(\s*['\"][^'\"\n]*?" + DOTENV + r"['\"]",
    r"\breadFileSync\s*\(\s*['\"][^'\"\n]*?" + DOTENV + r"['\"]",
    r"@" + DOTENV,
)

# Placeholders for text that comes from the user.
_PLACEHOLDER = (
    r"\$ARGUMENTS(?:\[\d+\])?|\$\{ARGUMENTS\}|\$[1-9@*](?!\w)|\$\{[1-9@*]\}|"
    r"\$\{?(?:user_?input|input|USER_INPUT|INPUT|query|QUERY)\}?(?!\w)|"
    r"\{\{\s*[\w.]*(?:input|query|args?|arguments|prompt|request)\s*\}\}|"
    r"\{(?:user_?input|input|query|args?|arguments|prompt|user_request)\}"
)
_PLACEHOLDER_RE = re.compile(_PLACEHOLDER)


def _unquoted_placeholders(text: str) -> Iterator[Span]:
    """Placeholders outside any quotes in a command line."""
    quote = ""
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
            i += 1
            continue
        if c in "'\"":
            quote = c
            i += 1
            continue
        if c in "${":
            m = _PLACEHOLDER_RE.match(text, i)
            if m is not None:
                yield m.span()
                i = m.end()
                continue
        i += 1


_EVAL_INPUT_RE = re.compile(
    r"\b(?:eval|(?:ba|z)?sh\s+-c|python[0-9.]*\s+-c|node\s+-e|perl\s+-e|os\.system|"
    r"subprocess\.\w+\([^)\n]*shell\s*=\s*True)\s*\(?\s*[\"'f]?[^\n]{0,40}?(?:" + _PLACEHOLDER + ")"
)

_HTML_COMMENT_RE = re.compile(r"<!--(.*?)-->", re.S)
_MODEL_ADDRESS_RE = re.compile(
    r"\b(?:assistant|claude|chatgpt|gpt|codex|gemini|the\s+model|the\s+agent|AI\s+agents?|"
    r"AI\s+assistants?|language\s+models?|LLMs?|agents?\s+reading\s+this|if\s+you\s+are\s+an?\s+(?:AI|agent|model))\b",
    _I,
)
_COMMENT_IMPERATIVE_RE = re.compile(
    r"^\s*(?:(?:note|important|system|instructions?|agent|ai|todo for (?:the )?(?:ai|agent))\s*[:!-]\s*)?"
    r"(?:please\s+)?(?:run|execute|send|upload|post|read|cat|curl|wget|download|fetch|copy|delete|"
    r"remove|ignore|disregard|always|never|do\s+not|don't|before\s+(?:responding|answering|doing|"
    r"anything|you)|first|also|then|quietly|silently|include|append|add|collect|set)\b",
    _I,
)
_COMMENT_SENSITIVE_RE = re.compile(
    r"\b(?:curl|wget|upload|send|post|credentials?|tokens?|api[_ -]?keys?|passwords?|secrets?|"
    r"ssh|cookies?|exfiltrat\w*|base64|eval|webhook|ignore|disregard|the\s+user|bash|"
    r"private\s+keys?|environment\s+variables?|\.env|nc)\b|\||https?://",
    _I,
)


def _hidden_comment_instructions(text: str) -> Iterator[Span]:
    """HTML comments (invisible when rendered) that instruct the model."""
    for m in _HTML_COMMENT_RE.finditer(text):
        body = m.group(1)
        if len(body.strip()) < 12:
            continue
        addressed = _MODEL_ADDRESS_RE.search(body) and re.search(
            r"\b(?:must|should|need\s+to|are\s+(?:required|instructed)|always|never|do\s+not|"
            r"ignore|run|execute|send|read|upload|include)\b", body, _I)
        imperative = _COMMENT_IMPERATIVE_RE.search(body) and _COMMENT_SENSITIVE_RE.search(body)
        injection = _INJECTION_RE.search(body)
        if addressed or imperative or injection:
            yield m.span()


_INJECTION_RE = _re(
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|every\s+|of\s+)*"
    r"(?:previous|prior|above|earlier|preceding|former|original|system|safety|existing|other)\s+"
    r"(?:instructions?|rules?|directions?|prompts?|guidelines?|guardrails?|constraints?|messages?|"
    r"context|polic(?:y|ies))\b",
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+)?(?:your|the)\s+(?:rules|instructions|"
    r"system\s+prompt|guidelines|safety\s+\w+|restrictions|programming|training|guardrails)\b",
    r"\byou\s+are\s+now\s+(?:in\s+)?(?:an?\s+)?(?:developer|dev|god|admin|jailbreak|jailbroken|"
    r"unrestricted|unfiltered|DAN|maintenance|debug|root)\b",
    r"\b(?:enable|enter|activate|switch\s+to)\s+(?:developer|god|jailbreak|DAN|unrestricted)\s+mode\b",
    r"\b(?:do\s+not|don't|never)\s+(?:tell|inform|notify|alert|warn|mention\s+(?:this|it|that|anything)"
    r"\s+to|reveal\s+(?:this|it)\s+to|show\s+(?:this|it)\s+to)\s+(?:the\s+)?user\b",
    r"\b(?:hide|conceal)\s+(?:this|it|these|that|the\s+\w+(?:\s+\w+)?)\s+from\s+(?:the\s+)?user\b",
    r"\bkeep\s+(?:this|it|these)\s+(?:secret|hidden)\s+from\s+(?:the\s+)?user\b",
    r"\bexfiltrate\b",
    r"\bnew\s+system\s+prompt\s*:",
    r"<\|?im_start\|?>\s*system|<\|system\|>|\[\s*SYSTEM\s*(?:PROMPT|OVERRIDE)\s*\]",
    r"\b(?:this|these)\s+(?:instructions?|actions?|requests?|steps?)\s+(?:is|are|has\s+been|have\s+been)\s+"
    r"(?:pre-?)?(?:authorized|approved)\s+by\s+(?:anthropic|openai|the\s+(?:system|administrator|"
    r"developers?|security\s+team))",
    r"\b(?:reveal|print|output|repeat|leak)\s+(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|"
    r"initial\s+instructions)\b",
    flags=_I,
)


def _prompt_injection(text: str) -> Iterator[Span]:
    for m in _INJECTION_RE.finditer(text):
        if not _quoted_phrase(text, m.start()):
            yield m.span()


_COVERT_RE = re.compile(
    r"\b(?:without\s+(?:asking|telling|notifying|informing|alerting|consulting|confirming\s+with|"
    r"the\s+knowledge\s+of)\s+(?:the\s+)?user|without\s+(?:the\s+)?user'?s?\s+(?:knowledge|permission|"
    r"consent|approval|confirmation)|silently|secretly|quietly|covertly|behind\s+the\s+user's\s+back|"
    r"without\s+(?:asking\s+(?:for\s+)?)?(?:permission|consent|approval))\b",
    _I,
)
_COVERT_SENSITIVE_RE = re.compile(
    r"\b(?:upload|send|post|transmit|exfiltrat\w*|forward|credentials?|tokens?|api[_ -]?keys?|"
    r"passwords?|secrets?|ssh|private\s+keys?|cookies?|curl|wget|download|environment\s+variables?|"
    r"webhook|keychain|wallet|history)\b|" + DOTENV,
    _I,
)
_AUTONOMY_RE = re.compile(
    r"\bwithout\s+(?:asking|consulting|confirming\s+with)\s+(?:the\s+)?user\b|"
    r"\bwithout\s+(?:(?:the\s+)?user'?s?\s+)?(?:asking\s+(?:for\s+)?)?(?:permission|consent|approval|confirmation)\b",
    _I,
)


def _covert_sensitive_action(text: str) -> Iterator[Span]:
    """Doing something sensitive behind the user's back, in one sentence."""
    for m in _COVERT_RE.finditer(text):
        lo, hi = _sentence_start(text, m.start()), _sentence_end(text, m.end())
        if _COVERT_SENSITIVE_RE.search(text, lo, hi) and not _quoted_phrase(text, m.start()):
            yield m.span()


def _autonomy(text: str) -> Iterator[Span]:
    """Acting without asking, where nothing sensitive is involved."""
    covert = {s for s in _covert_sensitive_action(text)}
    for m in _AUTONOMY_RE.finditer(text):
        if not any(s[0] <= m.start() < s[1] or m.start() <= s[0] < m.end() for s in covert):
            if not _negated(text, m.start()):
                yield m.span()


def _credential_read_prose(text: str) -> Iterator[Span]:
    """Prose that tells the model to read, copy or send credential files."""
    verbs = re.compile(
        r"\b(?:read|cat|open|copy|print|send|upload|include|collect|attach|paste|dump|extract|grab|"
        r"load|output|show|display|encode|post|forward|share|append|archive|zip|tar|check|inspect|"
        r"list|look\s+(?:at|in|for)|find|scan|search)\b",
        _I,
    )
    for m in _CREDENTIAL_RE.finditer(text):
        lo = _sentence_start(text, m.start())
        if verbs.search(text, lo, m.start()) and not _negated(text, m.start()):
            yield m.span()


_INVISIBLE_RE = re.compile(r"[\U000E0000-\U000E007F]+|[\u202A-\u202E\u2066-\u2069]|[\u200B-\u200D\u2060\uFEFF]{3,}")

_UNRESTRICTED_SHELL_RE = re.compile(
    r"^allowed-tools\s*:.*?(?:(?<![\w(])Bash(?![\w(])|Bash\(\s*\*\s*\)|Bash\(\s*\*?:\*\s*\))", _I | _M
)


# ---------------------------------------------------------------------------
# The rule table.
# ---------------------------------------------------------------------------

_EXEC = _kinds("command", "code")
_ALL = KINDS
_TEXT = _kinds("prose", "frontmatter", "code", "command")

RULES: tuple[Rule, ...] = (
    Rule(
        "SEC001", "remote-code-execution", "error", _EXEC,
        "Code downloaded from the network is run by a shell or interpreter without being reviewed.",
        "remote code is piped into a shell or interpreter",
        check=_remote_exec_untrusted, in_prose_code=True, negatable=True,
        triggers=("curl", "wget", "fetch", "irm", "iwr", "invoke-", "iex", "urlopen", "requests.get", "httpx.get"),
    ),
    Rule(
        "SEC002", "remote-installer", "warning", _EXEC,
        "A vendor's installer script is piped into a shell; pin a version or use a package manager.",
        "an installer script from the network is run by a shell",
        check=_remote_exec_trusted, in_prose_code=True, negatable=True,
        triggers=("curl", "wget"),
    ),
    Rule(
        "SEC003", "credential-file-read", "error", _EXEC,
        "A command or script reads key or credential material (SSH keys, cloud credentials, keychains, browser cookies).",
        "reads credential or key material",
        patterns=(_CREDENTIAL_RE,), in_prose_code=True, negatable=True,
        triggers=_CREDENTIAL_TRIGGERS,
    ),
    Rule(
        "SEC004", "credential-file-request", "error", _kinds("prose", "frontmatter"),
        "Instructions tell the model to read, copy or send credential files.",
        "instructs the model to read credential or key material",
        check=_credential_read_prose,
        triggers=_CREDENTIAL_TRIGGERS,
    ),
    Rule(
        "SEC005", "dotenv-read", "warning", _EXEC,
        "A .env file (not an example or template) is read directly; it usually holds secrets.",
        "reads a .env file that may hold secrets",
        patterns=(_DOTENV_READ_RE,),
        triggers=(".env",),
    ),
    Rule(
        "SEC006", "secret-exfiltration", "error", _EXEC,
        "A statement sends data out over the network and the data comes from a secret source "
        "(secret environment variables, the whole environment, credential or .env files).",
        "sends secrets to the network",
        check=_secret_exfiltration, in_prose_code=True, negatable=True,
        triggers=_SINK_TRIGGERS,
    ),
    Rule(
        "SEC007", "secret-to-exfil-host", "error", _EXEC,
        "A secret is sent to a host used for collecting data (webhook catchers, tunnels, paste sites).",
        "sends secrets to a data-collection host",
        check=_secret_to_exfil_host, in_prose_code=True,
        triggers=_HOST_TRIGGERS,
    ),
    Rule(
        "SEC008", "suspicious-endpoint", "warning", _ALL,
        "A URL points at a raw public IP address, a tunnel, a webhook catcher or a paste site.",
        "refers to a suspicious network endpoint",
        patterns=(
            re.compile(r"https?://(?:" + EXFIL_HOSTS + ")", _I),
            re.compile(
                r"https?://(?!(?:127\.|10\.|0\.0\.0\.0|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.))"
                r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"
            ),
        ),
        triggers=_HOST_TRIGGERS + tuple("0123456789"),
    ),
    Rule(
        "SEC009", "destructive-command", "error", _EXEC,
        "A command destroys data beyond the task: recursive removal of /, ~ or *, disk formatting, "
        "raw disk writes, fork bombs, force pushes to main, dropped databases.",
        "destructive command",
        patterns=(
            _re(
                r"\bmkfs(?:\.\w+)?\s",
                r"\bdd\b[^\n]*\bof=/dev/(?:sd|hd|nvme|disk|rdisk|xvd|vd|mmcblk)",
                r">\s*/dev/(?:sd[a-z]|nvme\d|disk\d|hd[a-z])\b",
                r"\bchmod\s+(?:-R|--recursive)\s+(?:0?777|a\+rwx)\s+(?:/|~|\$HOME)(?=\s|$|[;&|])",
                r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:",
                r"\bDROP\s+(?:DATABASE|SCHEMA)\b",
                r"\bshred\b[^\n]*(?:/dev/|\s~|\$HOME|\s\*)",
                r"\bfind\s+(?:/|~|\$HOME)\s[^\n]*-delete\b",
                r"\bwipefs\b|\bdiskutil\s+(?:eraseDisk|zeroDisk)\b|\bformat\s+[cC]:",
                r"\bRemove-Item\b[^\n]*-Recurse[^\n]*(?:[A-Z]:\\\s|~|\$HOME|\$env:USERPROFILE)",
                r"\bshutil\.rmtree\s*\(\s*(?:['\"](?:/|~|/home|/Users)/?['\"]|os\.path\.expanduser\(\s*['\"]~/?['\"]\s*\)|"
                r"Path\.home\(\)\s*\)|os\.environ\[['\"]HOME['\"]\]\s*\))",
                flags=_I,
            ),
        ),
        check=lambda t: [*_dangerous_rm(t), *_force_push_main(t)],
        in_prose_code=True, negatable=True,
        triggers=("rm", "mkfs", "dd", "/dev/", "chmod", ":()", "drop", "shred", "find", "wipefs", "diskutil", "format", "remove-item", "rmtree", "push"),
    ),
    Rule(
        "SEC010", "obfuscated-payload", "error", _EXEC,
        "Encoded data is decoded and executed, hiding what runs from review.",
        "decodes and executes an obfuscated payload",
        patterns=(
            _re(
                r"\bbase64\s+(?:-d|--decode|-D)\b(?:[^\n;&]|&(?!&))*\|\s*(?:sudo\s+)?(?:(?:ba|z)?sh|python[0-9.]*|perl|ruby|node)\b",
                r"\b(?:xxd\s+-r|openssl\s+(?:enc|base64)\b[^\n|]*\s-d)\b[^\n;&]*\|\s*(?:ba|z)?sh\b",
                r"\beval\s+[\"']?\$\((?:[^)\n]*\b(?:base64|xxd|openssl|rev|gunzip|zcat|gzip\s+-d)\b)",
                r"\b(?:exec|eval)\s*\(\s*(?:base64\.b(?:64|32|16|85)decode|codecs\.decode|zlib\.decompress|"
                r"bytes\.fromhex|binascii\.|marshal\.loads|__import__\(\s*['\"](?:base64|zlib|codecs|marshal)|"
                r"compile\s*\(\s*base64)",
                r"\b(?:eval|Function)\s*\(\s*(?:atob|Buffer\.from\([^)\n]*base64|unescape|String\.fromCharCode)",
                r"\b(?:powershell|pwsh)(?:\.exe)?\b[^\n]*\s-(?:e|ec|enc|encodedcommand)\s+[A-Za-z0-9+/=]{16,}",
                flags=_I,
            ),
        ),
        check=_decode_then_run, in_prose_code=True,
        triggers=("base64", "xxd", "openssl", "exec", "eval", "function", "powershell", "pwsh"),
    ),
    Rule(
        "SEC011", "encoded-blob", "warning", _kinds("command"),
        "A long base64 string inside a command line hides its content from review.",
        "long encoded string in a command",
        patterns=(re.compile(r"(?<![\w+/=:])[A-Za-z0-9+/]{120,}={0,2}(?![\w+/=])"),),
    ),
    Rule(
        "SEC012", "persistence", "warning", _EXEC,
        "The skill installs something that survives the session: cron jobs, shell start-up files, "
        "systemd units, launch agents, autorun keys.",
        "installs a persistent hook",
        patterns=(
            _re(
                r"\bcrontab\s+(?:-e\b|-(?=\s|$)|(?!-l\b|-r\b)[\w./~$-]+)|\|\s*crontab\b",
                r"/etc/cron\.(?:d|daily|hourly|weekly)/",
                r"(?:>>?|\btee\s+(?:-a\s+)?)\s*(?:~|\$HOME|\$\{HOME\})/\.(?:bashrc|zshrc|profile|bash_profile|"
                r"zprofile|bash_login|zshenv|config/fish/config\.fish)\b",
                r"['\"]~/\.(?:bashrc|zshrc|profile|bash_profile|zprofile)['\"][^\n]*['\"]a\+?['\"]",
                r"\bsystemctl\s+(?:--user\s+)?enable\b",
                r"/etc/systemd/system/[\w@.-]+\.(?:service|timer)\b|\.config/systemd/user/",
                r"\blaunchctl\s+(?:load|bootstrap|submit)\b|Library/Launch(?:Agents|Daemons)/",
                r"/etc/rc\.local\b|/etc/profile\.d/",
                r"\bschtasks\s+/create\b|CurrentVersion\\Run\b",
                flags=_I,
            ),
        ),
        triggers=("cron", "rc", "profile", "systemctl", "systemd", "launch", "/etc/", "schtasks", "currentversion"),
    ),
    Rule(
        "SEC013", "backdoor", "error", _EXEC,
        "Remote access is opened or granted: reverse shells, keys appended to authorized_keys, "
        "password-less sudo.",
        "opens a backdoor",
        patterns=(
            _re(
                r"(?:>>|\btee\s+-a)\s*(?:~|\$HOME|\$\{HOME\}|/root|/home/[\w.-]+)/\.ssh/authorized_keys\b",
                r"/dev/(?:tcp|udp)/[\w.-]+/\d+",
                r"(?<![\w-])(?:nc|ncat|netcat)\b[^\n]*\s-[a-z]*[ec]\s+/bin/(?:ba)?sh\b",
                r"\bsocat\b[^\n]*\bexec:",
                r"\bbash\s+-i\s*>&",
                r"\bpty\.spawn\s*\(",
                r"\bos\.dup2\s*\(\s*\w+\.fileno\(\)",
                r"NOPASSWD\s*:\s*ALL",
                r"\bmkfifo\b[^\n]*\b(?:nc|ncat)\b",
                flags=_I,
            ),
        ),
        in_prose_code=True,
        triggers=("authorized_keys", "/dev/tcp", "/dev/udp", "nc", "socat", "bash -i", "pty.spawn", "dup2", "nopasswd", "mkfifo"),
    ),
    Rule(
        "SEC014", "prompt-injection", "error", _TEXT,
        "Text aimed at the model tries to override its instructions, change its mode or hide "
        "actions from the user.",
        "prompt injection: text tries to override the model's instructions",
        check=_prompt_injection,
        triggers=("ignore", "disregard", "forget", "override", "bypass", "you are now", " mode", "user", "exfiltrate", "system prompt", "im_start", "system", "authorized", "approved", "instructions"),
    ),
    Rule(
        "SEC015", "hidden-instructions", "error", _kinds("prose", "code"),
        "An HTML comment, invisible when the skill is rendered, carries instructions for the model.",
        "HTML comment hides instructions for the model",
        check=_hidden_comment_instructions,
        triggers=("<!--",),
    ),
    Rule(
        "SEC016", "covert-action", "error", _kinds("prose", "frontmatter"),
        "The model is told to do something sensitive (send data, touch credentials, download) "
        "without the user's knowledge or consent.",
        "instructs the model to act on sensitive data without the user's knowledge",
        check=_covert_sensitive_action,
        triggers=("without", "silently", "secretly", "quietly", "covertly", "behind the user"),
    ),
    Rule(
        "SEC017", "acts-without-consent", "warning", _kinds("prose"),
        "The model is told to act without asking the user.",
        "instructs the model to act without asking the user",
        check=_autonomy,
        triggers=("without",),
    ),
    Rule(
        "SEC018", "invisible-text", "error", _ALL,
        "Invisible Unicode (tag characters, bidirectional overrides, zero-width runs) hides text from review.",
        "invisible Unicode characters hide text",
        check=lambda t: () if t.isascii() else (m.span() for m in _INVISIBLE_RE.finditer(t)),
    ),
    Rule(
        "SEC019", "untrusted-input-exec", "error", _EXEC,
        "User input is evaluated as code (eval, sh -c, os.system) and can run anything.",
        "user input is evaluated as code",
        patterns=(_EVAL_INPUT_RE,),
        triggers=("eval", "-c", "-e", "os.system", "shell"),
    ),
    Rule(
        "SEC020", "unquoted-input", "warning", _kinds("command"),
        "A user-input placeholder is used unquoted in a command line; quote it so it stays one argument.",
        "user input reaches the shell unquoted",
        check=_unquoted_placeholders,
        triggers=("$", "{"),
    ),
    Rule(
        "SEC021", "eval-variable", "warning", _EXEC,
        "A shell variable is evaluated as code.",
        "a variable is evaluated as shell code",
        patterns=(re.compile(r"\beval\s+[\"']?\$(?:\{\w+\}|[A-Za-z_]\w*)"),),
        triggers=("eval",),
    ),
    Rule(
        "SEC022", "security-disabled", "warning", _EXEC,
        "A safety check is turned off: hooks skipped, TLS verification disabled, host keys ignored, "
        "OS protections disabled, agent permissions skipped.",
        "disables a security check",
        patterns=(
            _re(
                r"--no-verify\b",
                r"\bcurl\b[^\n|;]*\s(?:-[a-zA-Z]*k[a-zA-Z]*|--insecure)(?=\s|$)",
                r"--no-check-certificate\b",
                r"\bPYTHONHTTPSVERIFY\s*=\s*['\"]?0",
                r"\bNODE_TLS_REJECT_UNAUTHORIZED\s*=\s*['\"]?0",
                r"\bverify\s*=\s*False\b",
                r"\bGIT_SSL_NO_VERIFY\b|\bhttp\.sslVerify\s+false\b|\bstrict-ssl\s+false\b",
                r"\bStrictHostKeyChecking[= ]no\b",
                r"--dangerously-skip-permissions\b|--trusted-host\b",
                r"\bsetenforce\s+0\b|\bufw\s+disable\b|\bspctl\s+--master-disable\b|\bcsrutil\s+disable\b",
                r"\bxattr\s+-d\s+com\.apple\.quarantine\b",
                r"(?:Set-ExecutionPolicy|-ExecutionPolicy)\s+(?:Unrestricted|Bypass)\b",
                r"\bchmod\s+(?:-R\s+)?(?:0?777|a\+rwx)\b",
                flags=_I,
            ),
        ),
        in_prose_code=True, negatable=True,
        triggers=("--no-verify", "curl", "certificate", "httpsverify", "tls_reject", "verify", "ssl", "stricthostkeychecking", "--dangerously", "--trusted-host", "setenforce", "ufw", "spctl", "csrutil", "quarantine", "executionpolicy", "chmod"),
    ),
    Rule(
        "SEC023", "setuid", "warning", _EXEC,
        "A file is made set-user-id, so it runs with its owner's privileges.",
        "sets the set-user-id bit",
        patterns=(re.compile(r"\bchmod\s+(?:-R\s+)?(?:[ugoa]*\+[rwx]*s[rwx]*|[4-7][0-7]{3})\b"),),
        triggers=("chmod",),
    ),
    Rule(
        "SEC024", "untrusted-package-source", "warning", _EXEC,
        "Packages come from an extra or unencrypted index, which allows dependency confusion or tampering.",
        "installs packages from an untrusted source",
        patterns=(
            _re(
                r"--extra-index-url\b",
                r"--index-url\s+http://",
                r"\bpip[0-9.]*\s+install\s+[^\n]*\bhttp://",
                r"\bnpm\s+config\s+set\s+registry\s+http://",
                flags=_I,
            ),
        ),
        triggers=("index-url", "http://"),
    ),
    Rule(
        "SEC025", "sudo", "note", _kinds("command"),
        "The command runs with root privileges.",
        "runs a command with sudo",
        patterns=(re.compile(r"(?<![\w-])sudo\s"),),
        triggers=("sudo",),
    ),
    Rule(
        "SEC026", "global-git-config", "note", _kinds("command"),
        "The command changes the user's global git configuration.",
        "changes the global git configuration",
        patterns=(re.compile(r"\bgit\s+config\s+(?:--global|--system)\b"),),
        triggers=("git config",),
    ),
    Rule(
        "SEC027", "unrestricted-shell", "note", _kinds("frontmatter"),
        "allowed-tools grants the shell without restricting commands.",
        "allowed-tools grants an unrestricted shell",
        patterns=(_UNRESTRICTED_SHELL_RE,),
        triggers=("allowed-tools",),
    ),
)

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
"""Every rule by its stable id."""

_PROSE_CODE_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.in_prose_code)
_INLINE_CODE_RE = re.compile(r"(`+)([^`\n]+?)\1")


def _excerpt(text: str, start: int, end: int) -> str:
    snippet = " ".join(text[start:end].split())
    return snippet if len(snippet) <= EXCERPT_MAX else snippet[: EXCERPT_MAX - 1] + "…"


def _code_regions(text: str) -> list[tuple[int, str]]:
    """Inline code spans and HTML comment bodies inside prose, in text order."""
    regions = [(m.start(2), m.group(2)) for m in _INLINE_CODE_RE.finditer(text)]
    regions += [(m.start(1), m.group(1)) for m in _HTML_COMMENT_RE.finditer(text)]
    return sorted(regions)


def scan(kind: str, text: str, *, lang: str | None = None) -> list[Finding]:
    """Run every applicable rule over ``text`` of ``kind``; findings in text order.

    Args:
        kind: ``command``, ``code``, ``prose`` or ``frontmatter``.
        text: the text to scan.
        lang: the language of a ``code`` text; shell languages scan as commands too.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown text kind '{kind}' (expected one of {', '.join(sorted(KINDS))})")
    kinds = {kind}
    if kind == "code" and lang is not None and lang.lower() in SHELL_LANGS:
        kinds.add("command")
    # Join continued lines so a command split with "\" reads as one line.
    body = text.replace("\\\r\n", "   ").replace("\\\n", "  ")
    lowered = body.lower()
    found: dict[tuple[str, int], Finding] = {}

    def add(rule: Rule, offset: int, excerpt: str) -> None:
        key = (rule.id, offset)
        if key not in found:
            found[key] = Finding(rule.id, rule.severity, rule.message, offset, excerpt, rule.name)

    for rule in RULES:
        if rule.kinds.isdisjoint(kinds) or not rule.applies_to(lowered):
            continue
        for start, end in rule.spans(body):
            add(rule, start, _excerpt(body, start, end))
    if kind == "prose":
        # Commands quoted inline in instructions are run by the model as
        # written. Scan all of them at once, one per line, and map back.
        regions = _code_regions(body)
        if regions:
            joined_parts: list[str] = []
            starts: list[int] = []
            cursor = 0
            for _, region in regions:
                starts.append(cursor)
                joined_parts.append(region)
                cursor += len(region) + 2
            joined = "\n\n".join(joined_parts)
            joined_lower = joined.lower()
            for rule in _PROSE_CODE_RULES:
                if not rule.applies_to(joined_lower):
                    continue
                for start, end in rule.spans(joined):
                    index = bisect.bisect_right(starts, start) - 1
                    offset = regions[index][0] + start - starts[index]
                    if rule.negatable and _negated(body, offset):
                        continue
                    add(rule, offset, _excerpt(joined, start, end))
    return sorted(found.values(), key=lambda f: (f.offset, f.rule))


def max_severity(findings: Iterable[Finding]) -> str | None:
    """The most serious severity among ``findings`` (None when empty)."""
    present = {f.severity for f in findings}
    return next((s for s in SEVERITIES if s in present), None)


# ---------------------------------------------------------------------------
# allowed-tools
# ---------------------------------------------------------------------------

# Other harnesses' names for the shell tool.
TOOL_ALIASES: dict[str, str] = {
    "shell": "bash",
    "exec": "bash",
    "run_shell_command": "bash",
    "terminal": "bash",
}

_ENTRY_RE = re.compile(r"([A-Za-z_][\w.-]*)(?:\(([^)]*)\))?")
_COMMAND_SPLIT_RE = re.compile(r"&&|\|\||[;|\n]")


def parse_allowed_tools(allowed_tools: Iterable[str] | str) -> list[tuple[str, str | None]]:
    """Parse allowed-tools entries into (tool, specifier-or-None) pairs.

    Entries may be a YAML list or one string separated by commas or spaces;
    specifiers in parentheses may contain both (``Bash(git log:*)``).
    """
    if isinstance(allowed_tools, str):
        allowed_tools = [allowed_tools]
    parsed: list[tuple[str, str | None]] = []
    for raw in allowed_tools:
        for m in _ENTRY_RE.finditer(raw):
            parsed.append((m.group(1), m.group(2).strip() if m.group(2) is not None else None))
    return parsed


def _canonical_tool(name: str) -> str:
    low = name.lower()
    return TOOL_ALIASES.get(low, low)


def _split_commands(command: str) -> list[str]:
    """Simple commands of a command line, split at ``&&``, ``||``, ``;`` and ``|`` outside quotes."""
    parts: list[str] = []
    quote = ""
    current: list[str] = []
    i = 0
    while i < len(command):
        c = command[i]
        if quote:
            if c == quote:
                quote = ""
            current.append(c)
            i += 1
            continue
        if c in "'\"":
            quote = c
            current.append(c)
            i += 1
            continue
        m = _COMMAND_SPLIT_RE.match(command, i)
        if m is not None:
            parts.append("".join(current))
            current = []
            i = m.end()
            continue
        current.append(c)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _command_matches(spec: str, command: str) -> bool:
    """Whether one simple command matches a Claude-style Bash specifier."""
    spec = spec.strip()
    if spec in {"*", ":*", "*:*"}:
        return True
    if spec.endswith(":*"):
        prefix = spec[:-2].strip()
        return command == prefix or command.startswith(prefix + " ")
    if "*" in spec:
        return fnmatch.fnmatchcase(command, spec)
    return command == spec


def _specifier_matches(tool: str, spec: str, argument: str) -> bool:
    """Whether a non-shell tool's argument (path, URL) matches its specifier."""
    if spec.startswith("domain:"):
        host = re.sub(r"^[a-z]+://", "", argument.lower()).split("/", 1)[0]
        want = spec[len("domain:") :].lower()
        return host == want or host.endswith("." + want)
    return fnmatch.fnmatchcase(argument, spec) or _command_matches(spec, argument)


def tool_allowed(
    allowed_tools: Iterable[str] | str | None, tool: str, command: str | None = None
) -> bool:
    """Whether ``allowed-tools`` lets ``tool`` run (with ``command`` for the shell).

    ``None`` means the skill declares no allowed-tools: nothing is restricted.
    For the shell, every simple command of a compound line must be allowed.
    ``command`` is the path or URL for other tools with specifiers.
    """
    if allowed_tools is None:
        return True
    want = _canonical_tool(tool)
    entries = [(t, s) for t, s in parse_allowed_tools(allowed_tools) if _canonical_tool(t) == want]
    if not entries:
        return False
    if any(spec is None or spec.strip() in {"", "*"} for _, spec in entries):
        return True
    if command is None:
        # A restricted entry exists but we do not know the call: not provably allowed.
        return False
    specs = [spec for _, spec in entries if spec is not None]
    if want == "bash":
        pieces = _split_commands(command)
        return bool(pieces) and all(any(_command_matches(s, p) for s in specs) for p in pieces)
    return any(_specifier_matches(want, s, command) for s in specs)
