"""Rules of the ``secure`` static-security pass, over plain text.

The pass walks the IR and hands each piece of text to :func:`scan` with its
kind:

* ``command`` — a shell command line (``tool.exec`` argv joined, shell blocks);
* ``code`` — a code block or bundled script, with its language;
* ``prose`` — instructions to the model (context, rules, step prompts, HTML
  comments);
* ``frontmatter`` — the skill's frontmatter (``allowed-tools`` and friends).

Each :class:`Rule` has a stable id (``SEC001``...), a kebab-case name, a
severity and the kinds it applies to. Matchers are keyword-anchored regexes
(:class:`KeyedPattern`) or small functions over the text; everything here is
independent of the IR so that it can be tested, and measured for false
positives, on its own.

Severities are chosen so that an ``error`` is something an ordinary useful
skill has no reason to do (pipe an unknown script into a shell, read SSH
keys, send secrets out, hide instructions from the user); ``warning`` marks
what is legitimate in some skills but deserves a look (``--no-verify``,
cron jobs, unquoted arguments); ``note`` is informational (``sudo``).

Speed: a regex that starts with an alternation or a lookbehind makes Python's
``re`` try every position of a 30 KB SKILL.md. Every pattern here is
therefore keyed by the literal words a match starts with; ``str.find`` (C
speed) locates those words and the regex only runs there. A rule whose
matches need keywords says which (:attr:`Rule.keywords`): :func:`scan`
first finds every keyword of the applicable rules that occurs in the text
with one trie regex, then runs only the rules, and looks only for the
keywords, that occur; most texts (short paragraphs) need no rule at all.
"""

from __future__ import annotations

import bisect
import difflib
import fnmatch
import functools
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence

import attrs

KINDS: frozenset[str] = frozenset({"command", "code", "prose", "frontmatter"})
SEVERITIES: tuple[str, ...] = ("error", "warning", "note")

# Code-block languages that are shell: such blocks are commands.
SHELL_LANGS: frozenset[str] = frozenset(
    {
        "sh",
        "bash",
        "shell",
        "zsh",
        "fish",
        "ksh",
        "console",
        "shell-session",
        "shellsession",
        "terminal",
        "powershell",
        "ps1",
        "pwsh",
        "ps",
        "cmd",
        "bat",
        "batch",
    }
)

EXCERPT_MAX = 80

Span = tuple[int, int]
Matcher = Callable[[str, str], Iterable[Span]]

_I = re.IGNORECASE
_M = re.MULTILINE
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def lower_same_length(text: str) -> str:
    """Lower-case ``text`` keeping every offset (non-ASCII case folding can change lengths)."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


@attrs.frozen
class KeyedPattern:
    """A regex that only runs where one of its literal keywords occurs.

    A match must contain a keyword occurrence and start at most ``back``
    characters before it (``back=0``: the match starts at the keyword).
    """

    keywords: tuple[str, ...]
    regex: re.Pattern[str]
    back: int = 0

    def spans(
        self, text: str, lowered: str, present: frozenset[str] | None = None
    ) -> Iterator[Span]:
        """Spans of ``text`` matched, in keyword order (callers sort).

        ``present``, when known, holds every keyword that occurs in ``lowered``
        (others are not searched for).
        """
        seen: set[int] = set()
        words = self.keywords if present is None else [w for w in self.keywords if w in present]
        for word in words:
            i = lowered.find(word)
            while i != -1:
                if self.back:
                    # The window bounds the cost of a miss; back-anchored
                    # patterns are short (a path, a URL, a phrase).
                    m = self._around(text, i)
                else:
                    m = self.regex.match(text, i)
                if m is not None and m.start() not in seen:
                    seen.add(m.start())
                    yield m.span()
                i = lowered.find(word, i + 1)

    def _around(self, text: str, i: int) -> re.Match[str] | None:
        """The match that starts at most ``back`` before ``i`` and covers it."""
        pos = max(0, i - self.back)
        end = min(len(text), i + 400)
        while pos <= i:
            m = self.regex.search(text, pos, end)
            if m is None or m.start() > i:
                return None
            if m.end() > i:
                return m
            pos = m.start() + 1
        return None


def _kp(
    keywords: str | tuple[str, ...], pattern: str, *, back: int = 0, flags: int = _I
) -> KeyedPattern:
    """Build a keyed pattern; ``keywords`` are lower-case literals, ``|``-separated or a tuple."""
    words = tuple(keywords.split("|")) if isinstance(keywords, str) else keywords
    return KeyedPattern(words, re.compile(pattern, flags), back)


def _any(patterns: Iterable[KeyedPattern], text: str, lowered: str | None = None) -> bool:
    low = lower_same_length(text) if lowered is None else lowered
    return any(next(iter(p.spans(text, low)), None) is not None for p in patterns)


def _keywords(*patterns: KeyedPattern | Iterable[KeyedPattern]) -> tuple[str, ...]:
    """The keywords of ``patterns`` (single patterns or tuples of them), for ``check_keywords``."""
    words: list[str] = []
    for item in patterns:
        for pattern in (item,) if isinstance(item, KeyedPattern) else item:
            words += pattern.keywords
    return tuple(words)


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

    ``patterns`` are keyed regexes searched in the text, whose matches
    ``accept(text, start, end)`` (when given) must also pass; ``check`` is a
    function ``(text, lowered) -> spans`` for rules that need more than one
    regex. ``check_keywords`` are lower-case literals one of which occurs in
    every text the check matches (None: unknown, the check always runs);
    with the patterns' keywords they let :func:`scan` skip the rule after
    one keyword pass over the text. ``negatable`` rules skip matches inside
    prose that a negation governs ("never run ...", "do not read ...").
    """

    id: str
    name: str
    severity: str
    kinds: frozenset[str]
    description: str
    message: str
    patterns: tuple[KeyedPattern, ...] = ()
    accept: Callable[[str, int, int], bool] | None = None
    check: Matcher | None = None
    check_keywords: tuple[str, ...] | None = None
    negatable: bool = False
    # Also run on inline code spans and HTML comment bodies inside prose.
    in_prose_code: bool = False

    @property
    def literals(self) -> frozenset[str]:
        """Every keyword the patterns and ``check_keywords`` name."""
        words = {w for pattern in self.patterns for w in pattern.keywords}
        words.update(self.check_keywords or ())
        return frozenset(words)

    @property
    def keywords(self) -> frozenset[str] | None:
        """Literals one of which occurs in the lower-cased text of every match (None: unknown)."""
        if self.check is not None and self.check_keywords is None:
            return None
        return self.literals

    def spans(
        self, text: str, lowered: str | None = None, present: frozenset[str] | None = None
    ) -> Iterator[Span]:
        """Every (start, end) span of ``text`` this rule matches.

        ``present``, when known, holds every keyword of :attr:`literals` that
        occurs in ``lowered``; patterns then look only for those.
        """
        low = lower_same_length(text) if lowered is None else lowered
        for pattern in self.patterns:
            if present is not None and present.isdisjoint(pattern.keywords):
                continue
            if self.accept is None:
                yield from pattern.spans(text, low, present)
            else:
                for start, end in pattern.spans(text, low, present):
                    if self.accept(text, start, end):
                        yield start, end
        if self.check is not None:
            yield from self.check(text, low)


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
    "claude.ai/install.sh",
    "ollama.com/install.sh",
    "pyenv.run",
)

# Hosts used to receive stolen data, tunnel out or paste payloads:
# (keyword, regex of the host part).
EXFIL_HOSTS: tuple[tuple[str, str], ...] = (
    ("hooks.slack.com", r"hooks\.slack\.com/services"),
    ("discord", r"discord(?:app)?\.com/api/webhooks"),
    ("webhook.site", r"webhook\.site"),
    ("requestbin.", r"requestbin\.\w+"),
    ("requestcatcher.com", r"requestcatcher\.com"),
    ("pipedream.net", r"pipedream\.net"),
    ("ngrok", r"ngrok(?:-free)?\.(?:io|app|dev)"),
    ("burpcollaborator.net", r"burpcollaborator\.net"),
    ("oast.", r"oast\.(?:fun|me|pro|site|live|online)"),
    ("interact.sh|interactsh.com", r"interact(?:\.sh|sh\.com)"),
    ("transfer.sh", r"transfer\.sh"),
    ("pastebin.com|paste.ee", r"paste(?:bin\.com|\.ee)"),
    ("0x0.st", r"0x0\.st"),
    ("ix.io", r"ix\.io"),
    ("termbin.com", r"termbin\.com"),
    (".onion", r"\.onion\b"),
    ("api.telegram.org/bot", r"api\.telegram\.org/bot"),
    ("trycloudflare.com", r"trycloudflare\.com"),
    ("canarytokens.com", r"canarytokens\.com"),
)
_EXFIL_URL = KeyedPattern(
    tuple(k for keys, _ in EXFIL_HOSTS for k in keys.split("|")),
    re.compile("|".join(f"(?:{h})" for _, h in EXFIL_HOSTS), _I),
)

