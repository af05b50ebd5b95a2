"""The case rules (``programs/cases.yml``, or ``CX_CASES_CONFIG``): loading and checking.

The file names the severities with their service levels, the triggers that open a case (a
condition over one survey answer or one contact) and the closers that close one. It is checked
the way the programs file is: every problem names the file, the block and the field, for example
``cases.yml: trigger 'detractor', field 'severity': 'urgent' is not a severity (known: high,
medium, low)``, and a condition is parsed and bound by the same code as a program's eligibility
(``programs.eligibility``), over the source's columns (``SOURCE_COLUMNS``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from programs import eligibility
from programs.config import (
    NAME_PATTERN,
    ProgramConfigError,
    _as_int,
    _UniqueKeyLoader,
    _unknown_fields,
)

TOP_LEVEL_FIELDS = ("lookback_days", "severities", "triggers", "closers", "webhook")
SEVERITY_FIELDS = ("due_within_hours",)
TRIGGER_FIELDS = ("name", "title", "source", "condition", "severity", "queue", "closed_by")
CLOSER_FIELDS = ("name", "title", "source", "condition")
WEBHOOK_FIELDS = ("attempts", "backoff_seconds")
WEBHOOK_DEFAULTS = {"attempts": 4, "backoff_seconds": 2}

# What a condition may read, per source: one row of the mart, as (DuckDB type, meaning). Only
# what is known when the record arrives: `is_first_contact_resolution` and
# `has_repeat_contact_after` look at later contacts, so a replay would read the future.
SOURCE_COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "surveys": {
        "survey_type": ("varchar", "relationship, post_call or transactional"),
        "response_channel": ("varchar", "the channel the answer came through"),
        "nps_category": ("varchar", "promoter (9-10), passive (7-8) or detractor (0-6)"),
        "is_promoter": ("boolean", "an NPS answer of 9 or 10"),
        "is_detractor": ("boolean", "an NPS answer of 0 to 6"),
        "csat_score": ("bigint", "satisfaction, 1-5"),
        "ces_score": ("bigint", "ease of getting help, 1-7 (higher is easier)"),
        "has_comment": ("boolean", "the answer has a comment"),
        "comment_sentiment_label": ("varchar", "negative, neutral or positive"),
        "is_negative_moment": ("boolean", "the warehouse counts the answer as a negative moment"),
        "is_positive_moment": ("boolean", "the warehouse counts the answer as a positive moment"),
    },
    "calls": {
        "contact_channel": ("varchar", "phone, chat or callback"),
        "contact_reason": ("varchar", "why the member got in touch"),
        "queue_seconds": ("bigint", "seconds in the queue"),
        "transfer_count": ("bigint", "transfers between agents"),
        "is_resolved": ("boolean", "the agent marked the contact resolved"),
        "is_unresolved": ("boolean", "the agent marked the contact not resolved"),
        "is_escalated": ("boolean", "the contact was escalated"),
        "is_transferred": ("boolean", "transferred at least once"),
        "is_long_wait": ("boolean", "a long wait in the queue"),
        "is_repeat_contact": ("boolean", "the member's previous contact was within 7 days"),
    },
}
# The mart each source reads, its record key and the time a record arrived.
SOURCES = {
    "surveys": ("fct_survey_responses", "response_id", "submitted_at"),
    "calls": ("fct_calls", "call_id", "started_at"),
}
KNOWN_VALUES = {
    "nps_category": ("promoter", "passive", "detractor"),
    "comment_sentiment_label": ("negative", "neutral", "positive"),
}


class CaseConfigError(ProgramConfigError):
    """The case rules cannot be used; the message names the file, block and field."""


@dataclass(frozen=True)
class Trigger:
    name: str
    title: str
    source: str
    condition: str
    severity: str
    queue: str
    closed_by: tuple[str, ...]


@dataclass(frozen=True)
class Closer:
    name: str
    title: str
    source: str
    condition: str


@dataclass(frozen=True)
class CaseRules:
    """The checked rules: triggers in order, closers, service levels in hours, webhook retries."""

    lookback_days: int
    service_levels: Mapping[str, int]
    triggers: tuple[Trigger, ...]
    closers: tuple[Closer, ...]
    webhook_attempts: int
    webhook_backoff_seconds: float
    sha256: str
    source: str

    def trigger(self, name: str) -> Trigger:
        return next(t for t in self.triggers if t.name == name)


class _CaseLoader(_UniqueKeyLoader):
    block_label = "block"


class _Where:
    def __init__(self, source: str, block: str | None = None):
        self.source = source
        self.block = block

    def error(self, field: str | None, message: str) -> CaseConfigError:
        where = [self.source]
        if self.block is not None:
            where.append(self.block)
        if field is not None:
            where.append(f"field {field!r}")
        return CaseConfigError(f"{', '.join(where)}: {message}")


def _text(block: Mapping, field: str, where: _Where, default: str | None = None) -> str:
    value = block.get(field, default)
    if not isinstance(value, str) or not value.strip():
        raise where.error(field, f"is required: text, not {value!r}")
    return " ".join(value.split())


def _name(block, kind: str, index: int, source: str) -> tuple[str, _Where]:
    if not isinstance(block, Mapping):
        raise _Where(source).error(f"{kind}s[{index + 1}]", "must be a block with a name, ...")
    name = block.get("name")
    where = _Where(source, f"{kind} {name if name is not None else f'#{index + 1}'!r}")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise where.error(
            "name",
            f"is required: lower-case letters, digits and _, starting with a letter, not {name!r}",
        )
    return name, where


def _source_and_condition(block: Mapping, where: _Where) -> tuple[str, str]:
    source = block.get("source")
    if source not in SOURCE_COLUMNS:
        raise where.error("source", f"must be one of {', '.join(SOURCE_COLUMNS)}, not {source!r}")
    condition = block.get("condition")
    if isinstance(condition, bool):  # `condition: true` reads as a YAML boolean
        condition = str(condition).lower()
    if isinstance(condition, str):
        condition = " ".join(condition.split())
    try:
        eligibility.check_expression(condition, SOURCE_COLUMNS[source], KNOWN_VALUES)
    except eligibility.ExpressionError as error:
        message = str(error).replace("member columns", f"{source} columns")
        raise where.error("condition", message) from None
    return source, condition


def _severities(block, source: str) -> dict[str, int]:
    where = _Where(source)
    if not isinstance(block, Mapping) or not block:
        raise where.error("severities", "must name at least one severity with due_within_hours")
    levels = {}
    for name, entry in block.items():
        inner = _Where(source, f"severity {name!r}")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise inner.error(None, "a severity's name is lower-case letters, digits and _")
        if not isinstance(entry, Mapping):
            raise inner.error("due_within_hours", "is required (hours from opening to due)")
        _unknown_fields(entry, SEVERITY_FIELDS, inner)
        if "due_within_hours" not in entry:
            raise inner.error("due_within_hours", "is required (hours from opening to due)")
        levels[name] = _as_int(entry["due_within_hours"], "due_within_hours", inner, minimum=1)
    return levels


def _trigger(block, index: int, levels: Mapping[str, int], closers, source: str) -> Trigger:
    name, where = _name(block, "trigger", index, source)
    _unknown_fields(block, TRIGGER_FIELDS, where)
    for required in ("source", "condition", "severity", "queue"):
        if required not in block:
            raise where.error(required, "is required")
    kind, condition = _source_and_condition(block, where)
    severity = block["severity"]
    if severity not in levels:
        raise where.error(
            "severity", f"{severity!r} is not a severity (known: {', '.join(levels)})"
        )
    queue = block["queue"]
    if not isinstance(queue, str) or not NAME_PATTERN.match(queue):
        raise where.error(
            "queue", f"must be a queue name (lower-case, digits and _), not {queue!r}"
        )
    closed_by = block.get("closed_by", [c.name for c in closers])
    if not isinstance(closed_by, list) or not all(isinstance(c, str) for c in closed_by):
        raise where.error("closed_by", "must be a list of closer names")
    unknown = [c for c in closed_by if c not in {closer.name for closer in closers}]
    if unknown:
        known = ", ".join(c.name for c in closers) or "none defined"
        raise where.error("closed_by", f"no closer named {unknown[0]!r} (closers: {known})")
    return Trigger(
        name=name,
        title=_text(block, "title", where, name.replace("_", " ").capitalize()),
        source=kind,
        condition=condition,
        severity=severity,
        queue=queue,
        closed_by=tuple(closed_by),
    )


def _closer(block, index: int, source: str) -> Closer:
    name, where = _name(block, "closer", index, source)
    _unknown_fields(block, CLOSER_FIELDS, where)
    for required in ("source", "condition"):
        if required not in block:
            raise where.error(required, "is required")
    kind, condition = _source_and_condition(block, where)
    title = _text(block, "title", where, name.replace("_", " ").capitalize())
    return Closer(name=name, title=title, source=kind, condition=condition)


def _unique(names: list[str], kind: str, source: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise _Where(source, f"{kind} {name!r}").error(
                "name", "is used twice; names are unique"
            )
        seen.add(name)


def parse(text: str, source: str = "cases.yml") -> CaseRules:
    """Check and load the text of a case rules file; raise ``CaseConfigError`` on any problem."""
    where = _Where(source)
    try:
        document = yaml.load(text, Loader=_CaseLoader)
    except ProgramConfigError as error:
        raise where.error(None, str(error)) from None
    except yaml.YAMLError as error:
        raise where.error(None, f"is not valid YAML: {error}") from None
    if not isinstance(document, Mapping):
        raise where.error(None, "must have severities, triggers and closers")
    _unknown_fields(document, TOP_LEVEL_FIELDS, where)
    lookback = _as_int(document.get("lookback_days", 14), "lookback_days", where, minimum=0)
    levels = _severities(document.get("severities"), source)
    closer_blocks = document.get("closers") or []
    if not isinstance(closer_blocks, list):
        raise where.error("closers", "must be a list of closers")
    closers = [_closer(b, i, source) for i, b in enumerate(closer_blocks)]
    blocks = document.get("triggers")
    if not isinstance(blocks, list) or not blocks:
        raise where.error("triggers", "must be a list with at least one trigger")
    triggers = [_trigger(b, i, levels, closers, source) for i, b in enumerate(blocks)]
    _unique([t.name for t in triggers], "trigger", source)
    _unique([c.name for c in closers], "closer", source)
    webhook = document.get("webhook") or {}
    if not isinstance(webhook, Mapping):
        raise where.error("webhook", "must be a block with attempts and backoff_seconds")
    _unknown_fields(webhook, WEBHOOK_FIELDS, where, prefix="webhook.")
    webhook = {**WEBHOOK_DEFAULTS, **webhook}
    attempts = _as_int(webhook["attempts"], "webhook.attempts", where, minimum=1)
    backoff = webhook["backoff_seconds"]
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0:
        raise where.error("webhook.backoff_seconds", f"must be 0 or more seconds, not {backoff!r}")
    return CaseRules(
        lookback_days=lookback,
        service_levels=levels,
        triggers=tuple(triggers),
        closers=tuple(closers),
        webhook_attempts=attempts,
        webhook_backoff_seconds=float(backoff),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        source=source,
    )


def load(path: Path) -> CaseRules:
    """Read and check the case rules at ``path`` (``settings.cases_config``)."""
    path = Path(path)
    if not path.is_file():
        raise CaseConfigError(
            f"{path}: no such case rules file (set CX_CASES_CONFIG, default programs/cases.yml)"
        )
    return parse(path.read_text(encoding="utf-8"), source=path.name)
