"""Sentiment, topics and effort for the lake's survey comments and call notes, before dbt.

``prepare_scorer`` trains the deployment's classifier when its labelled comments changed
(warehouse/text/classifier.py) and returns the scorer to use: the ``cx_sentiment`` champion, or
VADER with the CX complaint lexicon. When that scorer is not the one the lake's enriched files
were written with (a new champion, an edited lexicon or taxonomy), every partition is scored
again, so one build never mixes two scorers.

Call notes: ``<lake>/enriched/call_notes/<partition>.parquet``, one row per call with a note:
``call_id``, ``note_sentiment`` (-1..1), ``note_sentiment_label``, ``note_topics`` (the
taxonomy's keys, comma-separated, empty when none), ``note_effort_mentions``, ``sentiment_model``
and the lineage dbt deduplicates on. Survey comments get the same columns in
``enriched/survey_sentiment`` (warehouse/enrich.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.text import rules

MARKER = "text_scorer.json"

CALL_NOTES_SCHEMA = pa.schema(
    [
        pa.field("call_id", pa.string()),
        pa.field("note_sentiment", pa.float64()),
        pa.field("note_sentiment_label", pa.string()),
        pa.field("note_topics", pa.string()),
        pa.field("note_effort_mentions", pa.int64()),
        pa.field("sentiment_model", pa.string()),
        pa.field("_source_file", pa.string()),
        pa.field("_interval_end", pa.timestamp("us", tz="UTC")),
    ]
)


def rules_digest() -> str:
    """The lexicon's and the taxonomy's content: editing either re-scores the lake."""
    digest = hashlib.sha256()
    for path in (rules.LEXICON_FILE, rules.TOPICS_FILE):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def scorer_id(scorer) -> str:
    return f"{scorer.name} {scorer.version} rules {rules_digest()}"


def score_texts(texts: pa.Array, scorer) -> dict[str, pa.Array]:
    """Sentiment, label, topics and effort mentions for ``texts`` (non-empty strings), each
    distinct text scored once."""
    encoded = pc.dictionary_encode(texts)
    distinct = encoded.dictionary.to_pylist()
    labels, scores = scorer.score(distinct)
    topics = [",".join(rules.topics_of(text)) for text in distinct]
    effort = [rules.effort_mentions(text) for text in distinct]
    return {
        "sentiment": pc.take(pa.array(scores, pa.float64()), encoded.indices),
        "label": pc.take(pa.array(labels, pa.string()), encoded.indices),
        "topics": pc.take(pa.array(topics, pa.string()), encoded.indices),
        "effort": pc.take(pa.array(effort, pa.int64()), encoded.indices),
    }


def kept_texts(table: pa.Table, key: str, column: str, present: set[str]):
    """The rows with a key and a non-blank text: (mask, trimmed texts of those rows)."""
    rows = table.num_rows
    texts = (
        pc.utf8_trim_whitespace(table[column].combine_chunks().cast(pa.string()))
        if column in present
        else pa.nulls(rows, pa.string())
    )
    keep = pc.and_(pc.is_valid(table[key]), pc.greater(pc.utf8_length(texts), 0))
    keep = pc.fill_null(keep, False).combine_chunks()
    return keep, pc.filter(texts, keep)


def score_call_partition(source: Path, scorer) -> pa.Table:
    """The note rows of one call partition (calls without a note or an id are left out)."""
    present = set(pq.read_schema(source).names)
    if "call_id" not in present:
        return CALL_NOTES_SCHEMA.empty_table()
    table = pq.read_table(
        source, columns=[name for name in ("call_id", "notes", "_interval_end") if name in present]
    )
    keep, notes = kept_texts(table, "call_id", "notes", present)
    scored = score_texts(notes, scorer)
    kept = len(notes)
    end_type = CALL_NOTES_SCHEMA.field("_interval_end").type
    interval_end = (
        pc.filter(table["_interval_end"], keep).combine_chunks()
        if "_interval_end" in present
        else pa.nulls(kept, end_type)
    )
    return pa.Table.from_arrays(
        [
            pc.utf8_trim_whitespace(
                pc.filter(table["call_id"], keep).combine_chunks().cast(pa.string())
            ),
            scored["sentiment"],
            scored["label"],
            scored["topics"],
            scored["effort"],
            pa.array([scorer_id(scorer)] * kept, pa.string()),
            pa.array([source.name] * kept, pa.string()),
            interval_end.cast(end_type),
        ],
        schema=CALL_NOTES_SCHEMA,
    )


def enrich_call_notes(lake_dir: Path, scorer, force: bool = False):
    """Score every call partition whose note file is missing or stale."""
    from warehouse.enrich import newer_than_source, sync_partitions, write_atomic

    target_dir = lake_dir / "enriched" / "call_notes"

    def build(source: Path) -> None:
        write_atomic(score_call_partition(source, scorer), target_dir / source.name)

    return sync_partitions(
        lake_dir / "raw" / "calls" / "contacts", target_dir, build, newer_than_source, force
    )


@dataclass
class PreparedScorer:
    """The scorer for this build, whether the lake must be re-scored, and what training did."""

    scorer: object
    rescore: bool
    training: str
    marker: Path

    def done(self) -> None:
        """Record the scorer the lake's enriched text files now hold."""
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(json.dumps({"scorer": scorer_id(self.scorer)}) + "\n")


def prepare_scorer(lake_dir: Path, tracking_uri: str | None, git_commit: str = "unknown"):
    """Train when the labelled comments changed, then the scorer to use (see the docstring)."""
    from warehouse.text import classifier

    if tracking_uri:
        outcome = classifier.train(lake_dir, tracking_uri, git_commit)
        training = f"{outcome.status}: {outcome.reason}"
        if outcome.status == "trained":
            training = f"{outcome.status} v{outcome.version} as {outcome.alias}: {outcome.reason}"
        scorer = classifier.current_scorer(tracking_uri)
    else:
        training, scorer = "no MLflow store", rules.LexiconScorer()
    marker = lake_dir / "enriched" / MARKER
    try:
        previous = json.loads(marker.read_text()).get("scorer")
    except (OSError, ValueError):
        previous = None
    return PreparedScorer(scorer, previous != scorer_id(scorer), training, marker)