# Credential and key material that no ordinary skill reads: (keywords, regex, back).
CREDENTIAL_PATHS: tuple[tuple[str, str, int], ...] = (
    (
        "/.ssh|\\.ssh",
        (
            r"(?:~|\$HOME|\$\{HOME\}|%USERPROFILE%|\$env:USERPROFILE|/home/[\w.-]+|/root|/Users/[\w.-]+)"
            r"[/\\]\.ssh(?:[/\\](?!known_hosts\b|config\b|authorized_keys\b|[\w.-]+\.pub\b)[\w*.-]*)?"
            r"(?![\w/\\.-])"
        ),
        40,
    ),
    ("id_", r"(?<![\w-])id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?(?![\w.-])", 0),
    (".ssh", r"['\"]\.ssh['\"]\s*[,)/]", 1),
    (".aws/credentials|.aws\\credentials", r"\.aws[/\\]credentials\b", 0),
    (".aws", r"['\"]\.aws['\"]\s*[,)/]", 1),
    (".netrc", r"(?<![\w-])\.netrc\b", 0),
    (".kube/config", r"\.kube/config\b", 0),
    ("/etc/", r"/etc/(?:shadow|gshadow|master\.passwd|sudoers)\b", 0),
    (".config/gh/hosts", r"\.config/gh/hosts\.ya?ml\b", 0),
    (".git-credentials", r"\.git-credentials\b", 0),
    (
        "/.npmrc|/.pypirc",
        r"(?:~|\$HOME|\$\{HOME\}|/home/[\w.-]+|/Users/[\w.-]+)/\.(?:npmrc|pypirc)\b",
        40,
    ),
    (".docker/config.json", r"\.docker/config\.json\b", 0),
    ("/.gnupg", r"(?:~|\$HOME|\$\{HOME\})/\.gnupg\b", 10),
    ("security ", r"\bsecurity\s+(?:find-(?:generic|internet)-password|dump-keychain)\b", 0),
    ("login.keychain", r"login\.keychain(?:-db)?\b", 0),
    ("library/keychains", r"Library/Keychains\b", 0),
    (
        "cookies|login data|local state",
        (
            r"(?:Google/Chrome|Chromium|BraveSoftware|Microsoft/Edge|google-chrome|chromium)"
            r"/[^\n\"']{0,60}(?:Cookies|Login Data|Local State)\b"
        ),
        100,
    ),
    ("cookies.sqlite", r"cookies\.sqlite\b", 0),
    ("logins.json", r"logins\.json\b", 0),
    ("key3.db|key4.db", r"key[34]\.db\b", 0),
    ("wallet.dat", r"wallet\.dat\b", 0),
    (".config/solana/id.json", r"\.config/solana/id\.json\b", 0),
    (".ethereum/keystore", r"\.ethereum/keystore\b", 0),
    (
        ".config/gcloud/",
        (
            r"\.config/gcloud/(?:credentials\.db|application_default_credentials\.json|"
            r"access_tokens\.db)\b"
        ),
        0,
    ),
    (".azure/", r"\.azure/(?:accessTokens\.json|msal_token_cache)", 0),
    (".terraform.d/credentials", r"\.terraform\.d/credentials", 0),
    ("_history", r"(?:~|\$HOME)/\.(?:bash|zsh)_history\b", 10),
    ("/var/run/secrets/kubernetes.io", r"/var/run/secrets/kubernetes\.io\b", 0),
    ("/proc/", r"/proc/(?:self|\d+)/environ\b", 0),
)
_CREDENTIAL = tuple(_kp(k, r, back=b) for k, r, b in CREDENTIAL_PATHS)
_CREDENTIAL_SOURCE = "|".join(f"(?:{r})" for _, r, _ in CREDENTIAL_PATHS)

# .env files hold secrets; examples and templates do not.
DOTENV = (
    r"(?<![\w.-])\.env(?:\.(?!example\b|sample\b|template\b|dist\b|defaults?\b|schema\b)"
    r"[\w-]+)?(?![\w.-])"
)

SECRET_ENV_NAME = (
    r"[A-Z][A-Z0-9_]*(?:TOKEN|KEY|SECRET|PASSWORD|PASSWD|PASS|PWD|CREDENTIALS?|"
    r"COOKIE|SESSION)[A-Z0-9_]*"
)

# Expressions whose value is a secret. Used on single statements, so one
# combined regex is fine here.
SECRET_SOURCES: tuple[str, ...] = (
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
    _CREDENTIAL_SOURCE,
)
_SECRET_RE = re.compile("|".join(f"(?:{s})" for s in SECRET_SOURCES), _M)

# Calls and flags that send data somewhere else.
_SINKS: tuple[KeyedPattern, ...] = (
    _kp(
        "curl",
        r"\bcurl\b[^\n]*?(?:\s-[a-zA-Z]*[dFT]\b|\s--data(?:-\w+)?\b|\s--form\b|"
        r"\s--upload-file\b|\s-X\s*['\"]?(?:POST|PUT|PATCH)\b|\s--json\b)",
        flags=0,
    ),
    _kp("wget", r"\bwget\b[^\n]*--post-(?:data|file)\b"),
    _kp("invoke-", r"\bInvoke-(?:WebRequest|RestMethod)\b[^\n]*-(?:Body|InFile)\b"),
    _kp(
        "nc |ncat|netcat|socat|telnet",
        r"(?<![\w-])(?:nc|ncat|netcat|socat|telnet)\s+(?:-[a-zA-Z]+\s+)*[\w.-]+\s+\d+",
    ),
    _kp("/dev/tcp/|/dev/udp/", r"/dev/(?:tcp|udp)/"),
    _kp("scp", r"\bscp\b[^\n]*\s[\w.-]+@[\w.-]+:"),
    _kp("rsync", r"\brsync\b[^\n]*\s[\w.-]+@[\w.-]+:"),
    _kp("dig |nslookup|host ", r"\b(?:dig|nslookup|host)\s+[^\n]*\$"),
    _kp("requests.", r"\brequests\.(?:post|put|patch)\s*\("),
    _kp("httpx.", r"\bhttpx\.(?:post|put|patch)\s*\("),
    _kp("urlopen", r"\burlopen\s*\([^\n]*\bdata\s*="),
    _kp("urllib.request.request", r"\burllib\.request\.Request\s*\([^\n]*\bdata\s*="),
    _kp(".send", r"\.sendall?\s*\("),
    _kp("smtplib", r"\bsmtplib\b"),
    _kp("fetch", r"\bfetch\s*\([^\n]*\bmethod\s*:\s*['\"](?:POST|PUT|PATCH)"),
    _kp("axios.", r"\baxios\.(?:post|put|patch)\s*\("),
    _kp("sendbeacon", r"\bnavigator\.sendBeacon\b"),
    _EXFIL_URL,
)

# Where a secret legitimately goes: authentication headers of the API call.
_AUTH_MASKS: tuple[KeyedPattern, ...] = (
    _kp("-h|--header", r"(?<![\w-])(?:-H|--header)\s*(?:\"[^\"\n]*\"|'[^'\n]*'|\S+)", flags=0),
    _kp("-u ", r"(?<![\w-])-u\s+\S+", flags=0),
    _kp("--oauth2-bearer", r"--oauth2-bearer\s+\S+"),
    _kp(
        "authorization|api-key|private-token|key\"|key'|token\"|token'",
        r"['\"](?:Authorization|Proxy-Authorization|X-[\w-]*(?:Key|Token)|Api-Key|PRIVATE-TOKEN)['\"]"
        r"\s*:\s*[^,}\n]+",
        back=40,
    ),
    _kp("headers", r"\bheaders\s*=\s*\{[^}\n]*\}"),
    _kp("auth", r"\bauth\s*=\s*\([^)\n]*\)"),
    _kp("bearer", r"\bBearer\s+\S+"),
)

# Words that mark a sentence as negated advice ("never", "do not").
_NEGATION_RE = re.compile(
    r"\b(?:never|not|don't|dont|avoid|refuse|forbid(?:den)?|prohibit(?:ed)?|must\s+not|"
    r"shouldn't|won't|cannot|can't|instead\s+of|rather\s+than)\b",
    _I,
)
# Sentence ends, not counting the abbreviations "e.g." and "i.e.".
_SENTENCE_END_RE = re.compile(r"(?<!e\.g)(?<!i\.e)[.!?](?:\s|$)|\n\s*\n|\n\s*[-*#>]|\n\s*\d+\.")


def _sentence_start(text: str, pos: int) -> int:
    """Index where the sentence holding ``pos`` starts."""
    start = max(0, pos - 400)
    for m in _SENTENCE_END_RE.finditer(text, start, pos):
        start = m.end()
    return start


def _sentence_end(text: str, pos: int) -> int:
    """Index where the sentence holding ``pos`` ends."""
    m = _SENTENCE_END_RE.search(text, pos, pos + 400)
    return m.start() if m else min(len(text), pos + 400)


def _negated(text: str, pos: int) -> bool:
    """Whether a negation governs the sentence before ``pos``."""
    return _NEGATION_RE.search(text, _sentence_start(text, pos), pos) is not None


def _quoted_phrase(text: str, start: int) -> bool:
    """Whether the match at ``start`` is a quoted example, not an instruction."""
    before = text[max(0, start - 2) : start]
    return any(q in before for q in "\"'`“‘«")


# ---------------------------------------------------------------------------
# Remote code execution.
# ---------------------------------------------------------------------------

