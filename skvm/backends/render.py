"""Renders a SkIR module as a SKILL.md body, in one harness's words.

The Markdown conventions (what each op becomes) are written down in
``docs/targets.md`` so the front end can read the ``agentskills`` output back
to the same module (``docs/frontend.md`` names the attributes relied on):

* ``ctx.text`` -> ``## Title`` (``level`` hashes) + the prose; no title -> prose only;
  ``html_comment`` -> ``<!-- text -->``;
* ops marked ``inline`` (rules, resource mentions, requirements the text states)
  are already in the text and are not repeated;
* runs of other ``ctx.rule`` -> ``## Rules`` + ``- **MUST** text`` items;
* ``ctx.example`` -> a fenced block (its ``title`` is the info string);
* runs of other ``ctx.ref`` -> ``## References`` + ``- Read `path` when …`` items;
* runs of other ``env.require``/``env.bind`` -> ``## Requirements`` + ``- manager: `pkg` version``;
* ``ctx.ref @proc`` -> the procedure's steps at that place; a step that carries its
  source text (``marker`` + prompt or ``origin``) is written back exactly;
* ops marked ``synthetic`` (built by the front end from the layout or wording)
  render nothing of their own: a synthetic proc is not rendered, a synthetic
  ``ctl.if`` / ``ctl.for_each`` / ``env.if`` renders its steps in its place;
* other ``skill.proc`` -> ``## Steps`` (``main``) / ``## Procedure `name```: an
  ``Inputs:`` line, then one ``1.`` item per op (nested regions are nested lists).

What differs between harnesses is data (:class:`~skvm.backends.conventions.Harness`):
tool names, the way parallel regions are phrased, the skill-dir prefix of
bundled paths and whether command runs are lowered to scripts.
Compiler bookkeeping (``legalized``, ``evidence``, ``caps``, ``origin``) never
reaches the text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise

import attrs

from skvm.backends import lowering
from skvm.backends.conventions import Harness
from skvm.ir.attributes import Keyword
from skvm.ir.operation import Module, Op

INDENT = "   "  # continuation indent under a "1. " list item
INDENT_WIDTH = len(INDENT)

#: Rule severity -> the marker written in front of the rule.
RULE_MARKERS = {"must": "MUST", "should": "SHOULD", "never": "NEVER", "may": "MAY"}

#: How parallel regions are phrased, per parallel style.
PARALLEL_TEXT: dict[str, dict[str, str]] = {
    "subagents": {
        "map": (
            "For each {elem} in {over}, dispatch one sub-agent with the {subagent} tool "
            "(at most {width} at a time, all {subagent} calls in one message); each does the "
            "steps below and reports back. Wait for all of them and keep the results in order:"
        ),
        "parallel": (
            "Dispatch these {n} independent tasks to parallel sub-agents: send one message with "
            "{n} {subagent} tool calls, then wait for all of them:"
        ),
        "branch": "Sub-agent {i}:",
    },
    "batched": {
        "map": (
            "For each {elem} in {over} (the items are independent: make the tool calls for up "
            "to {width} items together in one turn):"
        ),
        "parallel": (
            "These {n} parts are independent: make their tool calls together in one turn, then "
            "go on when all have returned:"
        ),
        "branch": "Part {i}:",
    },
    "sections": {
        "map": "For each {elem} in {over} (each item is independent of the others):",
        "parallel": "Do these {n} independent parts, in any order:",
        "branch": "Part {i} (independent of the other parts):",
    },
}

#: env.if kind -> the condition phrase.
ENV_IF_TEXT = {
    "os": "the operating system is {value}",
    "bin": "`{value}` is installed",
    "env": "the environment variable `{value}` is set",
    "arch": "the machine architecture is {value}",
    "python": "Python is {value}",
}


def fence(code: str, lang: str = "", exact: bool = False) -> list[str]:
    """A fenced code block long enough not to be closed by backticks in ``code``.

    With ``exact``, trailing newlines of ``code`` are kept (as blank lines in the block).
    """
    ticks = "```"
    while ticks in code:
        ticks += "`"
    return [ticks + lang, *(code if exact else code.rstrip("\n")).split("\n"), ticks]


def _kw(value) -> str:
    return value.name if isinstance(value, Keyword) else str(value)


class BodyRenderer:
    """Renders one module's body for one harness; collects generated scripts.

    Args:
        module: the module to render.
        harness: the target's conventions.
        resource_prefix: prepended to bundled paths in commands (``{baseDir}/``).
    """

    def __init__(
        self, module: Module, harness: Harness, resource_prefix: str = "", heading_shift: int = 0
    ):
        self.module = module
        self.shift = heading_shift
        self.harness = harness
        self.prefix = resource_prefix
        self.resources = {r.sym_name: r.attr("path") for r in module.resources()}
        #: Generated scripts: path -> text (in creation order).
        self.scripts: dict[str, str] = {}
        self._defs: dict[str, Op] = {}
        self._uses: dict[str, int] = {}
        self._setup = bool(lowering.env_ops(module))
        self._inline_procs: set[str] = set()

    # -- public ------------------------------------------------------------------
    def render(self) -> str:
        """The Markdown body."""
        for op in self.module.walk():
            for r in op.results:
                self._defs[r.name] = op
            for name in op.uses():
                self._uses[name] = self._uses.get(name, 0) + 1
        self._procs = {op.sym_name: op for op in self.module.ops if op.name == "skill.proc"}
        placed = {op.attr("resource").name for op in self.module.walk()
                  if op.name == "ctx.ref" and op.attr("resource").name in self._procs}
        ops = self._top_ops(self.module.ops, placed)
        blocks = self._blocks(ops)
        if self._setup and self.harness.setup_hint and not any(_GROUPS.get(op.name) == "env" for op in ops):
            # Every requirement is stated in the text: only point at the generated script.
            setup = self.prefix + lowering.SETUP_SCRIPT
            at = 1 if ops and ops[0].name == "ctx.text" and ops[0].attr("level") == 1 else 0  # after a title
            blocks.insert(at, [self._h() + " Setup", "",
                               f"Run `{setup}` once first{self._tool('shell')}; it installs only what is missing."])
        return "\n\n".join("\n".join(b) for b in blocks if b) + "\n"

    def _top_ops(self, ops, placed: set[str]) -> list[Op]:
        """The module-level ops that render, in order (synthetic env.if sections flattened)."""
        out: list[Op] = []
        for op in ops:
            if op.name in ("skill.meta", "skill.resource") or _restated(op):
                continue  # inline ops are sentences / mentions of the prose, already shown there
            if op.name == "skill.proc" and (op.sym_name in placed or op.has_attr("synthetic")):
                continue  # rendered where its ctx.ref stands / implied by the sections
            if op.name == "env.if" and op.has_attr("synthetic") and not _region_ops(op, 1):
                out += self._top_ops(op.regions[0].ops, placed)  # its heading is inside
                continue
            if op.name == "ctx.ref" and op.attr("resource").name in self._procs:
                self._inline_procs.add(op.attr("resource").name)
                op = self._procs[op.attr("resource").name]
            out.append(op)
        return out

    def _blocks(self, ops: list[Op]) -> list[list[str]]:
        """One block of lines per module-level op (runs of a group share one block)."""
        blocks: list[list[str]] = []
        i = 0
        while i < len(ops):
            op = ops[i]
            group = _GROUPS.get(op.name)
            if group is not None:
                j = i
                while j < len(ops) and _GROUPS.get(ops[j].name) == group:
                    j += 1
                blocks.append(getattr(self, f"_group_{group}")(ops[i:j]))
                i = j
                continue
            blocks.append(self._top(op))
            i += 1
        return blocks

    # -- paths and values ----------------------------------------------------------
    def path(self, sym: str) -> str:
        """The path of resource ``sym`` as the prose shows it."""
        return self.prefix + self.resources.get(sym, sym)

    def placeholder(self, name: str) -> str:
        """How a value appears inside a command line."""
        return f"<{name}>"

    def _value_text(self, name: str) -> str:
        op = self._defs.get(name)
        if op is not None and op.name == "tool.write" and isinstance(op.attr("path"), str):
            return f"`{op.attr('path')}`"
        return f"`{name}`"

    def _tool(self, kind: str) -> str:
        name = getattr(self.harness.tools, kind)
        return f" with the {name} tool" if name else ""

    # -- module level ------------------------------------------------------------
    def _top(self, op: Op) -> list[str]:
        handler = _TOP.get(op.name)
        if handler is not None:
            return handler(self, op)
        if op.name in _STEP:  # a stray step at module level: one numbered item
            return self._numbered([op])
        return []

    def _text(self, op: Op) -> list[str]:
        title = op.attr("title", "")
        text = op.attr("text", "").strip("\n")
        if op.has_attr("html_comment"):
            return [f"<!-- {text} -->"]
        lines = []
        level = op.attr("level", 2)
        if ("\n" in title or title.endswith("#")) and level + self.shift <= 2:
            # A setext heading: several lines, or hashes an ATX heading would drop as its closing.
            lines += [title, "=" * 3 if level + self.shift == 1 else "-" * 3, ""]
        elif title or op.has_attr("level"):  # a heading (possibly empty: a bare "#")
            lines += [self._h(level) + (" " + title if title else ""), ""]
        lines += [text] if text else []
        return lines if lines and lines[-1] != "" else lines[:-1]

    def _h(self, level: int = 2) -> str:
        """The heading marker of ``level``, shifted inside module-level env.if sections."""
        return "#" * min(6, level + self.shift)

    def _example(self, op: Op) -> list[str]:
        title = op.attr("title")
        lang = op.attr("lang", "")
        code = op.attr("code", "")
        if op.has_attr("indented") and not title and not lang and code.strip():
            return [("    " + line) if line else "" for line in code.split("\n")]
        if title and title.startswith(lang) and "`" not in title:
            return fence(code, title, exact=True)  # the front end's title is the fence's info string
        head = [f"Example: {title}", ""] if title else []
        return [*head, *fence(code, lang, exact=True)]

    def _proc(self, op: Op) -> list[str]:
        name = op.sym_name
        if name in self._inline_procs:  # under the heading of its section: just the steps
            return self._numbered(op.body.ops, exact=True)
        lines = [self._h() + (" Steps" if name == "main" else f" Procedure `{name}`"), ""]
        if op.params:
            ins = ", ".join(f"`{p.name}` ({p.type})" for p in op.params)
            lines += [f"Inputs: {ins}.", ""]
        lines += self._numbered(op.body.ops, exact=True)
        while lines and lines[-1] == "":
            lines.pop()
        return lines

    def _env_if_top(self, op: Op) -> list[str]:
        out = [f"{self._h()} When {self._env_condition(op)}", ""]
        for i, region in enumerate(op.regions):
            if i and not region.ops:
                continue
            if i:
                out += ["", f"{self._h()} Otherwise", ""]
            self.shift += 1
            try:
                blocks = self._blocks(self._top_ops(region.ops, set()))
            finally:
                self.shift -= 1
            out.append("\n\n".join("\n".join(b) for b in blocks if b))
        return out

    def _env_condition(self, op: Op) -> str:
        kind = _kw(op.attr("kind"))
        cond = ENV_IF_TEXT.get(kind, kind + " is {value}").format(value=op.attr("value"))
        return ("not: " + cond) if op.has_attr("negate") else cond

    def _group_rules(self, ops: list[Op]) -> list[str]:
        return [self._h() + " Rules", "", *(self._rule_item(op) for op in ops)]

    def _rule_item(self, op: Op) -> str:
        marker = RULE_MARKERS.get(_kw(op.attr("severity")), "MUST")
        scope = op.attr("scope")
        suffix = f" (scope: {scope})" if scope and scope != "global" else ""
        return f"- **{marker}** {op.attr('text', '').strip()}{suffix}"

    def _group_refs(self, ops: list[Op]) -> list[str]:
        return [self._h() + " References", "", *(self._ref_item(op) for op in ops)]

    def _ref_item(self, op: Op) -> str:
        path = self.path(op.attr("resource").name)
        when = op.attr("when")
        text = op.attr("text")
        item = f"- Read `{path}`" + (f" when {when.rstrip('.')}." if when else ".")
        return item + (f" {text}" if text else "")

    def _group_env(self, ops: list[Op]) -> list[str]:
        lines = [self._h() + " Requirements", ""]
        seen: set[tuple[str, str]] = set()
        for op in ops:
            key = (_kw(op.attr("manager")), op.attr("package"))
            if key in seen:
                continue
            seen.add(key)
            lines.append(self._env_item(op))
        if self._setup:
            setup = self.prefix + lowering.SETUP_SCRIPT
            lines += ["", f"Run `{setup}` once first{self._tool('shell')}; it installs only what is missing."]
        return lines

    def _env_item(self, op: Op) -> str:
        manager = _kw(op.attr("manager"))
        item = f"- {manager}: `{op.attr('package')}`"
        if op.attr("version"):
            item += f" {op.attr('version')}"
        alts = [f"{k}: {op.attr(k)}" for k in ("apt", "brew") if op.has_attr(k)]
        if alts:
            item += " (" + ", ".join(alts) + ")"
        if op.has_attr("optional"):
            item += " (optional)"
        return item

    # -- steps ---------------------------------------------------------------------
    def _numbered(self, ops, exact: bool = False) -> list[str]:
        """A list, one item per step (nested regions become nested lists).

        With ``exact`` (a procedure's own steps), a step that carries its source
        marker is written as marker + source text, as the front end read it;
        otherwise items are numbered ``1.`` … and source text is re-indented.
        """
        out: list[str] = []
        items = self._items(ops)
        # Source markers only when every item has one: a list mixing them with generated
        # items (a command script, a pass's new step) is numbered afresh.
        exact = exact and all(item.marker is not None for item in items)
        for n, item in enumerate(items, start=1):
            head, *rest = item.lines
            if exact and item.marker is not None and item.source is not None:
                heading = item.marker.startswith("#")
                if heading and out and out[-1] != "":
                    out.append("")
                out += [item.marker + item.source[0], *item.source[1:]] + ([""] if heading else [])
                continue
            out.append(f"{n}. {head}")
            out.extend((INDENT + line) if line else "" for line in rest)
        while out and out[-1] == "":
            out.pop()
        return out

    def _items(self, ops) -> list[_Item]:
        """The items of a list of steps: folded judges and listings, flattened synthetic ops."""
        items: list[_Item] = []
        ops = [op for op in ops if op.name not in ("ctl.yield", "ctl.return") and not _restated(op)]
        flat = {id(op) for op in ops if _flattens(op)}
        folded = self._folded_judges(ops) | self._hidden_listings(ops, flat)
        in_origin = False  # the previous item was a command step written from its origin text
        i = 0
        while i < len(ops):
            op = ops[i]
            if id(op) in folded or (in_origin and op.name in _TOOL_OPS and op.has_attr("synthetic")):
                i += 1
                continue
            in_origin = False
            if id(op) in flat:
                for region in op.regions:
                    items += self._items(region.ops)
                i += 1
                continue
            run = self._command_run(ops, i)
            if run > 1:
                items.append(_Item(self._run_script(ops[i : i + run])))
                i += run
                continue
            if op.name in _TOOL_OPS and isinstance(op.attr("origin"), str):
                items.append(_source_item(op, op.attr("origin")))
                in_origin = True
            elif op.name == "llm.step" and op.has_attr("marker"):
                items.append(_source_item(op, op.attr("prompt", "")).extended(self._schema_lines(op)))
            else:
                lines = self._step(op)
                if lines:
                    items.append(_Item(lines))
            i += 1
        return items

    def _hidden_listings(self, ops: list[Op], flat: set[int]) -> set[int]:
        """Synthetic judges / listings whose only user is the flattened op right after them."""
        hidden = set()
        for a, b in pairwise(ops):
            if (
                a.name in ("llm.judge", "llm.gen") and a.has_attr("synthetic") and id(b) in flat
                and a.results and a.results[0].name in b.operands and self._uses.get(a.results[0].name) == 1
            ):
                hidden.add(id(a))
        return hidden

    def _folded_judges(self, ops: list[Op]) -> set[int]:
        """llm.judge ops used only by the ctl.if right after them: phrased as "If …"."""
        folded = set()
        for a, b in pairwise(ops):
            if (
                a.name == "llm.judge" and b.name == "ctl.if" and a.results
                and b.operands == (a.results[0].name,) and self._uses.get(a.results[0].name) == 1
            ):
                folded.add(id(a))
        return folded

    def _command_run(self, ops: list[Op], i: int) -> int:
        """Length of the model-free command run starting at ``ops[i]`` (0 when lowering is off)."""
        if not self.harness.scripts_for_commands:
            return 0
        defined: set[str] = set()
        n = 0
        for op in ops[i:]:
            if op.name not in ("tool.exec", "tool.script"):
                break
            if any(v in defined for v in lowering.value_refs(op)):
                break
            defined.update(r.name for r in op.results)
            n += 1
        return n

    def _run_script(self, ops: list[Op]) -> list[str]:
        number = sum(1 for p in self.scripts if p.startswith("scripts/run-")) + 1
        path = f"scripts/run-{number}.sh"
        params: list[str] = []
        for op in ops:
            params += [v for v in lowering.value_refs(op) if v not in params]
        self.scripts[path] = lowering.command_script(
            f"Runs {len(ops)} commands of the skill in order.", ops, self.resources, params
        )
        args = "".join(" " + self.placeholder(p) for p in params)
        return [(
            f"Run `{self.prefix}{path}{args}`{self._tool('shell')} "
            f"(it runs {len(ops)} commands in order; do not retype them)."
        )]

    def _command(self, op: Op) -> str:
        return lowering.command_line(op, self.path, self.placeholder)

    def _step(self, op: Op) -> list[str]:
        handler = _STEP.get(op.name)
        if handler is not None:
            return handler(self, op)
        if op.name in _TOP:  # context inside a procedure
            lines = _TOP[op.name](self, op)
            return lines
        return [f"Do `{op.name}`."] if op.name not in ("skill.meta", "skill.resource") else []

    def _llm(self, op: Op) -> list[str]:
        prompt = (op.attr("prompt") or op.attr("question") or "").strip()
        # Continuation lines keep the indentation they had under their list item.
        return _rebased(prompt.split("\n"), INDENT_WIDTH) + self._schema_lines(op)

    def _schema_lines(self, op: Op) -> list[str]:
        """The JSON schema a ``json<…>`` result must match, as a fenced block (or nothing)."""
        result = op.results[0].type if op.results else None
        schema = getattr(result, "schema", None) if result is not None else None
        if schema is None:
            return []
        return ["", "Answer with JSON matching this schema:", "",
                *fence(json.dumps(schema, indent=2, sort_keys=True), "json")]

    def _judge(self, op: Op) -> list[str]:
        question = (op.attr("question") or op.attr("prompt") or "").strip()
        return [f"Decide: {question}"]

    def _exec(self, op: Op) -> list[str]:
        return [f"Run{self._tool('shell')}:", "", *fence(self._command(op), "bash")]

    def _read(self, op: Op) -> list[str]:
        path = op.attr("path")
        if op.has_attr("resource"):
            path = self.path(op.attr("resource").name)
        shown = f"`{path}`" if isinstance(path, str) else self._value_text(path.name)
        return [f"Read {shown}{self._tool('read')}."]

    def _write(self, op: Op) -> list[str]:
        path = op.attr("path")
        shown = f"`{path}`" if isinstance(path, str) else self._value_text(path.name)
        what = " and ".join(self._value_text(v) for v in op.operands) or "the result"
        verb = "Append" if op.has_attr("append") else "Write"
        return [f"{verb} {what} to {shown}{self._tool('write')}."]

    def _fetch(self, op: Op) -> list[str]:
        url = op.attr("url")
        shown = url if isinstance(url, str) else self._value_text(url.name)
        return [f"Fetch {shown}{self._tool('fetch')}."]

    def _if(self, op: Op) -> list[str]:
        cond = op.attr("condition")
        judge = self._defs.get(op.operands[0]) if op.operands else None
        if cond:
            head, other = f"If {cond}:", "Otherwise:"
        elif judge is not None and judge.name == "llm.judge":
            question = (judge.attr("question") or judge.attr("prompt") or "").strip()
            head, other = f"{question} If yes:", "If no:"
        else:
            head, other = f"If `{op.operands[0] if op.operands else 'condition'}` is true:", "Otherwise:"
        lines = [head, *self._numbered(op.regions[0].ops)]
        if len(op.regions) > 1 and [o for o in op.regions[1].ops if o.name != "ctl.yield"]:
            lines += [other, *self._numbered(op.regions[1].ops)]
        return lines

    def _env_if(self, op: Op) -> list[str]:
        lines = [f"If {self._env_condition(op)}:", *self._numbered(op.regions[0].ops)]
        if len(op.regions) > 1 and op.regions[1].ops:
            lines += ["Otherwise:", *self._numbered(op.regions[1].ops)]
        return lines

    def _loop_words(self, op: Op) -> tuple[str, str]:
        elem = op.regions[0].args[0].name if op.regions and op.regions[0].args else "item"
        over = op.attr("over") or (f"`{op.operands[0]}`" if op.operands else "the items")
        return f"`{elem}`", over

    def _for_each(self, op: Op) -> list[str]:
        elem, over = self._loop_words(op)
        return [f"For each {elem} in {over}:", *self._numbered(op.regions[0].ops)]

    def _map(self, op: Op) -> list[str]:
        elem, over = self._loop_words(op)
        text = PARALLEL_TEXT[self.harness.parallel]["map"].format(
            elem=elem, over=over, width=op.attr("max_width", 4), subagent=self.harness.tools.subagent
        )
        return [text, *self._numbered(op.regions[0].ops)]

    def _parallel(self, op: Op) -> list[str]:
        style = PARALLEL_TEXT[self.harness.parallel]
        n = len(op.regions)
        lines = [style["parallel"].format(n=n, subagent=self.harness.tools.subagent)]
        for i, region in enumerate(op.regions, start=1):
            steps = self._numbered(region.ops)
            lines.append(f"- {style['branch'].format(i=i)}")
            lines.extend(("  " + s) if s else "" for s in steps)
        return lines

    def _call(self, op: Op) -> list[str]:
        return [f"Follow the procedure `{op.attr('callee').name}`."]

    def _check_exists(self, op: Op) -> list[str]:
        what = f"`{op.attr('path')}`" if op.has_attr("path") else self._value_text(op.operands[0])
        return [f"Check that {what} exists."]

    def _check_schema(self, op: Op) -> list[str]:
        schema = json.dumps(json.loads(op.attr("schema")), indent=2, sort_keys=True)
        return [f"Check that {self._value_text(op.operands[0])} matches this JSON Schema:", "",
                *fence(schema, "json")]

    def _check_cmd(self, op: Op) -> list[str]:
        return [f"Check that this command succeeds{self._tool('shell')}:", "",
                *fence(self._command(op), "bash")]

    def _solid(self, op: Op) -> list[str]:
        number = sum(1 for p in self.scripts if p.startswith("scripts/solid-")) + 1
        path = f"scripts/solid-{number}.sh"
        params = lowering.value_refs(op)
        self.scripts[path] = lowering.command_script(
            "Solidified step: runs in place of a model step.", [op], self.resources, params
        )
        args = "".join(" " + self.placeholder(p) for p in params)
        fallback = self._numbered(op.regions[0].ops) if op.regions else []
        lines = [f"Run `{self.prefix}{path}{args}`{self._tool('shell')}."]
        if fallback:
            lines += ["If it fails, do this instead:", *fallback]
        return lines


@attrs.frozen
class _Item:
    """One list item.

    ``lines`` are relative to the item's content column (continuation lines get
    the list's indent); ``marker`` and ``source`` (the step's exact source lines,
    written after the marker) are set for steps that carry their source text.
    """

    lines: list[str]
    marker: str | None = None
    source: list[str] | None = None

    def extended(self, more: list[str]) -> _Item:
        """The item with ``more`` lines at its end."""
        source = self.source + more if self.source is not None else None
        return _Item(self.lines + more, self.marker, source)


def _source_item(op: Op, text: str) -> _Item:
    """The item of a step that carries its source text (``marker`` + prompt / origin)."""
    marker = op.attr("marker")
    if not isinstance(marker, str):
        return _Item(_rebased(text.strip().split("\n"), INDENT_WIDTH))
    source = text.split("\n")
    return _Item(_rebased(source, len(marker)), marker, source)


def _rebased(lines: list[str], base: int) -> list[str]:
    """Continuation lines without up to ``base`` leading spaces (their indent under the marker)."""
    return lines[:1] + [line[min(base, len(line) - len(line.lstrip(" "))):] for line in lines[1:]]


#: Ops marked ``inline`` restate the text (a sentence, a mention, a command): not repeated.
_RESTATING = frozenset({"ctx.rule", "ctx.ref", "env.require", "env.bind"})
_TOOL_OPS = frozenset({"tool.exec", "tool.script"})
#: Control ops the front end builds around one step's text ("If …", "For each …", "On macOS …").
_FLATTENABLE = frozenset({"ctl.if", "ctl.for_each", "env.if"})


def _restated(op: Op) -> bool:
    """An op the front end found in the text (already rendered with the text)."""
    return op.name in _RESTATING and op.has_attr("inline")


def _region_ops(op: Op, index: int) -> list[Op]:
    """The ops of region ``index`` other than ``ctl.yield`` (none when it does not exist)."""
    if index >= len(op.regions):
        return []
    return [o for o in op.regions[index].ops if o.name != "ctl.yield"]


def _flattens(op: Op) -> bool:
    """A synthetic control op whose steps all carry their source text: render just them."""
    if op.name not in _FLATTENABLE or not op.has_attr("synthetic"):
        return False
    inner = [o for i in range(len(op.regions)) for o in _region_ops(op, i)]
    return bool(inner) and all(
        o.has_attr("marker") or (o.name in _TOOL_OPS and o.has_attr("synthetic")) or _flattens(o)
        for o in inner
    )


# Module-level groupings: consecutive ops of one group render as one section.
_GROUPS = {
    "ctx.rule": "rules",
    "ctx.ref": "refs",
    "env.require": "env",
    "env.bind": "env",
}

_TOP: dict[str, Callable[[BodyRenderer, Op], list[str]]] = {
    "ctx.text": BodyRenderer._text,
    "ctx.example": BodyRenderer._example,
    "ctx.rule": lambda r, op: [r._rule_item(op)],
    "ctx.ref": lambda r, op: [r._ref_item(op)],
    "skill.proc": BodyRenderer._proc,
    "env.if": BodyRenderer._env_if_top,
    "env.require": lambda r, op: [r._env_item(op)],
    "env.bind": lambda r, op: [r._env_item(op)],
}

_STEP: dict[str, Callable[[BodyRenderer, Op], list[str]]] = {
    "llm.step": BodyRenderer._llm,
    "llm.gen": BodyRenderer._llm,
    "llm.judge": BodyRenderer._judge,
    "tool.exec": BodyRenderer._exec,
    "tool.script": BodyRenderer._exec,
    "tool.read": BodyRenderer._read,
    "tool.write": BodyRenderer._write,
    "tool.fetch": BodyRenderer._fetch,
    "ctl.if": BodyRenderer._if,
    "env.if": BodyRenderer._env_if,
    "ctl.for_each": BodyRenderer._for_each,
    "ctl.map": BodyRenderer._map,
    "ctl.parallel": BodyRenderer._parallel,
    "ctl.call": BodyRenderer._call,
    "check.exists": BodyRenderer._check_exists,
    "check.schema": BodyRenderer._check_schema,
    "check.cmd": BodyRenderer._check_cmd,
    "jit.solid": BodyRenderer._solid,
}
