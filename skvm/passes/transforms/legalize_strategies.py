"""The legalization strategy table: for every primitive and every gap, what to do.

``STRATEGIES[primitive][level]`` lists, in order of preference, the ways to
make a model op that needs ``primitive:L<level>`` legal on a target that only
reaches ``L<level-1>``: L3→L2, L2→L1 and L1→L0 (absent). ``legalize`` takes the
first strategy that applies (its ``needs`` are met by the target, and for
elimination the skill supplies the command) and repeats until the op is legal.

Kinds (the SkVM paper's taxonomy):

* **compensation** lowers the demand by one level with one of the mechanisms
  ``template`` (explicit template, worked steps, fixed iteration counts,
  appended to the op's ``template`` attribute), ``split`` (two smaller
  chained steps), ``verify`` (constraints move into a check: an ``llm.judge``
  and a repair step under ``ctl.if``) or ``check-schema`` (a ``check.schema``
  on a typed JSON result);
* **substitution** (``substitute``) reaches the same purpose through other
  primitives (``needs``), e.g. arithmetic → write and run a Python script; the
  primitive is dropped from the op and ``needs`` are added;
* **elimination** (``eliminate``) replaces the op by deterministic
  ``tool.exec``/``tool.script`` ops when the skill supplies the commands
  (``commands`` attribute) or the script (``script`` attribute); what the
  commands cannot cover stays in a smaller model step.

Texts are data too: ``{prompt}`` in a substitution's text is the op's prompt.
See ``docs/passes/legalize.md`` for the rationale of each row.
"""

from __future__ import annotations

import functools

import attrs

from skvm.capabilities import PRIMITIVES

KINDS = ("compensation", "substitution", "elimination")
MECHANISMS = ("template", "split", "verify", "check-schema", "substitute", "eliminate")


@attrs.frozen
class Strategy:
    """One way to close one gap.

    Attributes:
        kind: compensation, substitution or elimination.
        name: short id shown in remarks and ``legalized`` records.
        mechanism: which rewrite applies it (see module docstring).
        text: template text, first prompt of a split, the property a check
            verifies, or a substitution's prompt (with ``{prompt}``).
        second: the second prompt of a split.
        needs: (primitive, level) the target must reach for this to apply;
            substitution adds them to the op.
    """

    kind: str
    name: str
    mechanism: str
    text: str = ""
    second: str = ""
    needs: tuple[tuple[str, int], ...] = ()

    @property
    def label(self) -> str:
        """``kind:name`` as recorded on ops."""
        return f"{self.kind}:{self.name}"


def template(name: str, text: str, needs: tuple[tuple[str, int], ...] = ()) -> Strategy:
    """Compensation: add an explicit template / worked steps to the prompt."""
    return Strategy("compensation", name, "template", text, needs=needs)


def split(name: str, first: str, second: str) -> Strategy:
    """Compensation: two chained steps, each needing one level less."""
    return Strategy("compensation", name, "split", first, second)


def verify(name: str, check: str) -> Strategy:
    """Compensation: draft, then a judge checks ``check`` and a repair step fixes it."""
    return Strategy("compensation", name, "verify", check, needs=(("reason.logic", 1),))


def check_schema() -> Strategy:
    """Compensation: the JSON result is checked against its type's schema at run time."""
    return Strategy("compensation", "check-schema", "check-schema")


def substitute(name: str, prompt: str, *needs: tuple[str, int]) -> Strategy:
    """Substitution: do it through ``needs`` instead."""
    return Strategy("substitution", name, "substitute", prompt, needs=tuple(needs))


def eliminate() -> Strategy:
    """Elimination: run the commands or script the skill supplies."""
    return Strategy("elimination", "skill-commands", "eliminate")


# -- shared substitutions -------------------------------------------------------

_RUN_SCRIPT = (("tool.exec", 2), ("follow.delegation", 1))


def python(level: int, what: str = "does this") -> Strategy:
    """Substitution: write a Python script that does the work, run it, use its output."""
    return substitute(
        "python-script",
        f"Write a Python script that {what}, run it and use its output "
        "(do not work it out by hand): {prompt}",
        ("gen.code.python", level),
        *_RUN_SCRIPT,
    )


