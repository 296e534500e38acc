"""Target capability profiles: what a model + harness pair can reliably do.

A profile gives, for each capability primitive of :mod:`skvm.capabilities`,
the highest level the pair reached when measured. A primitive the profile does
not list (or lists under ``missing``) is *unknown*, which is not the same as
``L0``: :meth:`TargetProfile.level` returns ``None`` for it so that
``legalize`` can say so instead of silently treating it as absent.

Profiles are JSON files checked against
``skvm/schemas/target-profile.schema.json``. Five measured profiles ship as
built-in targets under ``skvm/targets/profiles/``; :func:`load_target` accepts
``<model>@<harness>`` (provider prefix optional, ``bare`` = ``bare-agent``)
or a path to a profile file.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from skvm import jsonfile
from skvm.capabilities import PRIMITIVES, level_name, level_value
from skvm.diagnostics import Diagnostic, Severity, SkvmError

SCHEMA_NAME = "target-profile.schema.json"

# Short names users may type for a harness; the profile files use the long one.
HARNESS_ALIASES: dict[str, str] = {
    "bare": "bare-agent",
}


@attrs.frozen
class TargetProfile:
    """The measured capability levels of one model on one harness."""

    model: str
    harness: str
    # (primitive, level value) pairs in catalog order; absent = unknown.
    levels: tuple[tuple[str, int], ...]
    missing: frozenset[str] = frozenset()
    provenance: str = ""
    measured: str = ""
    # (primitive, ((level name, fraction passed), ...)) pairs, catalog order.
    pass_rates: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    notes: str = ""
    _level_map: dict[str, int] = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        # A lookup table built once; level() is called per op by legalize.
        object.__setattr__(self, "_level_map", dict(self.levels))

    @property
    def key(self) -> str:
        """The target's name as ``<model>@<harness>`` (model with its provider)."""
        return f"{self.model}@{self.harness}"

    @property
    def short_key(self) -> str:
        """The target's name without the model's provider prefix."""
        return f"{_strip_provider(self.model)}@{self.harness}"

    def level(self, primitive: str) -> int | None:
        """The level value reached for ``primitive``, or None when unknown (not 0)."""
        return self._level_map.get(primitive)

    def is_known(self, primitive: str) -> bool:
        """Whether the profile measured ``primitive``."""
        return primitive in self._level_map

    def pass_rate(self, primitive: str, level: str) -> float | None:
        """The fraction of instances passed at ``level``, or None when not recorded."""
        for prim, rates in self.pass_rates:
            if prim == primitive:
                return dict(rates).get(level)
        return None

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON data that validates against the schema."""
        data: dict[str, Any] = {"model": self.model, "harness": self.harness}
        if self.measured:
            data["measured"] = self.measured
        if self.provenance:
            data["source"] = self.provenance
        data["missing"] = sorted(self.missing, key=_catalog_order)
        data["capabilities"] = {p: level_name(v) for p, v in self.levels}
        if self.pass_rates:
            data["pass_rates"] = {p: dict(r) for p, r in self.pass_rates}
        if self.notes:
            data["notes"] = self.notes
        return data


def _catalog_order(primitive: str) -> tuple[int, str]:
    order = list(PRIMITIVES)
    return (order.index(primitive) if primitive in PRIMITIVES else len(order), primitive)


def _strip_provider(model: str) -> str:
    return model.rsplit("/", 1)[-1]


# -- schema ------------------------------------------------------------------


def profile_schema() -> dict[str, Any]:
    """The JSON Schema of target profiles, as shipped in the package."""
    return jsonfile.load_schema(SCHEMA_NAME)


def validate_profile(
    data: Any, origin: str = "<profile>", text: str | None = None
) -> list[Diagnostic]:
    """Check profile data against the schema and the catalog; return the errors."""
    diags: list[Diagnostic] = []
    for err in jsonfile.schema_errors(SCHEMA_NAME, data):
        message = err.message
        notes: tuple[Diagnostic, ...] = ()
        if err.validator == "enum" and isinstance(err.instance, str):
            # The enum lists are the whole catalog: name the kind, suggest one.
            kind = (
                "a capability primitive" if err.validator_value == list(PRIMITIVES) else "a level"
            )
            message = f"'{err.instance}' is not {kind}"
            hint = difflib.get_close_matches(err.instance, err.validator_value, n=1)
            if hint:
                notes = (Diagnostic(Severity.NOTE, f"did you mean '{hint[0]}'?"),)
        diags.append(
            Diagnostic(
                Severity.ERROR,
                f"invalid target profile at {err.json_path}: {message}",
                jsonfile.locate(text, origin, err.path),
                notes,
            )
        )
    if diags or not isinstance(data, dict):
        return diags
    both = sorted(set(data.get("missing", ())) & set(data["capabilities"]), key=_catalog_order)
    for prim in both:
        diags.append(
            Diagnostic(
                Severity.ERROR,
                f"invalid target profile at $.missing: '{prim}' is both missing and "
                f"measured in $.capabilities",
                jsonfile.locate(text, origin, ("missing",)),
            )
        )
    return diags


def profile_from_dict(
    data: Any, origin: str = "<profile>", text: str | None = None, *, trusted: bool = False
) -> TargetProfile:
    """Build a profile from JSON data, raising SkvmError when it is invalid.

    ``trusted`` skips the schema check, for the profiles shipped in the
    package (the test suite validates each of them against the schema).
    """
    diags = [] if trusted else validate_profile(data, origin, text)
    if diags:
        raise SkvmError(diags)
    caps: Mapping[str, str] = data["capabilities"]
    levels = tuple((prim, level_value(caps[prim])) for prim in PRIMITIVES if prim in caps)
    rates = data.get("pass_rates", {})
    pass_rates = tuple(
        (prim, tuple(sorted((lvl, float(v)) for lvl, v in rates[prim].items())))
        for prim in PRIMITIVES
        if prim in rates
    )
    return TargetProfile(
        model=data["model"],
        harness=data["harness"],
        levels=levels,
        missing=frozenset(data.get("missing", ())),
        provenance=data.get("source", ""),
        measured=data.get("measured", ""),
        pass_rates=pass_rates,
        notes=data.get("notes", ""),
    )


def load_profile_file(path: str | Path) -> TargetProfile:
    """Read and validate a profile JSON file; problems are located diagnostics."""
    origin = Path(path).as_posix()
    data, text = jsonfile.read_json(path, "target profile", origin)
    return profile_from_dict(data, origin, text)


# -- built-in targets --------------------------------------------------------


@functools.cache
def _builtins() -> dict[str, TargetProfile]:
    """Every shipped profile by its short key, loaded once."""
    found: dict[str, TargetProfile] = {}
    folder = resources.files("skvm").joinpath("targets", "profiles")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        text = entry.read_text("utf-8")
        origin = f"skvm/targets/profiles/{entry.name}"
        profile = profile_from_dict(json.loads(text), origin, text, trusted=True)
        found[profile.short_key] = profile
    return found


@functools.cache
def _builtins_by_spec() -> dict[tuple[str, str], TargetProfile]:
    """The shipped profiles by normalized ``(model, harness)`` (the first one wins), built once."""
    index: dict[tuple[str, str], TargetProfile] = {}
    for profile in _builtins().values():
        key = (_strip_provider(profile.model).casefold(), profile.harness.casefold())
        index.setdefault(key, profile)
    return index


def builtin_targets() -> list[str]:
    """Names of the built-in targets (``<model>@<harness>``), sorted."""
    return sorted(_builtins())


def _normalize_spec(spec: str) -> tuple[str, str] | None:
    model, sep, harness = spec.strip().casefold().rpartition("@")
    if not sep or not model or not harness:
        return None
    return _strip_provider(model), HARNESS_ALIASES.get(harness, harness)


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".json") or ("/" in spec and "@" not in spec) or Path(spec).is_file()


def load_target(spec: str) -> TargetProfile:
    """Resolve ``<model>@<harness>`` or a profile path to a validated profile.

    Raises:
        SkvmError: the target is unknown, the file is missing or invalid.
    """
    if _looks_like_path(spec):
        return load_profile_file(spec)
    wanted = _normalize_spec(spec)
    if wanted is not None:
        found = _builtins_by_spec().get(wanted)
        if found is not None:
            return found
    names = builtin_targets()
    notes = [Diagnostic(Severity.NOTE, "built-in targets: " + ", ".join(names))]
    close = difflib.get_close_matches(spec.casefold(), names, n=1, cutoff=0.5)
    if close:
        notes.insert(0, Diagnostic(Severity.NOTE, f"did you mean '{close[0]}'?"))
    if wanted is None:
        message = f"malformed target '{spec}': expected <model>@<harness> or a profile .json file"
    else:
        message = f"unknown target '{spec}'"
    raise SkvmError(Diagnostic(Severity.ERROR, message, None, tuple(notes)))


def uniform_target(level: int, *, missing: tuple[str, ...] = ()) -> TargetProfile:
    """A synthetic profile at ``level`` on every primitive (for tests).

    Args:
        level: the level value 0..3 of every measured primitive.
        missing: primitives to leave unknown instead.
    """
    level_name(level)  # range check
    return TargetProfile(
        model=f"synthetic/uniform-l{level}",
        harness="synthetic",
        levels=tuple((p, level) for p in PRIMITIVES if p not in missing),
        missing=frozenset(missing),
        provenance="synthetic profile for tests",
    )