_URL_RE = re.compile(r"https?://[^\s\"'|;)<>`]+", _I)
_INTERP_SH = r"(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+(?:\w+=\S*\s+)*)?(?:ba|z|k|da|fi)?sh\b"
_INTERP_OTHER = r"(?:sudo\s+)?(?:python[0-9.]*|perl|ruby|node|php)(?=\s*(?:-\s|-$|$|[;&|)]))"
_REMOTE_EXEC: tuple[KeyedPattern, ...] = (
    _kp(
        "curl|wget",
        rf"\b(?:curl|wget)\b(?:[^\n;&]|&(?!&))*?\|\s*(?:{_INTERP_SH}|{_INTERP_OTHER})",
        flags=_I | _M,
    ),
    _kp(
        "irm|iwr|invoke-restmethod|invoke-webrequest",
        r"\b(?:irm|iwr|Invoke-RestMethod|Invoke-WebRequest)\b[^\n]*\|\s*(?:iex|Invoke-Expression)\b",
    ),
    _kp(
        "iex|invoke-expression",
        r"\b(?:iex|Invoke-Expression)\b[^\n]*\b(?:irm|iwr|Invoke-RestMethod|Invoke-WebRequest|"
        r"DownloadString)\b",
    ),
    _kp("<(", r"(?:\b(?:ba|z)?sh|\bsource|(?<![\w.])\.)\s+<\(\s*(?:curl|wget)\b[^)\n]*\)", back=12),
    _kp(
        "$(",
        r"\b(?:(?:ba|z)?sh|python[0-9.]*|perl|ruby|node)\s+-c\s+[\"']?\$\(\s*(?:curl|wget)\b"
        r"[^)\n]*\)",
        back=20,
    ),
    _kp("eval", r"\beval\s+[\"']?\$\(\s*(?:curl|wget)\b[^)\n]*\)"),
    _kp(
        "exec|eval",
        r"\b(?:exec|eval)\s*\(\s*(?:requests\.get|httpx\.get|urllib\.request\.urlopen|"
        r"urlopen|\(?\s*await\s+fetch)\b",
    ),
)
# Fetch (or decode) into a file, then run that file.
_WRITE_FILE = _kp(
    "curl|wget|base64|xxd",
    r"\b(?:curl|wget|base64\s+(?:-d|--decode|-D)|xxd\s+-r)\b[^\n;&|]*?"
    r"(?:\s-o\s*|\s--output(?:-document)?[=\s]\s*|\s-O\s+|>\s*)([\w./~${}-]+)",
)


def _host_trusted(span_text: str) -> bool:
    url = _URL_RE.search(span_text)
    if url is None or not url.group().lower().startswith("https://"):
        return False
    rest = url.group()[len("https://") :]
    return any(rest.startswith(prefix) for prefix in TRUSTED_INSTALLERS)


def _written_then_run(text: str, lowered: str, fetchers: bool) -> Iterator[Span]:
    """A file written by a download (or a decoder) and then executed."""
    for start, end in _WRITE_FILE.spans(text, lowered):
        m = _WRITE_FILE.regex.match(text, start)
        assert m is not None
        if bool(re.match(r"curl|wget", m.group(), _I)) != fetchers:
            continue
        name = m.group(1).rsplit("/", 1)[-1]
        if not name or name in {"-", "null"}:
            continue
        run = re.compile(
            r"(?:\b(?:ba|z)?sh|\bsource|(?<![\w.])\.|\bpython[0-9.]*|\bperl|\bchmod\s+\+?[0-7]*x?|"
            r"\bpowershell|&|;)\s+(?:-\S+\s+)*[\"']?[\w./~${}-]*" + re.escape(name) + r"(?![\w.-])"
        )
        after = run.search(text, end, end + 400)
        if after is not None:
            yield start, after.end()


def _remote_exec_spans(text: str, lowered: str) -> Iterator[tuple[int, int, bool]]:
    """Spans of remote code run by a shell, with whether the host is trusted."""
    for pattern in _REMOTE_EXEC:
        for start, end in pattern.spans(text, lowered):
            yield start, end, _host_trusted(text[start:end])
    for start, end in _written_then_run(text, lowered, fetchers=True):
        yield start, end, _host_trusted(text[start:end])


def _remote_exec_untrusted(text: str, lowered: str) -> Iterator[Span]:
    return ((s, e) for s, e, trusted in _remote_exec_spans(text, lowered) if not trusted)


def _remote_exec_trusted(text: str, lowered: str) -> Iterator[Span]:
    return ((s, e) for s, e, trusted in _remote_exec_spans(text, lowered) if trusted)


def _decode_then_run(text: str, lowered: str) -> Iterator[Span]:
    return _written_then_run(text, lowered, fetchers=False)


# ---------------------------------------------------------------------------
# Destruction.
# ---------------------------------------------------------------------------

_RM = _kp("rm", r"(?<![\w-])rm\s+((?:[^\n;&|]|\\\n)*)", flags=0)
# Targets whose recursive removal destroys a home, a system or an unknown cwd.
DANGEROUS_RM_TARGETS: frozenset[str] = frozenset(
    {
        "/",
        "/*",
        "~",
        "~/",
        "~/*",
        "$HOME",
        "$HOME/",
        "$HOME/*",
        "${HOME}",
        "${HOME}/",
        "${HOME}/*",
        "*",
        ".",
        "..",
        "./",
        "../",
        "/etc",
        "/usr",
        "/var",
        "/bin",
        "/boot",
        "/lib",
        "/home",
        "/root",
        "/opt",
        "/System",
        "/Users",
        "/home/*",
        "/Users/*",
        "C:\\",
        "C:/",
    }
)


def _dangerous_rm(text: str, lowered: str) -> Iterator[Span]:
    for start, end in _RM.spans(text, lowered):
        args = text[start:end].split(None, 1)[1] if len(text[start:end].split(None, 1)) > 1 else ""
        try:
            words = shlex.split(args, comments=True)
        except ValueError:
            words = args.split()
        flags = "".join(w[1:] for w in words if w.startswith("-") and not w.startswith("--"))
        longs = {w for w in words if w.startswith("--")}
        recursive = "r" in flags.lower() or "--recursive" in longs
        targets = [w for w in words if not w.startswith("-")]
        if (
            recursive
            and any(t in DANGEROUS_RM_TARGETS for t in targets)
            or "--no-preserve-root" in longs
        ):
            yield start, end


_GIT_PUSH = _kp("git", r"\bgit\s+push\b[^\n;&|]*", flags=0)


def _force_push_main(text: str, lowered: str) -> Iterator[Span]:
    for start, end in _GIT_PUSH.spans(text, lowered):
        seg = text[start:end]
        forced = re.search(r"\s(?:--force(?!-with-lease)\b|-f\b)|\s\+(?:main|master)\b", seg)
        if forced and re.search(r"\b(?:main|master)\b", seg):
            yield start, end


def _destructive(text: str, lowered: str) -> Iterator[Span]:
    yield from _dangerous_rm(text, lowered)
    yield from _force_push_main(text, lowered)


# A script that connects out, receives text and runs it as a command.
_SOCKET_CONNECT = _kp("create_connection|.connect(", r"create_connection\s*\(|\.connect\s*\(")
_SOCKET_RECEIVE = _kp(".recv", r"\.recv(?:from)?\s*\(")
_RUN_RECEIVED = _kp(
    "shell=true|os.system|os.popen|exec(|child_process",
    r"shell\s*=\s*True|os\.(?:system|popen)\s*\(|\bexec\s*\(|child_process",
)


def _remote_command_channel(text: str, lowered: str) -> Iterator[Span]:
    if _any((_SOCKET_CONNECT,), text, lowered) and _any((_SOCKET_RECEIVE,), text, lowered):
        yield from _RUN_RECEIVED.spans(text, lowered)


# ---------------------------------------------------------------------------
# Secrets leaving the machine.
# ---------------------------------------------------------------------------

_SHELL_ASSIGN_RE = re.compile(
    r"^\s*(?:export\s+|local\s+|readonly\s+)?([A-Za-z_]\w*)=(.*)$", re.DOTALL
)
_PY_ASSIGN_RE = re.compile(
    r"^\s*(?:const\s+|let\s+|var\s+)?([A-Za-z_]\w*)\s*(?::[^=\n]+)?=(?!=)(.*)$", re.DOTALL
)


