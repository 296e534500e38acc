"""The ``vm`` target: what the bundled VM feeds its agent loop.

* ``skill.skir`` — the module itself (the VM interprets it);
* ``prompts/context.md`` — the skill's shared context (prose, examples, references);
* ``prompts/<proc>/<n>-<op>.md`` — one prompt per ``llm.*`` op, numbered in
  walk order within its procedure, with the rules, the task, its inputs and
  the expected result type (schema when typed);
* ``scripts/`` — the environment setup script and the ``jit.solid`` scripts;
* the bundled files, and the manifest.
"""

from __future__ import annotations

import json

from skvm.backends.base import MANIFEST, Backend
from skvm.backends.bundle import Bundle
from skvm.backends.render import RULE_MARKERS, BodyRenderer, fence
from skvm.diagnostics import SkvmError
from skvm.ir.operation import Module, Op
from skvm.ir.printer import print_module

#: llm op name -> the short name used in prompt file names.
LLM_OPS = {"llm.step": "step", "llm.gen": "gen", "llm.judge": "judge"}


class VmBackend(Backend):
    """Per-step prompts, scripts and the module for skvm's bundled VM."""

    name = "vm"
    summary = "per-step prompts and scripts for the bundled VM (skvm-run)"

    def emit(self, module: Module) -> Bundle:
        """The VM bundle of ``module``."""
        self.module = module
        self.meta = module.meta
        self._errors_before = self.diagnostics.error_count
        self.notes = {"dropped_keys": [], "moved_to_metadata": [], "warnings": []}
        self.skill_name = self.make_name()
        self.description = self.make_description()
        bundle = Bundle(folder=self.skill_name)
        bundle["skill.skir"] = print_module(module)
        bundle["prompts/context.md"] = self.context()
        rules = self.rules()
        for proc in module.procs():
            n = 0
            for op in proc.walk():
                if op.name in LLM_OPS:
                    n += 1
                    bundle[f"prompts/{proc.sym_name}/{n}-{LLM_OPS[op.name]}.md"] = self.step_prompt(op, rules)
        renderer = BodyRenderer(module, self.harness)
        renderer.render()  # fills renderer.scripts (jit.solid, command runs)
        for path, text in self.generated_files(renderer).items():
            bundle[path] = text
        generated = list(bundle)
        resources = self.copy_resources(bundle, set(generated) | {MANIFEST})
        if self.diagnostics.error_count > self._errors_before:
            raise SkvmError([d for d in self.diagnostics.diagnostics[self._errors_before:]
                             if d.severity.value == "error"])
        bundle[MANIFEST] = self.manifest(generated, resources)
        return bundle

    def rules(self) -> list[str]:
        """Every rule of the skill as one line."""
        return [
            f"- **{RULE_MARKERS.get(op.attr('severity').name, 'MUST')}** {op.attr('text').strip()}"
            for op in self.module.walk() if op.name == "ctx.rule"
        ]

    def context(self) -> str:
        """The shared context: name, description, prose, examples, references."""
        ctx_ops = [op for op in self.module.ops if op.name in ("ctx.text", "ctx.example", "ctx.ref")]
        body = BodyRenderer(self.module.with_ops(ctx_ops), self.harness).render() if ctx_ops else ""
        head = f"# {self.skill_name}\n\n{self.description}\n"
        return head + ("\n" + body if body else "")

    def step_prompt(self, op: Op, rules: list[str]) -> str:
        """The prompt of one model op: rules, task, inputs, result."""
        task = (op.attr("prompt") or op.attr("question") or "").strip()
        lines = [f"# {LLM_OPS[op.name]}: {self.skill_name}", "",
                 "Context: `prompts/context.md`.", ""]
        if rules:
            lines += ["## Rules", "", *rules, ""]
        lines += ["## Task", "", task, ""]
        if op.operands:
            lines += ["## Inputs", "", *(f"- `{name}`" for name in op.operands), ""]
        result = op.results[0].type if op.results else None
        if result is not None:
            lines += ["## Result", "", f"Type: `{result}`."]
            if op.name == "llm.judge":
                lines += ["", "Answer yes or no."]
            if result.schema is not None:
                lines += ["", *fence(json.dumps(result.schema, indent=2, sort_keys=True), "json")]
            lines.append("")
        return "\n".join(lines)