def shell(level: int) -> Strategy:
    """Substitution: do it with shell commands run one by one."""
    return substitute(
        "shell-commands",
        "Do this with shell commands, one command per call, and use their output: {prompt}",
        ("gen.code.shell", level),
        ("tool.exec", 1),
    )


_E = eliminate()
_CHECKLIST = template("constraint-checklist", "Before answering, restate every MUST and NEVER "
                      "as a checklist, then tick each item against your answer and fix any "
                      "item that fails.")

#: primitive -> {required level: strategies for the gap L<level> -> L<level-1>}.
STRATEGIES: dict[str, dict[int, tuple[Strategy, ...]]] = {
    # ---- generation --------------------------------------------------------------
    "gen.code.python": {
        3: (_E, template("stdlib-only", "Use only the Python standard library (csv, json, re, "
                         "urllib, sqlite3); no third-party packages. Skeleton: parse inputs, "
                         "transform, write outputs.")),
        2: (_E, template("plain-io-skeleton", "Write one self-contained script with no imports: "
                         "read the input with open(), compute, write the result with open(). "
                         "Skeleton: data = open(IN).read(); ...; open(OUT, 'w').write(result)")),
        1: (_E, shell(1)),
    },
    "gen.code.javascript": {
        3: (_E, template("sync-builtins", "Use synchronous Node built-ins only (fs.readFileSync, "
                         "fs.writeFileSync); no async code, DOM or build tools."),
            python(3, "does what the JavaScript would do")),
        2: (_E, template("fs-only", "One file using only require('fs'); no npm packages."),
            python(2, "does what the JavaScript would do")),
        1: (_E, python(1, "does what the JavaScript would do")),
    },
    "gen.code.shell": {
        3: (_E, split("pipeline-stages", "Run the first stages of this pipeline and save the "
                      "intermediate output to a file: {prompt}",
                      "Finish this from the saved intermediate output: {prompt}"),
            python(2, "replaces the sed/awk/xargs pipeline")),
        2: (_E, template("one-command-per-call", "Run one command per call; write intermediate "
                         "results to files instead of pipes, redirections and loops."),
            python(2, "replaces the shell pipeline")),
        1: (_E, python(1, "replaces the shell commands")),
    },
    "gen.code.sql": {
        3: (_E, split("query-stages", "Write and run the inner queries (one per table) and "
                      "save their results: {prompt}",
                      "Combine the saved results with one query: {prompt}"),
            template("subqueries", "Write one subquery per table instead of a chain of CTEs; "
                     "join their results in a final SELECT.")),
        2: (_E, split("single-table-queries", "Write one simple SELECT per table involved: "
                      "{prompt}", "Combine the selected rows (no joins needed): {prompt}"),
            python(2, "loads the data with sqlite3 or csv and computes the answer")),
        1: (_E, python(2, "loads the data with sqlite3 or csv and computes the answer")),
    },
    "gen.code.html": {
        3: (template("fixed-layout", "Use this fixed layout: <header>, <main> with one "
                     "<section> per part, <footer>; one static SVG at most; add alt text and "
                     "labels."),),
        2: (template("basic-markup", "Use only headings, paragraphs, lists and links; render "
                     "tables as lists of 'key: value' lines."),),
        1: (_E, python(1, "prints the HTML from a fixed string template")),
    },
    "gen.text.structured": {
        3: (check_schema(), split("sections", "Produce only the top-level keys with short "
                                  "placeholder values: {prompt}",
                                  "Fill in each placeholder, one key at a time: {prompt}"),
            python(2, "builds the document and prints it with json.dumps")),
        2: (check_schema(), template("flat-skeleton", "Return a flat object (no nesting): "
                                     '{"key": "value", ...}; under 500 bytes.'),
            python(1, "builds the document and prints it with json.dumps")),
        1: (python(1, "prints the result with json.dumps"),),
    },
    "gen.text.long": {
        3: (split("halves", "Write the first half of the output (up to a clear break): "
                  "{prompt}", "Write the rest, continuing after the first half: {prompt}"),
            template("delimited-sections", "Write the output as numbered sections of at most "
                     "5 KB, each opened and closed by an explicit delimiter line."),
            python(1, "writes the long output to a file")),
        2: (split("outline-then-sections", "Write a short outline of the sections: {prompt}",
                  "Write the sections of the outline, under 1 KB each: {prompt}"),
            template("short-sections", "Keep each section under 1 KB; finish one section "
                     "completely before starting the next.")),
        1: (substitute("write-in-pieces", "Write the output to a file in short appended pieces "
                       "(a few lines each) and return the path: {prompt}",
                       ("tool.file.write", 1)),
            python(1, "generates the output into a file")),
    },
    "gen.text.prose": {
        3: (split("outline-then-sections", "Write an outline with one line per section: "
                  "{prompt}", "Write each section of the outline in turn: {prompt}"),
            template("section-skeleton", "Use this skeleton: a title, then sections "
                     "'Context', 'Details', 'Next steps', each a few paragraphs, with one "
                     "transition sentence between sections.")),
        2: (split("paragraph-at-a-time", "Write the first paragraph only: {prompt}",
                  "Write the remaining paragraphs one at a time, same tone: {prompt}"),
            template("paragraph-plan", "Write at most three paragraphs: what, why, what next; "
                     "keep the same tone in each.")),
        1: (substitute("fields-not-prose", "Return the content as a flat JSON object of short "
                       "fields instead of prose: {prompt}", ("gen.text.structured", 1)),),
    },
    "gen.regex": {
        3: (template("no-lookaround", "Avoid lookaround and named groups: match broadly with "
                     "simple groups, then filter the matches in a second pass."),),
        2: (template("literal-patterns", "Use literals, character classes and quantifiers only; "
                     "write one pattern per alternative instead of groups and anchors."),),
        1: (_E, python(1, "uses str methods (find, split, startswith) instead of a regex")),
    },
    # ---- reasoning -----------------------------------------------------------------
    "reason.arithmetic": {
        3: (python(2, "computes the numbers"),
            template("worked-steps", "Work step by step: one operation per line, write every "
                     "intermediate result (e.g. 'subtotal = 3 x 12.50 = 37.50') before "
                     "combining them.")),
        2: (python(1, "computes the numbers"),
            template("one-operation-per-line", "Do one arithmetic operation per line and write "
                     "its result before the next one.")),
        1: (python(1, "computes the numbers"), _E),
    },
    "reason.logic": {
        3: (python(2, "enumerates the candidates and checks every constraint"),
            template("enumerate-and-check", "List the candidate solutions in a table, check each "
                     "constraint per row, then pick the best row.")),
        2: (verify("one-constraint-per-check", "every constraint of the task holds"),
            python(2, "checks the constraints")),
        1: (python(1, "applies the rule"), _E),
    },
    "reason.spatial": {
        3: (python(2, "does the 3D / spherical geometry (e.g. haversine) with math"),
            template("formula-worked-steps", "Use the standard formula (e.g. haversine for "
                     "distances on a sphere); write each substitution and intermediate value.")),
        2: (python(1, "computes the areas and transforms"),
            template("formula-worked-steps", "Write the formula, then substitute the values "
                     "step by step.")),
        1: (python(1, "computes the distances and directions"),),
    },
    "reason.planning": {
        3: (split("plan-then-execute", "Write a numbered plan for this, with a fallback for each "
                  "step that may fail: {prompt}", "Carry out the plan step by step: {prompt}"),
            template("plan-with-fallbacks", "First write a numbered plan with one fallback per "
                     "step, then follow it; on a failure use that step's fallback.")),
        2: (template("fixed-steps", "Follow the steps in the order given; do not reorder or "
                     "merge them; do one step at a time."),),
        1: (substitute("explicit-procedure", "Do exactly these steps in the order written, one "
                       "at a time: {prompt}", ("follow.procedure", 1)),),
    },
    "reason.analysis": {
        3: (split("locate-then-analyse", "List the files involved and where the relevant code "
                  "is: {prompt}", "Analyse the located code and give the root cause: {prompt}"),
            template("file-by-file", "Examine one file at a time; note what each does before "
                     "looking for the cause across them.")),
        2: (split("snippet-at-a-time", "Split the code into short functions and state what each "
                  "one does: {prompt}", "Using those summaries, find the problem: {prompt}"),
            template("function-by-function", "Go through the code one function at a time; "
                     "state what each does, then look for the bug.")),
        1: (_E, substitute("tool-output", "Run the project's checks (tests, linters) and report "
                           "their output instead of reading the code: {prompt}",
                           ("tool.exec", 1))),
    },
    # ---- tool use --------------------------------------------------------------------
    "tool.file.read": {
        3: (template("bounded-windows", "Read the file in windows of at most 200 lines, by "
                     "explicit line ranges, starting from the first line."),
            substitute("read-with-sed", "Print the needed line ranges with `sed -n 'A,Bp' FILE` "
                       "instead of reading the whole file: {prompt}", ("tool.exec", 1))),
        2: (template("one-file-at-a-time", "Read the files one at a time by exact path; if one "
                     "is missing, note it and go on."),),
        1: (_E, substitute("read-with-cat", "Print each file with `cat PATH` instead of the read "
                           "tool: {prompt}", ("tool.exec", 1))),
    },
    "tool.file.write": {
        3: (split("file-at-a-time", "Write the first file only: {prompt}",
                  "Write the remaining files one at a time: {prompt}"),
            template("one-file-per-call", "Write the files one at a time, each with its own "
                     "call; check each exists before the next.")),
        2: (template("append-sections", "Write the file in sections under 1 KB: create it with "
                     "the first section, then append each next section."),),
        1: (_E, python(1, "writes the file")),
    },
    "tool.exec": {
        3: (_E, split("run-at-a-time", "Run the first command only and keep its output: "
                      "{prompt}", "Run the next commands one at a time: {prompt}")),
        2: (_E, template("save-then-run", "First save the script with the file tool, then run "
                         "it with one command and keep its output.", (("tool.file.write", 1),))),
        1: (_E,),
    },
    "tool.call.format": {
        3: (template("escape-and-flatten", "Pass nested data by writing it to a JSON file and "
                     "giving the path; escape quotes and backslashes in every argument."),),
        2: (template("plain-string-args", "Pass only plain string arguments: put structured "
                     "data in a file first and pass its path.", (("tool.file.write", 1),)),),
        1: (_E,),
    },
    "tool.call.batch": {
        3: (split("gather-then-reason", "Issue all the calls and collect their results: "
                  "{prompt}", "Reason over the collected results: {prompt}"),
            template("gather-first", "Issue the calls first; only after all results are in, "
                     "reason over them.")),
        2: (template("two-per-turn", "Issue at most two calls per turn; aggregate the results "
                     "after the last call."),),
        1: (template("one-per-turn", "Issue one call per turn and wait for its result before "
                     "the next."),),
    },
    "tool.web": {
        3: (template("fixed-pages", "Call one API at a time; fetch pages 1 to 3 only, with "
                     "explicit page parameters; stop early when a page is empty."),
            python(3, "calls the APIs with requests and follows the pagination")),
        2: (template("full-url", "Build the full URL including its query string yourself, "
                     "fetch it, and read a single field of the response."),
            python(2, "fetches the URL with urllib and parses the response")),
        1: (_E, python(2, "fetches the URL with urllib"),
            substitute("curl", "Fetch with `curl -s URL` and use its output: {prompt}",
                       ("tool.exec", 1))),
    },
    "tool.browser": {
        3: (split("login-then-flow", "Log in only, and confirm the session is open: {prompt}",
                  "With the open session, do the rest of the flow: {prompt}"),
            template("scripted-flow", "Follow the flow page by page: log in, then each form in "
                     "order; confirm each page loaded before the next action.")),
        # L2 -> L1 has no compensation: forms and clicks are replaced by HTTP calls.
        2: (substitute("http-requests", "Do this with HTTP requests instead of the browser "
                       "(GET pages, POST form fields): {prompt}", ("tool.web", 2)),
            python(3, "submits the forms with requests")),
        1: (substitute("http-get", "Fetch the page with an HTTP GET instead of the browser and "
                       "read its text: {prompt}", ("tool.web", 1)),
            python(2, "fetches the page with urllib")),
    },
    # ---- instruction following ------------------------------------------------------
    "follow.format": {
        3: (check_schema(), verify("format-check", "the output meets every format constraint")),
        2: (check_schema(), template("format-skeleton", "Fill in this skeleton and keep its keys "
                                     "and order exactly; output nothing else.")),
        1: (check_schema(), python(1, "prints the result in the required format")),
    },
    "follow.constraint": {
        3: (verify("constraint-check", "every MUST and NEVER of the task holds, even the "
                   "unusual ones"), _CHECKLIST),
        2: (verify("constraint-check", "each listed constraint holds, checked one by one"),
            _CHECKLIST),
        1: (verify("constraint-check", "the required constraint holds"), _CHECKLIST),
    },
    "follow.procedure": {
        3: (template("fixed-iterations", "Repeat the loop at most 3 times; after it, do the "
                     "verification as its own final step and report its result."),),
        2: (split("procedure-halves", "Do the first half of the steps, in order: {prompt}",
                  "Do the remaining steps, in order: {prompt}"),
            template("numbered-steps", "Number the steps and do them strictly in order; at a "
                     "branch, state which branch applies before going on.")),
        1: (_E, python(2, "performs these steps in order")),
    },
    "follow.delegation": {
        3: (template("told-to-delegate", "Use code for any calculation or data processing "
                     "in this step; prefer a script to working by hand."),),
        2: (template("explicit-script", "Write a script for this, run it, and use its output; "
                     "do not compute anything by hand."),),
        1: (_E,),
    },
    "follow.style": {
        3: (split("draft-then-restyle", "Write the content plainly: {prompt}",
                  "Rewrite the draft section by section in the required style: {prompt}"),
            template("style-sample-long", "Keep the register of this sample in every "
                     "paragraph: 'We reviewed the results and recommend the following changes.'")),
        2: (template("style-sample", "Write in a formal register, like this sample: 'We "
                     "reviewed the results and recommend the following changes.'"),),
        1: (verify("style-check", "the text uses the requested register throughout"),
            template("style-sample", "Write in a formal register, like this sample: 'We "
                     "reviewed the results and recommend the following changes.'")),
    },
}