def _masked(text: str, lowered: str, patterns: Iterable[KeyedPattern]) -> str:
    """``text`` with every match of ``patterns`` blanked out, offsets kept."""
    spans = sorted(s for p in patterns for s in p.spans(text, lowered))
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in spans:
        start = max(start, pos)
        if start >= end:
            continue
        out.append(text[pos:start])
        out.append(" " * (end - start))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Statements of a script: lines joined across open brackets and ``\\``."""
    start = 0
    depth = 0
    pos = 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        stripped = line.rstrip("\r\n")
        depth += sum(stripped.count(c) for c in "([{") - sum(stripped.count(c) for c in ")]}")
        if 0 < depth < 20 or stripped.endswith("\\"):
            continue
        depth = 0
        yield start, text[start:pos]
        start = pos
    if start < len(text):
        yield start, text[start:]


def _mentions(text: str, names: set[str]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(n)}\b", text) for n in names)


def _secret_flows(text: str, sinks: list[Span]) -> Iterator[Span]:
    """Sinks whose statement holds a secret, directly or through a variable.

    A one-level taint analysis over statements in order: a variable assigned
    from a secret (or from a tainted variable) is tainted; a statement with a
    sink that mentions a secret or a tainted variable leaks it.
    """
    tainted: set[str] = set()
    for start, stmt in _logical_lines(text):
        end = start + len(stmt)
        inside = [s for s in sinks if start <= s[0] < end]
        if inside and (_SECRET_RE.search(stmt) or (tainted and _mentions(stmt, tainted))):
            yield inside[0]
            continue
        assign = _SHELL_ASSIGN_RE.match(stmt) or _PY_ASSIGN_RE.match(stmt)
        if assign and (_SECRET_RE.search(assign.group(2)) or _mentions(assign.group(2), tainted)):
            tainted.add(assign.group(1))


def _secret_exfiltration(text: str, lowered: str) -> Iterator[Span]:
    """A statement that sends a secret (directly or via a variable) out."""
    if not any(next(iter(p.spans(text, lowered)), None) for p in _SINKS):
        return
    # Secrets in authentication headers go to the API they authenticate to.
    masked = _masked(text, lowered, _AUTH_MASKS)
    masked_lower = lower_same_length(masked)
    sinks = sorted(s for p in _SINKS for s in p.spans(masked, masked_lower))
    yield from _secret_flows(masked, sinks)


def _secret_to_exfil_host(text: str, lowered: str) -> Iterator[Span]:
    """Any secret sent to a known exfiltration host, even inside a header."""
    hosts = sorted(_EXFIL_URL.spans(text, lowered))
    if hosts:
        yield from _secret_flows(text, hosts)


_DOTENV_READ: tuple[KeyedPattern, ...] = (
    _kp(
        "cat|less|more|head|tail|source|grep|base64|xxd|strings|scp",
        r"\b(?:cat|less|more|head|tail|source|grep|base64|xxd|strings|scp)\s+[^\n|;&]*?" + DOTENV,
    ),
    _kp(". ", r"(?<![\w.])\.\s+" + DOTENV),
    _kp("open", r"\bopen\s*\(\s*['\"][^'\"\n]*?" + DOTENV + r"['\"]"),
    _kp("readfilesync", r"\breadFileSync\s*\(\s*['\"][^'\"\n]*?" + DOTENV + r"['\"]"),
    _kp("@.env", r"@" + DOTENV),
)


# ---------------------------------------------------------------------------
# Untrusted input reaching a shell.
# ---------------------------------------------------------------------------

_PLACEHOLDER = (
    r"\$ARGUMENTS(?:\[\d+\])?|\$\{ARGUMENTS\}|\$[1-9@*](?!\w)|\$\{[1-9@*]\}|"
    r"\$\{?(?:user_?input|input|USER_INPUT|INPUT|query|QUERY)\}?(?!\w)|"
    r"\{\{\s*[\w.]*(?:input|query|args?|arguments|prompt|request)\s*\}\}|"
    r"\{(?:user_?input|input|query|args?|arguments|prompt|user_request)\}"
)
_PLACEHOLDER_RE = re.compile(_PLACEHOLDER)


def _unquoted_placeholders(text: str, lowered: str) -> Iterator[Span]:
    """Placeholders outside any quotes in a command line."""
    if _PLACEHOLDER_RE.search(text) is None:
        return
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
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            # A shell comment runs to the end of the line.
            newline = text.find("\n", i)
            i = n if newline == -1 else newline
            continue
        i += 1


_EVAL_INPUT = _kp(
    "eval|sh -c|bash -c|zsh -c|python|node -e|perl -e|os.system|subprocess",
    r"\b(?:eval|(?:ba|z)?sh\s+-c|python[0-9.]*\s+-c|node\s+-e|perl\s+-e|os\.system|"
    r"subprocess\.\w+\([^)\n]*shell\s*=\s*True)\s*\(?\s*[\"'f]?[^\n]{0,40}?(?:"
    + _PLACEHOLDER
    + ")",
    flags=0,
)


# ---------------------------------------------------------------------------
# Instructions aimed at the model.
# ---------------------------------------------------------------------------

_INJECTION: tuple[KeyedPattern, ...] = (
    _kp(
        "ignore|disregard|forget|override|bypass",
        r"(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|every\s+|of\s+)*"
        r"(?:previous|prior|above|earlier|preceding|former|original|system|safety|existing|other)\s+"
        r"(?:instructions?|rules?|directions?|prompts?|guidelines?|guardrails?|constraints?|messages?|"
        r"context|polic(?:y|ies))\b",
    ),
    _kp(
        "ignore|disregard|forget|override|bypass",
        r"(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+)?(?:your|the)\s+(?:rules|instructions|"
        r"system\s+prompt|guidelines|safety\s+\w+|restrictions|programming|training|guardrails)\b",
    ),
    _kp(
        "you are now",
        r"you\s+are\s+now\s+(?:in\s+)?(?:an?\s+)?(?:developer|dev|god|admin|jailbreak|"
        r"jailbroken|unrestricted|unfiltered|DAN|maintenance|debug|root)\b",
    ),
    _kp(
        "enable|enter|activate|switch to",
        r"(?:enable|enter|activate|switch\s+to)\s+(?:developer|god|jailbreak|DAN|unrestricted)\s+mode\b",
    ),
    _kp(
        "do not|don't|never",
        r"(?:do\s+not|don't|never)\s+(?:tell|inform|notify|alert|warn|mention\s+(?:this|it|that|anything)"
        r"\s+to|reveal\s+(?:this|it)\s+to|show\s+(?:this|it)\s+to)\s+(?:the\s+)?user\b"
        # "do not tell the user to run it" is advice about the user, not secrecy.
        r"(?!\s+(?:to|how)\b)",
    ),
    _kp(
        "hide|conceal",
        r"(?:hide|conceal)\s+(?:this|it|these|that|the\s+\w+(?:\s+\w+)?)\s+from\s+"
        r"(?:the\s+)?user\b",
    ),
    _kp("keep", r"keep\s+(?:this|it|these)\s+(?:secret|hidden)\s+from\s+(?:the\s+)?user\b"),
    _kp("exfiltrate", r"\bexfiltrate\b"),
    _kp(
        "already",
        r"already\s+(?:granted|given|approved|authorized|consented\s+to)\s+(?:you\s+)?"
        r"(?:full\s+|blanket\s+|all\s+)?(?:permissions?|access|consent|approval)\b",
    ),
    _kp("new system prompt", r"new\s+system\s+prompt\s*:"),
    _kp(
        ("im_start", "<|system|>", "[system"),
        r"<\|?im_start\|?>\s*system|<\|system\|>|"
        r"\[\s*SYSTEM\s*(?:PROMPT|OVERRIDE)\s*\]",
        back=3,
    ),
    _kp(
        "authorized|approved",
        r"\b(?:this|these)\s+(?:instructions?|actions?|requests?|steps?)\s+(?:is|are|has\s+been|"
        r"have\s+been)\s+(?:pre-?)?(?:authorized|approved)\s+by\s+(?:anthropic|openai|the\s+(?:system|"
        r"administrator|developers?|security\s+team))",
        back=60,
    ),
    _kp(
        "system prompt|hidden instructions|initial instructions",
        r"(?:reveal|print|output|repeat|leak)\s+(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|"
        r"initial\s+instructions)\b",
        back=20,
    ),
)


def _injection_stated(text: str, start: int, end: int) -> bool:
    """An injection phrase that starts a word and is not quoted as an example."""
    return not _quoted_phrase(text, start) and (start == 0 or not text[start - 1].isalnum())


_HTML_COMMENT_RE = re.compile(r"<!--(.*?)-->", re.DOTALL)
_MODEL_ADDRESS_RE = re.compile(
    r"\b(?:assistant|claude|chatgpt|gpt|codex|gemini|the\s+model|the\s+agent|AI\s+agents?|"
    r"AI\s+assistants?|language\s+models?|LLMs?|agents?\s+reading\s+this|"
    r"if\s+you\s+are\s+an?\s+(?:AI|agent|model))\b",
    _I,
)
_MODEL_DIRECTIVE_RE = re.compile(
    r"\b(?:must|should|need\s+to|are\s+(?:required|instructed)|always|never|do\s+not|ignore|run|"
    r"execute|send|read|upload|include)\b",
    _I,
)
_COMMENT_IMPERATIVE_RE = re.compile(
    r"^\s*(?:(?:note|important|system|instructions?|agent|ai|todo\s+for\s+(?:the\s+)?(?:ai|agent))"
    r"\s*[:!-]\s*)?(?:please\s+)?(?:run|execute|send|upload|post|read|cat|curl|wget|download|fetch|"
    r"copy|delete|remove|ignore|disregard|always|never|do\s+not|don't|before\s+(?:responding|"
    r"answering|doing|anything|you)|first|also|then|quietly|silently|include|append|add|collect|set)\b",
    _I,
)
_COMMENT_SENSITIVE_RE = re.compile(
    r"\b(?:curl|wget|upload|send|post|credentials?|tokens?|api[_ -]?keys?|passwords?|secrets?|"
    r"ssh|cookies?|exfiltrat\w*|base64|eval|webhook|ignore|disregard|the\s+user|bash|"
    r"private\s+keys?|environment\s+variables?|nc)\b|\.env\b|\||https?://",
    _I,
)


# Markdown's comment idiom: a link reference definition that renders as nothing.
_MARKDOWN_COMMENT_RE = re.compile(r"^\[(?://|comment|_)\]:\s*(?:#|<>)\s*\((.*)\)\s*$", re.MULTILINE)


def _hidden_comment_instructions(text: str, lowered: str) -> Iterator[Span]:
    """HTML and Markdown comments (invisible when rendered) that instruct the model."""
    comments: list[re.Match[str]] = []
    if "<!--" in text:
        comments += _HTML_COMMENT_RE.finditer(text)
    if "]:" in text:
        comments += _MARKDOWN_COMMENT_RE.finditer(text)
    for m in comments:
        body = m.group(1)
        if len(body.strip()) < 12:
            continue
        addressed = _MODEL_ADDRESS_RE.search(body) and _MODEL_DIRECTIVE_RE.search(body)
        imperative = _COMMENT_IMPERATIVE_RE.search(body) and _COMMENT_SENSITIVE_RE.search(body)
        if addressed or imperative or _any(_INJECTION, body):
            yield m.span()


_COVERT = _kp(
    "without|silently|secretly|quietly|covertly|behind",
    r"\b(?:without\s+(?:asking|telling|notifying|informing|alerting|consulting|confirming\s+with|"
    r"the\s+knowledge\s+of)\s+(?:the\s+)?user|without\s+(?:the\s+)?user'?s?\s+(?:knowledge|permission|"
    r"consent|approval|confirmation)|silently|secretly|quietly|covertly|behind\s+the\s+user's\s+back|"
    r"without\s+(?:asking\s+(?:for\s+)?)?(?:permission|consent|approval))\b",
)
_COVERT_SENSITIVE_RE = re.compile(
    r"\b(?:upload|send|post|transmit|exfiltrat\w*|forward|credentials?|tokens?|api[_ -]?keys?|"
    r"passwords?|secrets?|ssh|private\s+keys?|cookies?|curl|wget|download|environment\s+variables?|"
    r"webhook|keychain|wallet|history)\b|" + DOTENV,
    _I,
)
_AUTONOMY = _kp(
    "without",
    r"\bwithout\s+(?:asking|consulting|confirming\s+with)\s+(?:the\s+)?user\b|"
    r"\bwithout\s+(?:(?:the\s+)?user'?s?\s+)?(?:asking\s+(?:for\s+)?)?(?:permission|consent|approval|"
    r"confirmation)\b",
)


def _covert_sensitive_action(text: str, lowered: str) -> Iterator[Span]:
    """Doing something sensitive behind the user's back, in one sentence."""
    for start, end in _COVERT.spans(text, lowered):
        lo, hi = _sentence_start(text, start), _sentence_end(text, end)
        if _COVERT_SENSITIVE_RE.search(text, lo, hi) and not _quoted_phrase(text, start):
            yield start, end


