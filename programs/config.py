"""The programs file (``programs/programs.yml``, or ``CX_PROGRAMS_CONFIG``): loading and checking.

The file has ``defaults`` (control share, response window, contact rules) and a list of
``programs``, each with a name, a priority and an eligibility condition, and any default it
overrides. Every problem is reported with the program and the field, for example
``programs.yml: program 'win_back', field 'eligibility': unknown column 'risk' (did you mean
risk_band?)``, so a marketer can fix the file without reading code.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from programs import eligibility
from programs.members import KNOWN_VALUES, member_columns

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
TOP_LEVEL_FIELDS = ("defaults", "global_holdout", "programs")
HOLDOUT_FIELDS = ("share", "salt")
# What the export's reason columns say: why the member is at risk, or what makes them a good
# relationship (an advocate's reasons are strengths, never churn reasons such as "detractor").
REASON_SETS = ("risk", "strengths")
DEFAULT_FIELDS = ("control_share", "response_window_days", "contact")
CONTACT_FIELDS = ("opt_in_required", "exclude_contacted_within_days", "contact_within_days")
PROGRAM_FIELDS = (
    "name",
    "title",
    "description",
    "priority",
    "enabled",
    "eligibility",
    "reasons",
    *DEFAULT_FIELDS,
)
BUILT_IN_DEFAULTS = {
    "control_share": 0.10,
    "response_window_days": 60,
    "contact": {
        "opt_in_required": True,
        "exclude_contacted_within_days": 30,
        "contact_within_days": 7,
    },
}


class ProgramConfigError(ValueError):
    """The programs file cannot be used; the message names the file, program and field."""


@dataclass(frozen=True)
class ContactRules:
    """Who may be contacted: opt-in (required for email programs) and a rest period."""

    opt_in_required: bool
    exclude_contacted_within_days: int
    # Days after the cycle date by which the members should be contacted: the response window
    # starts on the cycle date, so a late contact shortens it (the report's "by when").
    contact_within_days: int = 7


@dataclass(frozen=True)
class Program:
    """One targeted program, as the marketers configured it."""

    name: str
    title: str
    description: str
    priority: int
    eligibility: str
    control_share: float
    response_window_days: int
    contact: ContactRules
    enabled: bool = True
    reasons: str = "risk"

    def rules(self) -> eligibility.Rules:
        return eligibility.Rules(
            name=self.name,
            priority=self.priority,
            eligibility=self.eligibility,
            opt_in_required=self.contact.opt_in_required,
            exclude_contacted_within_days=self.contact.exclude_contacted_within_days,
        )


@dataclass(frozen=True)
class GlobalHoldout:
    """Members no program ever contacts: those whose SHA-256 of ``salt|member_id`` falls in the
    lowest ``share``. Fixed by the member and the salt alone, so the same members stay out in
    every cycle (the per-program controls are drawn anew each cycle); comparing them with
    everyone else measures what all the programs together do."""

    share: float
    salt: str

    def draw(self, member_id: str) -> float:
        digest = hashlib.sha256(f"{self.salt}|{member_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def holds(self, member_id: str) -> bool:
        return self.draw(member_id) < self.share


@dataclass(frozen=True)
class ProgramsConfig:
    """The enabled programs in priority order, and the file's checksum (recorded per cycle)."""

    programs: tuple[Program, ...]
    sha256: str
    source: str
    holdout: GlobalHoldout | None = None

    def by_name(self) -> dict[str, Program]:
        return {p.name: p for p in self.programs}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one block (YAML would keep the last)."""

    # What a block with a ``name`` is called in the message (the case rules' loader says
    # "block": a trigger, a closer).
    block_label = "program"


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[object, int] = {}
    names = [
        value.value
        for key, value in node.value
        if isinstance(key, yaml.ScalarNode) and key.value == "name"
        if isinstance(value, yaml.ScalarNode)
    ]
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            program = f"{loader.block_label} {names[0]!r}, " if names else ""
            raise ProgramConfigError(
                f"{program}field {key!r}: given twice in the same block (lines {seen[key]} and "
                f"{line}); YAML would silently keep only the last"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Where:
    """Builds messages that name the file, the program and the field."""

    def __init__(self, source: str, program: str | None = None):
        self.source = source
        self.program = program

    def error(self, field: str | None, message: str) -> ProgramConfigError:
        where = [self.source]
        if self.program is not None:
            where.append(f"program {self.program!r}")
        if field is not None:
            where.append(f"field {field!r}")
        return ProgramConfigError(f"{', '.join(where)}: {message}")


def _unknown_fields(block: Mapping, allowed: tuple[str, ...], where: _Where, prefix: str = ""):
    for key in block:
        if key not in allowed:
            close = [f"{prefix}{c}" for c in difflib.get_close_matches(str(key), allowed)]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise where.error(
                f"{prefix}{key}", f"unknown field{hint}; known fields: {', '.join(allowed)}"
            )


def _as_bool(value, field: str, where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.error(field, f"must be true or false, not {value!r}")
    return value


def _as_int(value, field: str, where: _Where, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(field, f"must be a whole number, not {value!r}")
    if value < minimum:
        raise where.error(field, f"must be at least {minimum}, not {value}")
    return value


def _as_share(value, field: str, where: _Where) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(field, f"must be a number between 0 and 0.5, not {value!r}")
    if not 0 < value <= 0.5:
        raise where.error(
            field,
            f"must be above 0 (every program keeps a control group) and at most 0.5, not {value}",
        )
    return float(value)


def _contact(block, base: Mapping, where: _Where) -> ContactRules:
    if block is None:
        block = {}
    if not isinstance(block, Mapping):
        raise where.error("contact", "must be a block of contact rules")
    _unknown_fields(block, CONTACT_FIELDS, where, prefix="contact.")
    merged = {**base, **block}
    return ContactRules(
        opt_in_required=_as_bool(merged["opt_in_required"], "contact.opt_in_required", where),
        exclude_contacted_within_days=_as_int(
            merged["exclude_contacted_within_days"],
            "contact.exclude_contacted_within_days",
            where,
            minimum=0,
        ),
        contact_within_days=_as_int(
            merged["contact_within_days"], "contact.contact_within_days", where, minimum=1
        ),
    )


def _defaults(block, source: str) -> dict:
    where = _Where(source)
    if block is None:
        return BUILT_IN_DEFAULTS
    if not isinstance(block, Mapping):
        raise where.error("defaults", "must be a block of default values")
    _unknown_fields(block, DEFAULT_FIELDS, where, prefix="defaults.")
    contact = block.get("contact") or {}
    if not isinstance(contact, Mapping):
        raise where.error("defaults.contact", "must be a block of contact rules")
    _unknown_fields(contact, CONTACT_FIELDS, where, prefix="defaults.contact.")
    merged = {**BUILT_IN_DEFAULTS, **block}
    merged["contact"] = {**BUILT_IN_DEFAULTS["contact"], **contact}
    _as_share(merged["control_share"], "defaults.control_share", where)
    _as_int(merged["response_window_days"], "defaults.response_window_days", where, minimum=1)
    _as_bool(merged["contact"]["opt_in_required"], "defaults.contact.opt_in_required", where)
    _as_int(
        merged["contact"]["exclude_contacted_within_days"],
        "defaults.contact.exclude_contacted_within_days",
        where,
        minimum=0,
    )
    _as_int(
        merged["contact"]["contact_within_days"],
        "defaults.contact.contact_within_days",
        where,
        minimum=1,
    )
    return merged


def _program(block, index: int, defaults: Mapping, columns, source: str) -> Program:
    if not isinstance(block, Mapping):
        raise _Where(source).error(f"programs[{index + 1}]", "must be a block with name, ...")
    name = block.get("name")
    where = _Where(source, program=str(name) if name is not None else f"#{index + 1}")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise where.error(
            "name",
            "is required: lower-case letters, digits and _, starting with a letter "
            f"(it names the export files), not {name!r}",
        )
    _unknown_fields(block, PROGRAM_FIELDS, where)
    for required in ("priority", "eligibility"):
        if required not in block:
            raise where.error(required, "is required")
    condition = block["eligibility"]
    if isinstance(condition, bool):  # `eligibility: true` (everyone) reads as a YAML boolean
        condition = str(condition).lower()
    if isinstance(condition, str):
        # On one line, as stored and run, so the check sees the text the cycle parses.
        condition = " ".join(condition.split())
    try:
        eligibility.check_expression(condition, columns, KNOWN_VALUES)
    except eligibility.ExpressionError as error:
        raise where.error("eligibility", str(error)) from None
    title = block.get("title", name.replace("_", " ").capitalize())
    description = block.get("description", "")
    for field, value in (("title", title), ("description", description)):
        if not isinstance(value, str):
            raise where.error(field, f"must be text, not {value!r}")
    return Program(
        name=name,
        title=title.strip(),
        description=" ".join(description.split()),
        priority=_as_int(block["priority"], "priority", where, minimum=1),
        eligibility=condition,
        control_share=_as_share(
            block.get("control_share", defaults["control_share"]), "control_share", where
        ),
        response_window_days=_as_int(
            block.get("response_window_days", defaults["response_window_days"]),
            "response_window_days",
            where,
            minimum=1,
        ),
        contact=_contact(block.get("contact"), defaults["contact"], where),
        enabled=_as_bool(block.get("enabled", True), "enabled", where),
        reasons=_reason_set(block.get("reasons", "risk"), where),
    )


def _reason_set(value, where: _Where) -> str:
    if value not in REASON_SETS:
        raise where.error("reasons", f"must be one of {', '.join(REASON_SETS)}, not {value!r}")
    return value


def _holdout(block, source: str) -> GlobalHoldout | None:
    where = _Where(source)
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise where.error("global_holdout", "must be a block with share and salt")
    _unknown_fields(block, HOLDOUT_FIELDS, where, prefix="global_holdout.")
    for required in HOLDOUT_FIELDS:
        if required not in block:
            raise where.error(f"global_holdout.{required}", "is required")
    salt = block["salt"]
    if not isinstance(salt, str) or not salt.strip():
        raise where.error("global_holdout.salt", f"must be non-empty text, not {salt!r}")
    share = block["share"]
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 0.2:
        raise where.error(
            "global_holdout.share",
            f"must be a number above 0 and at most 0.2 (a share of all members), not {share!r}",
        )
    return GlobalHoldout(float(share), salt.strip())


def _check_overlaps(programs: list[Program], source: str) -> None:
    names: dict[str, str] = {}
    priorities: dict[int, str] = {}
    for program in programs:
        # Names must differ even ignoring case and -/_ since they name files side by side.
        key = program.name.lower().replace("-", "_")
        if key in names:
            raise _Where(source, program.name).error(
                "name", f"is used by another program ({names[key]!r}); names must be unique"
            )
        names[key] = program.name
        if program.enabled and program.priority in priorities:
            raise _Where(source, program.name).error(
                "priority",
                f"{program.priority} is also the priority of {priorities[program.priority]!r}; "
                "each member joins one program per cycle, so priorities must differ",
            )
        if program.enabled:
            priorities[program.priority] = program.name


def parse(text: str, source: str = "programs.yml", columns=None) -> ProgramsConfig:
    """Check and load the text of a programs file; raise ``ProgramConfigError`` on any problem."""
    columns = columns or member_columns()
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)
    except ProgramConfigError as error:
        raise _Where(source).error(None, str(error)) from None
    except yaml.YAMLError as error:
        raise _Where(source).error(None, f"is not valid YAML: {error}") from None
    if not isinstance(document, Mapping):
        raise _Where(source).error(None, "must have a 'programs' list (and optional 'defaults')")
    _unknown_fields(document, TOP_LEVEL_FIELDS, _Where(source))
    blocks = document.get("programs")
    if not isinstance(blocks, list) or not blocks:
        raise _Where(source).error("programs", "must be a list with at least one program")
    defaults = _defaults(document.get("defaults"), source)
    programs = [_program(b, i, defaults, columns, source) for i, b in enumerate(blocks)]
    _check_overlaps(programs, source)
    enabled = sorted((p for p in programs if p.enabled), key=lambda p: p.priority)
    if not enabled:
        raise _Where(source).error("programs", "every program is disabled")
    return ProgramsConfig(
        programs=tuple(enabled),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        source=source,
        holdout=_holdout(document.get("global_holdout"), source),
    )


def load(path: Path) -> ProgramsConfig:
    """Read and check the programs file at ``path`` (``settings.programs_config``)."""
    path = Path(path)
    if not path.is_file():
        raise ProgramConfigError(
            f"{path}: no such programs file (set CX_PROGRAMS_CONFIG, default programs/programs.yml)"
        )
    return parse(path.read_text(encoding="utf-8"), source=path.name)
