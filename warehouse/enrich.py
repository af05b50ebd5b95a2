"""Comment sentiment for survey responses, computed in Python (VADER does not run in SQL).

Reads each landed survey partition ``<lake>/raw/surveys/responses/<partition>.parquet`` and
writes ``<lake>/enriched/survey_sentiment/<partition>.parquet`` with one row per response that
has a comment: ``response_id``, ``comment_sentiment`` (VADER compound, -1..1) and
``comment_sentiment_label``, ``comment_topics``, ``comment_effort_mentions`` and
``sentiment_model`` (warehouse/text: the deployment's ``cx_sentiment`` champion, else VADER
with the CX complaint lexicon), plus the lineage dbt deduplicates on. A partition whose output is
newer than its input is skipped; an output whose input is gone is removed.

``enrich_lake`` runs every enrichment the warehouse reads before dbt: this one, the call notes'
(``warehouse/text/enrich.py``) and the keyed hashes of identifiers
(``warehouse/identity_hashes.py``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# The labels' thresholds are VADER's conventional ones; dbt_project.yml repeats them as vars.
POSITIVE_MIN = 0.05
NEGATIVE_MAX = -0.05

OUTPUT_SCHEMA = pa.schema(
    [
        pa.field("response_id", pa.string()),
        pa.field("comment_sentiment", pa.float64()),
        pa.field("comment_sentiment_label", pa.string()),
        pa.field("comment_topics", pa.string()),
        pa.field("comment_effort_mentions", pa.int64()),
        pa.field("sentiment_model", pa.string()),
        pa.field("_source_file", pa.string()),
        pa.field("_interval_end", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class EnrichResult:
    written: tuple[Path, ...]
    skipped: tuple[Path, ...]
    removed: tuple[Path, ...]


def sentiment_label(compound: float) -> str:
    if compound >= POSITIVE_MIN:
        return "positive"
    if compound <= NEGATIVE_MAX:
        return "negative"
    return "neutral"


def score_partition(source: Path, analyzer=None, scorer=None) -> pa.Table:
    """The sentiment rows of one survey partition (responses without a comment are left out).

    Each distinct comment (after trimming) is scored once: VADER is a Python loop over words,
    and short comments ("Great service, thank you") come back many times. ``scorer`` defaults
    to VADER (``analyzer``) with the CX complaint lexicon.
    """
    import pyarrow.compute as pc

    from warehouse.text.enrich import score_texts, scorer_id
    from warehouse.text.rules import LexiconScorer

    scorer = scorer or LexiconScorer(analyzer)
    present = set(pq.read_schema(source).names)
    table = pq.read_table(
        source,
        columns=[name for name in ("response_id", "comment", "_interval_end") if name in present],
    )
    rows = table.num_rows
    if "response_id" not in present:
        # No key, nothing to join a score to (the old row loop skipped such rows too).
        return OUTPUT_SCHEMA.empty_table()
    comments = (
        pc.utf8_trim_whitespace(table["comment"].combine_chunks().cast(pa.string()))
        if "comment" in present
        else pa.nulls(rows, pa.string())
    )
    keep = pc.and_(pc.is_valid(table["response_id"]), pc.greater(pc.utf8_length(comments), 0))
    keep = pc.fill_null(keep, False).combine_chunks()
    comments = pc.filter(comments, keep)
    scored = score_texts(comments, scorer)
    kept = len(comments)
    interval_end = (
        pc.filter(table["_interval_end"], keep).combine_chunks()
        if "_interval_end" in present
        else pa.nulls(kept, OUTPUT_SCHEMA.field("_interval_end").type)
    )
    return pa.Table.from_arrays(
        [
            pc.filter(table["response_id"], keep).combine_chunks().cast(pa.string()),
            scored["sentiment"],
            scored["label"],
            scored["topics"],
            scored["effort"],
            pa.array([scorer_id(scorer)] * kept, pa.string()),
            pa.array([source.name] * kept, pa.string()),
            interval_end.cast(OUTPUT_SCHEMA.field("_interval_end").type),
        ],
        schema=OUTPUT_SCHEMA,
    )


def write_atomic(table: pa.Table, final: Path, compression: str = "snappy") -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        dir=final.parent, prefix=".tmp-", suffix=".parquet", delete=False
    )
    handle.close()
    try:
        pq.write_table(table, handle.name, compression=compression)
        os.chmod(handle.name, 0o644)  # NamedTemporaryFile makes 0600; readers need more
        os.replace(handle.name, final)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def sync_partitions(
    source_dir: Path,
    target_dir: Path,
    build: Callable[[Path], None],
    is_current: Callable[[Path, Path], bool],
    force: bool = False,
) -> EnrichResult:
    """Keep ``target_dir`` one enriched file per landed partition of ``source_dir``.

    ``build(source)`` writes the enrichment of a partition that is missing or not current
    (``is_current(target, source)``), and an enriched file whose partition is gone is removed.
    Only finished partitions (``interval=*.parquet``) count, never a writer's temporary file.
    """
    sources = sorted(source_dir.glob("interval=*.parquet")) if source_dir.is_dir() else []
    written, skipped, removed = [], [], []
    for source in sources:
        target = target_dir / source.name
        if not force and is_current(target, source):
            skipped.append(target)
            continue
        build(source)
        written.append(target)
    names = {source.name for source in sources}
    if target_dir.is_dir():
        for stale in sorted(target_dir.glob("interval=*.parquet")):
            if stale.name not in names:
                stale.unlink()
                removed.append(stale)
    return EnrichResult(tuple(written), tuple(skipped), tuple(removed))


def newer_than_source(target: Path, source: Path) -> bool:
    return target.exists() and target.stat().st_mtime >= source.stat().st_mtime


def enrich_survey_sentiment(lake_dir: Path, force: bool = False, scorer=None) -> EnrichResult:
    """Score every survey partition under ``lake_dir`` whose output is missing or stale."""
    target_dir = lake_dir / "enriched" / "survey_sentiment"

    def build(source: Path) -> None:
        nonlocal scorer
        if scorer is None:  # loading VADER's lexicon costs a second: only when needed
            from warehouse.text.rules import LexiconScorer

            scorer = LexiconScorer()
        write_atomic(score_partition(source, scorer=scorer), target_dir / source.name)

    return sync_partitions(
        lake_dir / "raw" / "surveys" / "responses", target_dir, build, newer_than_source, force
    )


def enrich_lake(settings) -> dict[str, EnrichResult]:
    """Comment and call-note sentiment, topics and effort, and the keyed hashes of identifiers,
    for every landed partition.

    The hash key comes first (``privacy.identity.hash_key``): with real sources and no
    ``CX_HASH_KEY`` this fails before any work, naming the variable.
    """
    from privacy.identity import hash_key
    from warehouse.identity_hashes import hash_identities
    from warehouse.text.enrich import enrich_call_notes, prepare_scorer

    key = hash_key(settings)
    text = prepare_scorer(settings.lake_dir, settings.mlflow_tracking_uri)
    print(f"sentiment classifier: {text.training}", flush=True)
    done = {
        "sentiment": enrich_survey_sentiment(settings.lake_dir, text.rescore, text.scorer),
        "call_notes": enrich_call_notes(settings.lake_dir, text.scorer, text.rescore),
    }
    text.done()
    return {**done, "identity_hashes": hash_identities(settings.lake_dir, key)}


def summary(result: EnrichResult) -> str:
    return (
        f"{len(result.written)} written, {len(result.skipped)} up to date, "
        f"{len(result.removed)} removed"
    )


def main() -> int:
    from config import load_settings

    for name, result in enrich_lake(load_settings()).items():
        print(f"{name}: {summary(result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