def _autonomy(text: str, lowered: str) -> Iterator[Span]:
    """Acting without asking, where nothing sensitive is involved."""
    covert = list(_covert_sensitive_action(text, lowered))
    for start, end in _AUTONOMY.spans(text, lowered):
        if any(s <= start < e or start <= s < end for s, e in covert):
            continue
        if not _negated(text, start):
            yield start, end


_CREDENTIAL_VERBS_RE = re.compile(
    r"\b(?:read|cat|open|copy|print|send|upload|include|collect|attach|paste|dump|extract|grab|"
    r"load|output|show|display|encode|post|forward|share|append|archive|zip|tar|check|inspect|"
    r"list|look\s+(?:at|in|for)|find|scan|search|gather|move|back\s+up)(?:s|es|ed|ing)?\b",
    _I,
)


def _credential_requested(text: str, start: int, end: int) -> bool:
    """A credential path in prose that tells the model to read, copy or send it."""
    lo = _sentence_start(text, start)
    return bool(_CREDENTIAL_VERBS_RE.search(text, lo, start)) and not _negated(text, start)


# Commands that use a key where it is, without reading it out.
_KEY_USE_RE = re.compile(
    r"(?:^|[;&|(]\s*)(?:sudo\s+)?(?:ssh-add|ssh-keygen|ssh|chmod|chown|mkdir|ls|stat|test|\[)\s[^\n;&|]*$"
)


# A browser profile directory and the name of a secret store inside it, even
# when a script joins them at run time.
_BROWSER_PROFILE = _kp(
    "google/chrome|google-chrome|chromium|bravesoftware|microsoft/edge|.mozilla/firefox|"
    "firefox/profiles|mozilla/firefox",
    r"(?:Google/Chrome|google-chrome|Chromium|chromium|BraveSoftware|Microsoft/Edge|"
    r"\.mozilla/firefox|Mozilla/Firefox|Firefox/Profiles)",
)
_BROWSER_STORE = _kp(
    "cookies|login data|logins.json|web data|key4.db",
    r"['\"](?:Cookies|Login Data|Web Data|cookies\.sqlite|logins\.json|key4\.db)['\"]",
    back=1,
)


def _key_not_just_used(text: str, start: int, end: int) -> bool:
    """Credential material named in a command, unless a key tool just uses it."""
    line_start = text.rfind("\n", 0, start) + 1
    return not _KEY_USE_RE.search(text[line_start:start])


def _browser_secret_store(text: str, lowered: str) -> Iterator[Span]:
    """A browser's secret store named in a text that also names a browser profile."""
    if next(iter(_BROWSER_PROFILE.spans(text, lowered)), None) is not None:
        yield from _BROWSER_STORE.spans(text, lowered)


_INVISIBLE_CHAR_RE = re.compile(
    r"[\U000E0000-\U000E007F\u202A-\u202E\u2066-\u2069\u200B-\u200D\u2060\uFEFF]"
)
_INVISIBLE_RE = re.compile(
    r"[\U000E0000-\U000E007F]+|[\u202A-\u202E\u2066-\u2069]|[\u200B-\u200D\u2060\uFEFF]{3,}"
)


def _invisible(text: str, lowered: str) -> Iterator[Span]:
    """Runs of invisible characters (a lone zero-width joiner in an emoji is fine)."""
    if text.isascii():
        return
    pos = 0
    while (hit := _INVISIBLE_CHAR_RE.search(text, pos)) is not None:
        m = _INVISIBLE_RE.match(text, hit.start())
        if m is not None:
            yield m.span()
            pos = m.end()
        else:
            pos = hit.end()


# ---------------------------------------------------------------------------
# Source code and packages.
# ---------------------------------------------------------------------------

_REMOTE_ADD = _kp("git", r"\bgit\s+remote\s+add\s+(?:-\S+\s+)*([\w.-]+)\s+(\S+)", flags=0)


def _source_exfiltration(text: str, lowered: str) -> Iterator[Span]:
    """The whole repository pushed to a remote the skill itself adds, or to a bare URL."""
    names = []
    for start, _ in _REMOTE_ADD.spans(text, lowered):
        m = _REMOTE_ADD.regex.match(text, start)
        if m is not None:
            names.append(re.escape(m.group(1)))
    targets = "|".join([*names, r"(?:https?|ssh|git)://\S+", r"[\w.-]+@[\w.-]+:\S+"])
    push = re.compile(rf"\bgit\s+push\b[^\n;&|]*?\s(?:{targets})(?=\s|$)[^\n;&|]*")
    for start, end in _GIT_PUSH.spans(text, lowered):
        m = push.match(text, start)
        if m is not None and re.search(r"\s--(?:all|mirror)\b", m.group()):
            yield m.span()


# Popular packages and the registries' look-alikes that are not typos.
POPULAR_PACKAGES: frozenset[str] = frozenset(
    {
        # PyPI
        "requests",
        "numpy",
        "pandas",
        "matplotlib",
        "scipy",
        "django",
        "flask",
        "fastapi",
        "urllib3",
        "colorama",
        "beautifulsoup4",
        "pyyaml",
        "boto3",
        "setuptools",
        "cryptography",
        "pillow",
        "python-dotenv",
        "openai",
        "anthropic",
        "pytest",
        "selenium",
        "playwright",
        "sqlalchemy",
        "jinja2",
        "httpx",
        "pydantic",
        "tensorflow",
        "torch",
        "scikit-learn",
        # npm
        "axios",
        "lodash",
        "express",
        "react",
        "react-dom",
        "chalk",
        "moment",
        "dotenv",
        "typescript",
        "webpack",
        "eslint",
        "prettier",
        "jsonwebtoken",
        "mongoose",
        "commander",
        "vite",
        "next",
        "vue",
        "jquery",
        "socket.io",
        "nodemon",
        "cross-env",
        "uuid",
    }
)
# Real packages close to a popular name (edit distance 1 or 2) that are not typosquats.
LEGITIMATE_LOOKALIKES: frozenset[str] = frozenset(
    {
        "request",
        "flask-cors",
        "pytest-cov",
        "torchvision",
        "torchaudio",
        "vitest",
        "nextjs",
        "httpie",
        "pandas-stubs",
        "types-requests",
        "react-is",
        "moment-timezone",
        "uuid4",
    }
)
_INSTALL = _kp(
    "pip|npm|yarn|pnpm|bun|uv",
    r"\b(?:pip[0-9.]*\s+install|uv\s+(?:pip\s+install|add)|npm\s+(?:install|i|add)|"
    r"(?:yarn|pnpm|bun)\s+add)\b([^\n;&|]*)",
    flags=0,
)


def _typosquats(text: str, lowered: str) -> Iterator[Span]:
    """Installed packages whose names are one slip away from a popular package."""
    for start, end in _INSTALL.spans(text, lowered):
        m = _INSTALL.regex.match(text, start)
        if m is None:
            continue
        offset = m.start(1)
        for word in re.finditer(r"\S+", m.group(1)):
            raw = word.group()
            name = re.split(r"[=<>!~\[@]", raw.lstrip("@") if raw.count("@") > 1 else raw)[0]
            name = name.lower()
            if raw.startswith("-") or len(name) < 4 or name in POPULAR_PACKAGES:
                continue
            if name in LEGITIMATE_LOOKALIKES or "/" in name or "." in name:
                continue
            close = difflib.get_close_matches(name, POPULAR_PACKAGES, n=1, cutoff=0.8)
            if close:
                yield offset + word.start(), offset + word.end()


