"""The readable rules: the CX complaint lexicon over VADER, topics and effort phrases.

``lexicon.yml`` and ``topics.yml`` next to this file say what each rule is and where it comes
from; this module only compiles and applies them. Everything here is a pure function of the
text, so the fallback gives the same answer on every machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
LEXICON_FILE = HERE / "lexicon.yml"
TOPICS_FILE = HERE / "topics.yml"

# VADER's conventional thresholds, as warehouse/enrich.py and dbt_project.yml use them.
POSITIVE_MIN = 0.05
NEGATIVE_MAX = -0.05
LABELS = ("negative", "neutral", "positive")
# What each effort phrase takes off the score: effort is a complaint even in polite words.
EFFORT_WEIGHT = 0.3


class RulesError(ValueError):
    """A lexicon or taxonomy file that cannot be used, naming the file and the entry."""


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern
    weight: float
    source: str


@dataclass(frozen=True)
class Lexicon:
    complaint_terms: tuple[Rule, ...]
    negated_praise: tuple[Rule, ...]
    sarcasm_cues: tuple[Rule, ...]
    effort_phrases: tuple[Rule, ...]


@dataclass(frozen=True)
class Topic:
    key: str
    label: str
    pattern: re.Pattern


def _compile(text: str, where: str) -> re.Pattern:
    try:
        return re.compile(rf"\b(?:{text})\b", re.IGNORECASE)
    except re.error as error:
        raise RulesError(
            f"{where}: pattern {text!r} is not a regular expression: {error}"
        ) from error


def _rules(entries: object, path: Path, block: str, weighted: bool) -> tuple[Rule, ...]:
    if not isinstance(entries, list) or not entries:
        raise RulesError(f"{path}: {block} must be a non-empty list")
    rules = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: {block} entry {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str):
            raise RulesError(f"{where}: needs a pattern")
        if not str(entry.get("source") or "").strip():
            raise RulesError(f"{where}: needs a source (where the rule comes from)")
        weight = entry.get("weight", 1.0 if not weighted else None)
        if not isinstance(weight, int | float) or weight < 0:
            raise RulesError(f"{where}: weight must be a number >= 0")
        rules.append(Rule(_compile(entry["pattern"], where), float(weight), entry["source"]))
    return tuple(rules)


def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return Lexicon(
        complaint_terms=_rules(document.get("complaint_terms"), path, "complaint_terms", True),
        negated_praise=_rules(document.get("negated_praise"), path, "negated_praise", True),
        sarcasm_cues=_rules(document.get("sarcasm_cues"), path, "sarcasm_cues", True),
        effort_phrases=_rules(document.get("effort_phrases"), path, "effort_phrases", False),
    )


def load_topics(path: Path = TOPICS_FILE) -> tuple[Topic, ...]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    topics = document.get("topics")
    if not isinstance(topics, dict) or not topics:
        raise RulesError(f"{path}: topics must be a mapping of topic keys")
    out = []
    for key, entry in topics.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(key)):
            raise RulesError(f"{path}: topic key {key!r} must be lower_snake_case")
        phrases = (entry or {}).get("phrases")
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise RulesError(f"{path}: topic {key}: phrases must be a list of patterns")
        alternatives = "|".join(f"(?:{phrase})" for phrase in phrases)
        out.append(Topic(key, str(entry.get("label") or key), _compile(alternatives, key)))
    return tuple(out)


@cache
def lexicon() -> Lexicon:
    return load_lexicon()


@cache
def topics() -> tuple[Topic, ...]:
    return load_topics()


def topic_keys() -> tuple[str, ...]:
    return tuple(topic.key for topic in topics())


def label_of(score: float) -> str:
    if score >= POSITIVE_MIN:
        return "positive"
    if score <= NEGATIVE_MAX:
        return "negative"
    return "neutral"


def topics_of(text: str | None) -> tuple[str, ...]:
    """The taxonomy's topics the text mentions, in the taxonomy's order."""
    if not text:
        return ()
    return tuple(topic.key for topic in topics() if topic.pattern.search(text))


def effort_mentions(text: str | None) -> int:
    """How many distinct effort phrases (lexicon.yml effort_phrases) the text contains."""
    if not text:
        return 0
    return sum(1 for rule in lexicon().effort_phrases if rule.pattern.search(text))


def _hits(rules: Iterable[Rule], text: str) -> float:
    return sum(rule.weight for rule in rules if rule.pattern.search(text))


@dataclass(frozen=True)
class RuleScore:
    score: float
    vader: float
    complaint: float
    sarcasm: float


def lexicon_score(text: str, vader: float) -> RuleScore:
    """VADER's compound for ``text`` corrected by the lexicon (see lexicon.yml's header)."""
    rules = lexicon()
    complaint = _hits(rules.complaint_terms, text) + _hits(rules.negated_praise, text)
    complaint += EFFORT_WEIGHT * sum(1 for r in rules.effort_phrases if r.pattern.search(text))
    sarcasm = _hits(rules.sarcasm_cues, text)
    base = -abs(vader) - sarcasm if sarcasm > 0 else vader
    return RuleScore(max(-1.0, min(1.0, base - complaint)), vader, complaint, sarcasm)


class VaderScorer:
    """The baseline: VADER's compound with its conventional thresholds, nothing else.
    ``score(texts)`` gives labels and scores in -1..1; each distinct text is scored once."""

    name = "vader"
    version = "vader"

    def __init__(self, analyzer=None):
        if analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            analyzer = SentimentIntensityAnalyzer()
        self.analyzer = analyzer

    def score_one(self, text: str) -> float:
        return float(self.analyzer.polarity_scores(text)["compound"])

    def score(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        cache: dict[str, float] = {}
        for text in texts:
            if text not in cache:
                cache[text] = self.score_one(text)
        scores = [cache[text] for text in texts]
        return [label_of(score) for score in scores], scores


class LexiconScorer(VaderScorer):
    """The fallback: VADER plus the CX complaint lexicon (``lexicon_score``)."""

    name = "vader+lexicon"
    version = "lexicon"

    def score_one(self, text: str) -> float:
        return lexicon_score(text, super().score_one(text)).score