#: Mechanisms that turn one model op into several: limited per lineage to avoid blow-up.
MULTIPLYING = frozenset({"split", "verify"})


def strategies_for(primitive: str, level: int) -> tuple[Strategy, ...]:
    """The strategies for the gap ``primitive: L<level> -> L<level-1>``."""
    return STRATEGIES.get(primitive, {}).get(level, ())


def table_problems() -> list[str]:
    """Ways the table is incomplete or inconsistent (empty when it is sound)."""
    problems = []
    for prim in PRIMITIVES:
        for level in (3, 2, 1):
            row = strategies_for(prim, level)
            if not row:
                problems.append(f"{prim}: no strategy for L{level} -> L{level - 1}")
            for s in row:
                if s.kind not in KINDS or s.mechanism not in MECHANISMS:
                    problems.append(f"{prim} L{level}: bad strategy {s}")
                if any(p == prim and lvl >= level for p, lvl in s.needs):
                    problems.append(f"{prim} L{level}: {s.name} needs the level it lowers")
    problems.extend(f"unknown primitive {p}" for p in STRATEGIES if p not in PRIMITIVES)
    mechanisms: dict[str, str] = {}
    for row in STRATEGIES.values():
        for group in row.values():
            for s in group:
                if mechanisms.setdefault(s.label, s.mechanism) != s.mechanism:
                    problems.append(f"label {s.label} names two mechanisms")
    return problems


@functools.cache
def multiplying_labels() -> frozenset[str]:
    """Labels of strategies whose mechanism multiplies model ops."""
    return frozenset(
        s.label
        for row in STRATEGIES.values()
        for group in row.values()
        for s in group
        if s.mechanism in MULTIPLYING
    )