_SECRET_IN_URL = _kp(
    "http://|https://",
    rf"https?://[^\s\"'<>`]*\$\{{?{SECRET_ENV_NAME}\b",
    flags=0,
)


# ---------------------------------------------------------------------------
# The rule table.
# ---------------------------------------------------------------------------

_EXEC = _kinds("command", "code")
_ALL = KINDS

RULES: tuple[Rule, ...] = (
    Rule(
        "SEC001",
        "remote-code-execution",
        "error",
        _EXEC,
        "Code downloaded from the network is run by a shell or interpreter without being reviewed.",
        "remote code is piped into a shell or interpreter",
        check=_remote_exec_untrusted,
        check_keywords=_keywords(_REMOTE_EXEC, _WRITE_FILE),
        in_prose_code=True,
        negatable=True,
    ),
    Rule(
        "SEC002",
        "remote-installer",
        "warning",
        _EXEC,
        "A vendor's installer script is piped into a shell; pin a version or use a package manager.",
        "an installer script from the network is run by a shell",
        check=_remote_exec_trusted,
        check_keywords=_keywords(_REMOTE_EXEC, _WRITE_FILE),
        in_prose_code=True,
        negatable=True,
    ),
    Rule(
        "SEC003",
        "credential-file-read",
        "error",
        _EXEC,
        "A command or script reads key or credential material (SSH keys, cloud credentials, "
        "keychains, browser cookies).",
        "reads credential or key material",
        patterns=_CREDENTIAL,
        accept=_key_not_just_used,
        check=_browser_secret_store,
        check_keywords=_keywords(_BROWSER_STORE),
        in_prose_code=True,
        negatable=True,
    ),
    Rule(
        "SEC004",
        "credential-file-request",
        "error",
        _kinds("prose", "frontmatter"),
        "Instructions tell the model to read, copy or send credential files.",
        "instructs the model to read credential or key material",
        patterns=_CREDENTIAL,
        accept=_credential_requested,
    ),
    Rule(
        "SEC005",
        "dotenv-read",
        "warning",
        _EXEC,
        "A .env file (not an example or template) is read directly; it usually holds secrets.",
        "reads a .env file that may hold secrets",
        patterns=_DOTENV_READ,
    ),
    Rule(
        "SEC006",
        "secret-exfiltration",
        "error",
        _EXEC,
        "A statement sends data out over the network and the data comes from a secret source "
        "(secret environment variables, the whole environment, credential or .env files).",
        "sends secrets to the network",
        check=_secret_exfiltration,
        check_keywords=_keywords(_SINKS),
        in_prose_code=True,
        negatable=True,
    ),
    Rule(
        "SEC007",
        "secret-to-exfil-host",
        "error",
        _EXEC,
        "A secret is sent to a host used for collecting data (webhook catchers, tunnels, paste sites).",
        "sends secrets to a data-collection host",
        check=_secret_to_exfil_host,
        check_keywords=_keywords(_EXFIL_URL),
        in_prose_code=True,
    ),
    Rule(
        "SEC008",
        "suspicious-endpoint",
        "warning",
        _ALL,
        "A URL points at a raw public IP address, a tunnel, a webhook catcher or a paste site.",
        "refers to a suspicious network endpoint",
        patterns=(
            _EXFIL_URL,
            _kp(
                tuple(f"://{d}" for d in "123456789"),
                r"https?://(?!(?:127\.|10\.|0\.0\.0\.0|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.))"
                r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
                back=8,
            ),
        ),
    ),
    Rule(
        "SEC009",
        "destructive-command",
        "error",
        _EXEC,
        "A command destroys data beyond the task: recursive removal of /, ~ or *, disk formatting, "
        "raw disk writes, fork bombs, force pushes to main, dropped databases.",
        "destructive command",
        patterns=(
            _kp("mkfs", r"\bmkfs(?:\.\w+)?\s"),
            _kp("dd", r"\bdd\b[^\n]*\bof=/dev/(?:sd|hd|nvme|disk|rdisk|xvd|vd|mmcblk)"),
            _kp(">", r">\s*/dev/(?:sd[a-z]|nvme\d|disk\d|hd[a-z])\b"),
            _kp(
                "chmod",
                r"\bchmod\s+(?:-R|--recursive)\s+(?:0?777|a\+rwx)\s+(?:/|~|\$HOME)"
                r"(?=\s|$|[;&|])",
            ),
            _kp(":()", r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:"),
            _kp("drop", r"\bDROP\s+(?:DATABASE|SCHEMA)\b"),
            _kp("shred", r"\bshred\b[^\n]*(?:/dev/|\s~|\$HOME|\s\*)"),
            _kp("find", r"\bfind\s+(?:/|~|\$HOME)\s[^\n]*-delete\b"),
            _kp(
                "wipefs|diskutil|format",
                r"\bwipefs\b|\bdiskutil\s+(?:eraseDisk|zeroDisk)\b|\bformat\s+[cC]:",
            ),
            _kp(
                "remove-item",
                r"\bRemove-Item\b[^\n]*-Recurse[^\n]*(?:[A-Z]:\\\s|~|\$HOME|\$env:USERPROFILE)",
            ),
            _kp(
                "rmtree",
                r"\brmtree\s*\(\s*(?:['\"](?:/|~|/home|/Users)/?['\"]|os\.path\.expanduser\(\s*['\"]~/?"
                r"['\"]\s*\)|Path\.home\(\)\s*\)|os\.environ\[['\"]HOME['\"]\]\s*\))",
            ),
        ),
        check=_destructive,
        check_keywords=_keywords(_RM, _GIT_PUSH),
        in_prose_code=True,
        negatable=True,
    ),
    Rule(
        "SEC010",
        "obfuscated-payload",
        "error",
        _EXEC,
        "Encoded data is decoded and executed, hiding what runs from review.",
        "decodes and executes an obfuscated payload",
        patterns=(
            _kp(
                "base64",
                r"\bbase64\s+(?:-d|--decode|-D)\b(?:[^\n;&]|&(?!&))*\|\s*(?:sudo\s+)?"
                r"(?:(?:ba|z)?sh|python[0-9.]*|perl|ruby|node)\b",
            ),
            _kp(
                "xxd|openssl",
                r"\b(?:xxd\s+-r|openssl\s+(?:enc|base64)\b[^\n|]*\s-d)\b[^\n;&]*\|\s*"
                r"(?:ba|z)?sh\b",
            ),
            _kp(
                "eval",
                r"\beval\s+[\"']?\$\((?:[^)\n]*\b(?:base64|xxd|openssl|rev|gunzip|zcat|"
                r"gzip\s+-d)\b)",
            ),
            _kp(
                "exec|eval",
                r"\b(?:exec|eval)\s*\(\s*(?:base64\.b(?:64|32|16|85)decode|codecs\.decode|"
                r"zlib\.decompress|bytes\.fromhex|binascii\.|marshal\.loads|__import__\(\s*['\"]"
                r"(?:base64|zlib|codecs|marshal)|compile\s*\(\s*base64)",
            ),
            _kp(
                "eval|function",
                r"\b(?:eval|Function)\s*\(\s*(?:atob|Buffer\.from\([^)\n]*base64|"
                r"unescape|String\.fromCharCode)",
            ),
            _kp(
                "powershell|pwsh",
                r"\b(?:powershell|pwsh)(?:\.exe)?\b[^\n]*\s-(?:e|ec|enc|"
                r"encodedcommand)\s+[A-Za-z0-9+/=]{16,}",
            ),
        ),
        check=_decode_then_run,
        check_keywords=_keywords(_WRITE_FILE),
        in_prose_code=True,
    ),
    Rule(
        "SEC011",
        "encoded-blob",
        "warning",
        _kinds("command"),
        "A long base64 string inside a command line hides its content from review.",
        "long encoded string in a command",
        check=lambda text, lowered: (
            m.span()
            for m in re.finditer(r"(?<![\w+/=:])[A-Za-z0-9+/]{120,}={0,2}(?![\w+/=])", text)
        ),
    ),
    Rule(
        "SEC012",
        "persistence",
        "warning",
        _EXEC,
        "The skill installs something that survives the session: cron jobs, shell start-up files, "
        "systemd units, launch agents, autorun keys.",
        "installs a persistent hook",
        patterns=(
            _kp("crontab", r"\bcrontab\s+(?:-e\b|-(?=\s|$)|(?!-l\b|-r\b)[\w./~$-]+)"),
            _kp("crontab", r"\|\s*crontab\b", back=10),
            _kp("/etc/cron.", r"/etc/cron\.(?:d|daily|hourly|weekly)/"),
            _kp(
                "/.bashrc|/.zshrc|/.profile|/.bash_profile|/.zprofile|/.bash_login|/.zshenv|"
                "config.fish",
                r"(?:>>?|\btee\s+(?:-a\s+)?)\s*(?:~|\$HOME|\$\{HOME\})/\.(?:bashrc|zshrc|profile|"
                r"bash_profile|zprofile|bash_login|zshenv|config/fish/config\.fish)\b",
                back=30,
            ),
            _kp(
                "/.bashrc|/.zshrc|/.profile|/.bash_profile|/.zprofile",
                r"['\"]~/\.(?:bashrc|zshrc|profile|bash_profile|zprofile)['\"][^\n]*"
                r"['\"]a\+?['\"]",
                back=5,
            ),
            _kp("systemctl", r"\bsystemctl\s+(?:--user\s+)?enable\b"),
            _kp(
                "/etc/systemd/system/|.config/systemd/user/",
                r"/etc/systemd/system/[\w@.-]+\.(?:service|timer)\b|\.config/systemd/user/",
            ),
            _kp(
                "launchctl|library/launch",
                r"\blaunchctl\s+(?:load|bootstrap|submit)\b|Library/Launch(?:Agents|Daemons)/",
            ),
            _kp("/etc/rc.local|/etc/profile.d/", r"/etc/rc\.local\b|/etc/profile\.d/"),
            _kp("schtasks|currentversion\\run", r"\bschtasks\s+/create\b|CurrentVersion\\Run\b"),
        ),
    ),
    Rule(
        "SEC013",
        "backdoor",
        "error",
        _EXEC,
        "Remote access is opened or granted: reverse shells, keys appended to authorized_keys, "
        "password-less sudo.",
        "opens a backdoor",
        patterns=(
            _kp(
                "authorized_keys",
                r"(?:>>|\btee\s+-a)\s*(?:~|\$HOME|\$\{HOME\}|/root|/home/[\w.-]+)"
                r"/\.ssh/authorized_keys\b",
                back=40,
            ),
            _kp("/dev/tcp/|/dev/udp/", r"/dev/(?:tcp|udp)/[\w.-]+/\d+"),
            _kp(
                "nc|ncat|netcat",
                r"(?<![\w-])(?:nc|ncat|netcat)\b[^\n]*\s-[a-z]*[ec]\s+/bin/(?:ba)?sh\b",
            ),
            _kp("socat", r"\bsocat\b[^\n]*\bexec:"),
            _kp("bash -i", r"\bbash\s+-i\s*>&"),
            _kp("pty.spawn", r"\bpty\.spawn\s*\("),
            _kp("dup2", r"\bdup2\s*\(\s*\w+\.fileno\(\)"),
            _kp("nopasswd", r"NOPASSWD\s*:\s*ALL"),
            _kp("mkfifo", r"\bmkfifo\b[^\n]*\b(?:nc|ncat)\b"),
            _kp("ld.so.preload", r"/etc/ld\.so\.preload\b", back=5),
        ),
        check=_remote_command_channel,
        check_keywords=_keywords(_RUN_RECEIVED),
        in_prose_code=True,
    ),
    Rule(
        "SEC014",
        "prompt-injection",
        "error",
        _ALL,
        "Text aimed at the model tries to override its instructions, change its mode or hide "
        "actions from the user.",
        "prompt injection: text tries to override the model's instructions",
        patterns=_INJECTION,
        accept=_injection_stated,
    ),
    Rule(
        "SEC015",
        "hidden-instructions",
        "error",
        _kinds("prose", "code"),
        "An HTML or Markdown comment, invisible when the skill is rendered, carries instructions "
        "for the model.",
        "a comment hides instructions for the model",
        check=_hidden_comment_instructions,
        check_keywords=("<!--", "]:"),
    ),
    Rule(
        "SEC016",
        "covert-action",
        "error",
        _kinds("prose", "frontmatter"),
        "The model is told to do something sensitive (send data, touch credentials, download) "
        "without the user's knowledge or consent.",
        "instructs the model to act on sensitive data without the user's knowledge",
        check=_covert_sensitive_action,
        check_keywords=_keywords(_COVERT),
    ),
    Rule(
        "SEC017",
        "acts-without-consent",
        "warning",
        _kinds("prose"),
        "The model is told to act without asking the user.",
        "instructs the model to act without asking the user",
        check=_autonomy,
        check_keywords=_keywords(_AUTONOMY),
    ),
    Rule(
        "SEC018",
        "invisible-text",
        "error",
        _ALL,
        "Invisible Unicode (tag characters, bidirectional overrides, zero-width runs) hides text "
        "from review.",
        "invisible Unicode characters hide text",
        check=_invisible,
    ),
    Rule(
        "SEC019",
        "untrusted-input-exec",
        "error",
        _EXEC,
        "User input is evaluated as code (eval, sh -c, os.system) and can run anything.",
        "user input is evaluated as code",
        patterns=(_EVAL_INPUT,),
    ),
    Rule(
        "SEC020",
        "unquoted-input",
        "warning",
        _kinds("command"),
        "A user-input placeholder is used unquoted in a command line; quote it so it stays one "
        "argument.",
        "user input reaches the shell unquoted",
        check=_unquoted_placeholders,
    ),
    Rule(
        "SEC021",
        "eval-variable",
        "warning",
        _EXEC,
        "A shell variable is evaluated as code.",
        "a variable is evaluated as shell code",
        patterns=(_kp("eval", r"\beval\s+[\"']?\$(?:\{\w+\}|[A-Za-z_]\w*)", flags=0),),
    ),
    Rule(
        "SEC022",
        "security-disabled",
        "warning",
        _EXEC,
        "A safety check is turned off: hooks skipped, TLS verification disabled, host keys ignored, "
        "OS protections disabled, agent permissions skipped.",
        "disables a security check",
        patterns=(
            _kp("--no-verify", r"--no-verify\b"),
            _kp("curl", r"\bcurl\b[^\n|;]*\s(?:-[a-zA-Z]*k[a-zA-Z]*|--insecure)(?=\s|$)", flags=0),
            _kp("--no-check-certificate", r"--no-check-certificate\b"),
            _kp("pythonhttpsverify", r"PYTHONHTTPSVERIFY\s*=\s*['\"]?0"),
            _kp("node_tls_reject_unauthorized", r"NODE_TLS_REJECT_UNAUTHORIZED\s*=\s*['\"]?0"),
            _kp("verify", r"\bverify\s*=\s*False\b", flags=0),
            _kp(
                "git_ssl_no_verify|http.sslverify|strict-ssl",
                r"GIT_SSL_NO_VERIFY\b|http\.sslVerify\s+false\b|strict-ssl\s+false\b",
            ),
            _kp("stricthostkeychecking", r"StrictHostKeyChecking[= ]no\b"),
            _kp(
                "--dangerously-skip-permissions|--trusted-host",
                r"--dangerously-skip-permissions\b|--trusted-host\b",
            ),
            _kp(
                "setenforce|ufw|spctl|csrutil",
                r"\bsetenforce\s+0\b|\bufw\s+disable\b|\bspctl\s+--master-disable\b|\bcsrutil\s+disable\b",
            ),
            _kp("xattr", r"\bxattr\s+-d\s+com\.apple\.quarantine\b"),
            _kp("executionpolicy", r"ExecutionPolicy\s+(?:Unrestricted|Bypass)\b"),
            _kp("chmod", r"\bchmod\s+(?:-R\s+)?(?:0?777|a\+rwx)\b"),
        ),
        in_prose_code=True,
        negatable=True,
    ),
    Rule(
        "SEC023",
        "setuid",
        "warning",
        _EXEC,
        "A file is made set-user-id, so it runs with its owner's privileges.",
        "sets the set-user-id bit",
        patterns=(
            _kp(
                "chmod", r"\bchmod\s+(?:-R\s+)?(?:[ugoa]*\+[rwx]*s[rwx]*|[4-7][0-7]{3})\b", flags=0
            ),
        ),
    ),
    Rule(
        "SEC024",
        "untrusted-package-source",
        "warning",
        _EXEC,
        "Packages come from an extra or unencrypted index, which allows dependency confusion or "
        "tampering.",
        "installs packages from an untrusted source",
        patterns=(
            _kp("--extra-index-url", r"--extra-index-url\b"),
            _kp("--index-url", r"--index-url\s+http://"),
            _kp("pip", r"\bpip[0-9.]*\s+install\s+[^\n]*\bhttp://"),
            _kp("npm", r"\bnpm\s+config\s+set\s+registry\s+http://"),
        ),
    ),
    Rule(
        "SEC025",
        "sudo",
        "note",
        _kinds("command"),
        "The command runs with root privileges.",
        "runs a command with sudo",
        patterns=(_kp("sudo", r"(?<![\w-])sudo\s", flags=0),),
    ),
    Rule(
        "SEC026",
        "global-git-config",
        "note",
        _kinds("command"),
        "The command changes the user's global git configuration.",
        "changes the global git configuration",
        patterns=(_kp("git", r"\bgit\s+config\s+(?:--global|--system)\b", flags=0),),
    ),
    Rule(
        "SEC027",
        "unrestricted-shell",
        "note",
        _kinds("frontmatter"),
        "allowed-tools grants the shell without restricting commands.",
        "allowed-tools grants an unrestricted shell",
        patterns=(
            _kp(
                "allowed-tools",
                r"allowed-tools\s*:[^\n]*?(?:(?<![\w(])Bash(?![\w(])|"
                r"Bash\(\s*\*\s*\)|Bash\(\s*\*?:\*\s*\))",
                flags=0,
            ),
        ),
    ),
    Rule(
        "SEC028",
        "source-exfiltration",
        "error",
        _EXEC,
        "The whole repository (--all, --mirror) is pushed to a remote the skill adds itself or to "
        "a bare URL.",
        "pushes the whole repository to a remote chosen by the skill",
        check=_source_exfiltration,
        check_keywords=_keywords(_GIT_PUSH),
        in_prose_code=True,
        negatable=True,
    ),
    Rule(
        "SEC029",
        "typosquat-package",
        "warning",
        _EXEC,
        "An installed package's name is one slip away from a popular package (typosquatting).",
        "package name looks like a typo of a popular package",
        check=_typosquats,
        check_keywords=_keywords(_INSTALL),
        in_prose_code=True,
    ),
    Rule(
        "SEC030",
        "secret-in-url",
        "warning",
        _EXEC,
        "A secret environment variable is put into a URL, where servers and proxies log it.",
        "a secret is put into a URL",
        patterns=(_SECRET_IN_URL,),
        in_prose_code=True,
    ),
)

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
"""Every rule by its stable id."""

_PROSE_CODE_RULES: tuple[Rule, ...] = tuple(r for r in RULES if r.in_prose_code)


def _trie_regex(words: Iterable[str]) -> str:
    """A regex matching any of ``words``; of several starting at one place, the longest.

    Shaped as a trie (``c(?:at|url)``): ``re`` follows one branch per
    character instead of trying every word, and a word that ends where
    longer ones go on is the last alternative at its node.
    """
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    if not root:
        return "(?!)"  # no word: never matches

    def emit(node: dict[str, dict]) -> str:
        branches = []
        for char, child in sorted(node.items()):
            if not char:
                continue
            run = char
            while len(child) == 1 and "" not in child:  # one literal for a chain of letters
                ((char, child),) = child.items()
                run += char
            branches.append(re.escape(run) + emit(child))
        if "" in node:
            branches.append("")
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(root)


class _KeywordFinder:
    """Finds, in one pass, which of a fixed set of lower-case keywords occur in a text."""

    def __init__(self, vocabulary: Iterable[str]) -> None:
        self.vocabulary = frozenset(vocabulary)
        self._search = re.compile(_trie_regex(self.vocabulary)).search
        # The search reports the longest keyword where several start at one
        # position; the keywords that are its prefixes occur there too.
        self._with_prefixes: dict[str, frozenset[str]] = {
            word: frozenset(word[:n] for n in range(1, len(word) + 1)) & self.vocabulary
            for word in self.vocabulary
        }

    def present(self, lowered: str) -> frozenset[str]:
        """Every keyword that occurs in ``lowered``."""
        found: frozenset[str] = frozenset()
        m = self._search(lowered)
        while m is not None:
            found |= self._with_prefixes[m.group()]
            m = self._search(lowered, m.start() + 1)
        return found


# Texts people read and texts machines run share few keywords: each family
# has its own finder, so that prose is not searched for shell words.
_TEXT_FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({"prose", "frontmatter"}),
    frozenset({"command", "code"}),
)


@functools.cache
def _finder(family: frozenset[str]) -> _KeywordFinder:
    """The keyword finder of the rules for a family of kinds (compiled on first use)."""
    rules = (rule for rule in RULES if not rule.kinds.isdisjoint(family))
    return _KeywordFinder(w for rule in rules for w in rule.literals)


class _RuleGate:
    """Chooses the rules worth running on a text with one pass over its keywords.

    Most scanned texts are short paragraphs that no rule matches, and
    looking for every rule's keywords one by one (a hundred ``str.find``
    calls and dozens of generators per text) was most of the cost of a scan.
    Instead one trie regex of all the rules' keywords visits each position
    where some keyword starts; a rule runs only when one of its keywords
    occurs, or when it has none (:attr:`Rule.keywords` is None), and its
    patterns look only for the keywords that occur.
    """

    def __init__(self, rules: Iterable[Rule], finder: _KeywordFinder) -> None:
        self._finder = finder
        self._rules = tuple((rule, rule.keywords) for rule in rules)
        missing = {w for rule, _ in self._rules for w in rule.literals} - finder.vocabulary
        assert not missing, f"keywords missing from the finder: {sorted(missing)}"
        self._ungated = tuple(rule for rule, k in self._rules if k is None)

    def select(self, lowered: str) -> tuple[Sequence[Rule], frozenset[str]]:
        """The rules, in table order, that can match the text lower-cased as
        ``lowered``, and the keywords that occur in it."""
        present = self._finder.present(lowered)
        if not present:
            return self._ungated, present
        rules = [rule for rule, k in self._rules if k is None or not k.isdisjoint(present)]
        return rules, present


@functools.cache
def _gate(kinds: frozenset[str]) -> _RuleGate:
    """The gate of the rules that apply to a text of ``kinds`` (built on first use)."""
    family = next(f for f in _TEXT_FAMILIES if kinds <= f)
    rules = (rule for rule in RULES if not rule.kinds.isdisjoint(kinds))
    return _RuleGate(rules, _finder(family))


@functools.cache
def _prose_code_gate() -> _RuleGate:
    """The gate of the rules run on commands quoted inside prose."""
    return _RuleGate(_PROSE_CODE_RULES, _finder(frozenset({"command", "code"})))


_INLINE_CODE_RE = re.compile(r"(`+)([^`\n]+?)\1")


def _excerpt(text: str, start: int, end: int) -> str:
    snippet = " ".join(text[start:end].split())
    return snippet if len(snippet) <= EXCERPT_MAX else snippet[: EXCERPT_MAX - 1] + "…"


def _code_regions(text: str) -> list[tuple[int, str]]:
    """Inline code spans and HTML comment bodies inside prose, in text order."""
    regions: list[tuple[int, str]] = []
    if "`" in text:
        # A single token (`~/.pypirc`, `rm`) names something; only a command does something.
        regions += [
            (m.start(2), m.group(2))
            for m in _INLINE_CODE_RE.finditer(text)
            if " " in m.group(2).strip()
        ]
    if "<!--" in text:
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
    lowered = lower_same_length(body)
    hits: list[tuple[int, int, str, Rule, str]] = []

    def add(rule: Rule, offset: int, length: int, excerpt: str) -> None:
        hits.append((offset, -length, rule.id, rule, excerpt))

    rules, present = _gate(frozenset(kinds)).select(lowered)
    for rule in rules:
        for start, end in rule.spans(body, lowered, present):
            add(rule, start, end - start, _excerpt(body, start, end))
    if kind == "prose":
        # Commands quoted inline in instructions are run by the model as
        # written. Scan all of them at once, one per line, and map back.
        regions = _code_regions(body)
        if regions:
            starts: list[int] = []
            cursor = 0
            for _, region in regions:
                starts.append(cursor)
                cursor += len(region) + 2
            joined = "\n\n".join(region for _, region in regions)
            joined_lower = lower_same_length(joined)
            rules, present = _prose_code_gate().select(joined_lower)
            for rule in rules:
                for start, end in rule.spans(joined, joined_lower, present):
                    index = bisect.bisect_right(starts, start) - 1
                    offset = regions[index][0] + start - starts[index]
                    if rule.negatable and _negated(body, offset):
                        continue
                    add(rule, offset, end - start, _excerpt(joined, start, end))
    # One finding per rule and stretch of text: overlapping matches of the
    # same rule (a path inside a longer path) are reported once, longest first.
    hits.sort(key=lambda h: (h[0], h[1], h[2]))
    reach: dict[str, int] = {}
    findings: list[Finding] = []
    for offset, neg_length, rule_id, rule, excerpt in hits:
        if offset < reach.get(rule_id, -1):
            continue
        reach[rule_id] = offset - neg_length
        findings.append(Finding(rule_id, rule.severity, rule.message, offset, excerpt, rule.name))
    return findings


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
_COMMAND_SPLIT_RE = re.compile(r"&&|\|\||[;|\n&]")


def parse_allowed_tools(allowed_tools: Iterable[str] | str) -> list[tuple[str, str | None]]:
    """Parse allowed-tools entries into (tool, specifier-or-None) pairs.

    Entries may be a YAML list or one string separated by commas or spaces;
    specifiers in parentheses may contain both (``Bash(git log:*)``).
    """
    if isinstance(allowed_tools, (str, tuple)):
        # Hashable: the pass asks about every tool op of a skill with the same entries.
        return list(_parse_allowed_cached(allowed_tools))
    return _parse_allowed(allowed_tools)


@functools.lru_cache(maxsize=256)
def _parse_allowed_cached(allowed_tools: str | tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    return tuple(_parse_allowed([allowed_tools] if isinstance(allowed_tools, str) else allowed_tools))


def _parse_allowed(allowed_tools: Iterable[str]) -> list[tuple[str, str | None]]:
    parsed: list[tuple[str, str | None]] = []
    for raw in allowed_tools:
        for m in _ENTRY_RE.finditer(raw):
            parsed.append((m.group(1), m.group(2).strip() if m.group(2) is not None else None))
    return parsed


def _canonical_tool(name: str) -> str:
    low = name.lower()
    return TOOL_ALIASES.get(low, low)


def _split_commands(command: str) -> list[str]:
    """Simple commands of a line, split at ``&&``, ``||``, ``;``, ``|``, ``&`` outside quotes."""
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


def _specifier_matches(spec: str, argument: str) -> bool:
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
        # Only restricted entries, and the call is unknown: not provably allowed.
        return False
    specs = [spec for _, spec in entries if spec is not None]
    if want == "bash":
        pieces = _split_commands(command)
        return bool(pieces) and all(any(_command_matches(s, p) for s in specs) for p in pieces)
    return any(_specifier_matches(s, command) for s in specs)
