"""What customers say (warehouse/text): the complaint lexicon, topics, effort, weak labels, the
classifier's gate and the enrichment of call notes.

The hand-written set (tests/fixtures/text/handwritten_complaints.csv) was written for these
tests, not collected: its figures are a sanity check of the fallback, not the benchmark issue 27
names (real labelled complaints kept aside).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from warehouse.text import classifier, rules

HANDWRITTEN = Path(__file__).parents[1] / "fixtures" / "text" / "handwritten_complaints.csv"


def handwritten() -> tuple[list[str], list[str]]:
    lines = [line for line in HANDWRITTEN.read_text().splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def test_every_rule_says_where_it_comes_from_and_a_bad_file_is_named(tmp_path):
    lexicon = rules.load_lexicon()
    assert lexicon.complaint_terms and lexicon.sarcasm_cues and lexicon.effort_phrases
    assert all(rule.source.strip() for rule in lexicon.complaint_terms + lexicon.sarcasm_cues)
    bad = tmp_path / "lexicon.yml"
    bad.write_text(
        "complaint_terms:\n  - {pattern: 'on hold', weight: 0.3}\n"
        "negated_praise: []\nsarcasm_cues: []\neffort_phrases: []\n"
    )
    with pytest.raises(rules.RulesError, match=r"lexicon.yml: complaint_terms entry 1: .*source"):
        rules.load_lexicon(bad)
    bad.write_text("topics:\n  Billing:\n    phrases: ['bill']\n")
    with pytest.raises(rules.RulesError, match="lower_snake_case"):
        rules.load_topics(bad)


def test_complaints_vader_reads_as_positive_are_negative_with_the_lexicon():
    vader, fallback = rules.VaderScorer(), rules.LexiconScorer()
    texts = [
        "Thanks for nothing, still on hold.",
        "Great, another email saying my refund is on its way.",
        "Love waiting on hold for an hour.",
    ]
    assert vader.score(texts)[0] != ["negative"] * 3
    assert fallback.score(texts)[0] == ["negative"] * 3
    # Plain praise stays praise.
    assert fallback.score(["Great service, thank you!"])[0] == ["positive"]


def test_the_fallback_beats_vader_on_negative_recall_in_the_handwritten_set():
    texts, gold = handwritten()
    assert len(texts) >= 60 and set(gold) == set(rules.LABELS)
    vader = classifier.class_metrics(gold, rules.VaderScorer().score(texts)[0])
    fallback = classifier.class_metrics(gold, rules.LexiconScorer().score(texts)[0])
    # The goal on real text, checked here only on hand-written lines.
    assert fallback["negative_recall"] >= 0.75
    assert fallback["negative_precision"] >= 0.85
    assert fallback["negative_recall"] > vader["negative_recall"] + 0.2
    assert fallback["macro_f1"] > vader["macro_f1"]


def test_topics_and_effort_from_words():
    assert rules.topics_of("I was charged twice and the app crashed") == ("billing", "app_web")
    assert rules.topics_of("on hold for an hour") == ("wait_time",)
    assert rules.topics_of("") == ()
    assert rules.effort_mentions("Had to call three times, then transferred twice.") == 2
    assert rules.effort_mentions("on hold for an hour") == 1
    assert rules.effort_mentions("Quick and friendly, thank you") == 0


def test_weak_labels_read_nps_first_then_csat():
    nps = np.array([0, 6, 7, 8, 9, 10, -1, -1, -1, -1, np.nan])
    csat = np.array([5, 5, 1, 1, 1, 1, 1, 3, 4, -1, 2])
    assert classifier.weak_labels(nps, csat).tolist() == [
        "negative",
        "negative",
        "neutral",
        "neutral",
        "positive",
        "positive",
        "negative",
        "neutral",
        "positive",
        None,
        "negative",
    ]


def test_too_few_labelled_comments_names_the_short_classes():
    labels = ["negative"] * classifier.MIN_PER_CLASS + ["positive"] * 3
    reason = classifier.too_few(labels)
    assert (
        "0 neutral" in reason and "3 positive" in reason and "negative" not in reason.split(";")[0]
    )
    enough = ["negative", "neutral", "positive"] * classifier.MIN_PER_CLASS
    assert classifier.too_few(enough) is None


def test_the_gate_refuses_a_classifier_that_loses_negative_moments():
    baseline = {"negative_recall": 0.60, "negative_precision": 0.90}
    good = {"negative_recall": 0.80, "negative_precision": 0.88}
    assert classifier.gate_reason(good, {"VADER": baseline}) is None
    worse_recall = {"negative_recall": 0.50, "negative_precision": 0.95}
    assert "negative recall" in classifier.gate_reason(worse_recall, {"VADER": baseline})
    worse_precision = {"negative_recall": 0.90, "negative_precision": 0.80}
    assert "negative precision" in classifier.gate_reason(worse_precision, {"VADER": baseline})


def test_classifier_scorer_scores_in_range_and_redacts(tmp_path):
    texts, gold = handwritten()
    pipeline = classifier.build_pipeline().fit(texts * 3, gold * 3)
    scorer = classifier.ClassifierScorer(pipeline)
    labels, scores = scorer.score(["Still on hold, call me on +1 555 123 4567", "Great store"])
    assert set(labels) <= set(rules.LABELS) and all(-1 <= s <= 1 for s in scores)
    # What it learnt from is what it says back (a sanity check, not a measure).
    assert classifier.class_metrics(gold, scorer.score(texts)[0])["accuracy"] > 0.9


def _survey_partition(path: Path, comments: list[str], nps: list[int]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(comments)
    pq.write_table(
        pa.table(
            {
                "response_id": [f"R{i:05d}" for i in range(n)],
                "comment": comments,
                "nps": pa.array(nps, pa.int64()),
                "csat": pa.nulls(n, pa.int64()),
                "_interval_end": pa.array(
                    [datetime(2026, 7, 1, tzinfo=UTC)] * n, pa.timestamp("us", tz="UTC")
                ),
            }
        ),
        path,
    )


def test_too_few_labels_train_nothing_and_touch_no_mlflow_store(tmp_path):
    folder = tmp_path / "lake" / "raw" / "surveys" / "responses"
    folder.mkdir(parents=True)
    _survey_partition(folder / "interval=a.parquet", ["Awful", "Fine", "Great"], [1, 7, 10])
    store = tmp_path / "mlflow" / "mlflow.db"
    outcome = classifier.train(tmp_path / "lake", f"sqlite:///{store}")
    assert outcome.status == "too_few" and "200 per class needed" in outcome.reason
    assert not store.parent.exists()
    assert isinstance(classifier.current_scorer(f"sqlite:///{store}"), rules.LexiconScorer)


def test_call_notes_get_sentiment_topics_and_effort(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from warehouse.text.enrich import CALL_NOTES_SCHEMA, enrich_call_notes

    lake = tmp_path / "lake"
    folder = lake / "raw" / "calls" / "contacts"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "call_id": ["C1", "C2", "C3", None],
                "notes": [
                    "Customer called three times about a double charge, transferred twice.",
                    "Resolved on the call, customer satisfied.",
                    "  ",
                    "orphan note",
                ],
                "_interval_end": pa.array(
                    [datetime(2026, 7, 1, tzinfo=UTC)] * 4, pa.timestamp("us", tz="UTC")
                ),
            }
        ),
        folder / "interval=x.parquet",
    )
    result = enrich_call_notes(lake, rules.LexiconScorer())
    table = pq.read_table(result.written[0])
    assert table.schema.equals(CALL_NOTES_SCHEMA)
    rows = {row["call_id"]: row for row in table.to_pylist()}
    assert set(rows) == {"C1", "C2"}
    assert rows["C1"]["note_sentiment_label"] == "negative"
    assert rows["C1"]["note_topics"] == "billing,wait_time"
    assert rows["C1"]["note_effort_mentions"] == 2
    assert rows["C2"]["note_sentiment_label"] == "positive"
    assert rows["C2"]["sentiment_model"].startswith("vader+lexicon")


def _sample_lake(tmp_path: Path, per_class: int) -> Path:
    """A lake of the generator's comments (customers' own words included), labelled by NPS."""
    from sample_data.text import comments

    rng = np.random.default_rng(3)
    n = 3 * per_class
    tone = np.arange(n) % 3
    kind = rng.integers(0, 3, n)
    blank = np.full(n, "", dtype=object)
    voice = {"rng": np.random.default_rng(4)}
    texts = comments(rng, tone, kind, blank, blank, voice).tolist()
    nps = np.array([3, 8, 10])[tone].tolist()
    folder = tmp_path / "lake" / "raw" / "surveys" / "responses"
    folder.mkdir(parents=True)
    _survey_partition(folder / "interval=a.parquet", texts, nps)
    return tmp_path / "lake"


def test_enough_labels_train_a_champion_that_scores_and_the_same_labels_train_nothing(tmp_path):
    _sample_lake(tmp_path, classifier.MIN_PER_CLASS + 50)
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"

    first = classifier.train(tmp_path / "lake", uri)
    assert first.status == "trained" and first.alias == "champion", first.reason
    held = first.metrics["classifier"]
    assert held["macro_f1"] >= first.metrics["vader"]["macro_f1"] + classifier.BASELINE_MARGIN
    scorer = classifier.current_scorer(uri)
    assert isinstance(scorer, classifier.ClassifierScorer) and scorer.version == "v1"
    assert scorer.score(["Terrible experience. The agent was rude."])[0] == ["negative"]
    assert classifier.train(tmp_path / "lake", uri).status == "unchanged"


def test_dbt_topics_are_the_taxonomys():
    import yaml

    from config.settings import REPO_ROOT

    project = yaml.safe_load((REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    assert tuple(project["vars"]["text_topics"]) == rules.topic_keys()


def test_make_sentiment_labels_a_csv_and_names_a_wrong_file_or_column(tmp_path):
    from warehouse.text import cli

    source = tmp_path / "outside.csv"
    source.write_text(
        'id,text,note\n1,"Thanks for nothing, still on hold",a\n2,,b\n'
        '3,"Lovely staff, quick checkout",c\n'
    )
    target = tmp_path / "out" / "labelled.csv"
    said = cli.sentiment(source, "text", target, tracking_uri=None)
    assert "3 rows" in said and "vader+lexicon" in said
    rows = list(csv.DictReader(target.open()))
    assert list(rows[0]) == ["id", "text", "note", *cli.OUTPUT_COLUMNS]
    assert [row["note"] for row in rows] == ["a", "b", "c"]
    assert [row["sentiment_label"] for row in rows] == ["negative", "", "positive"]
    assert rows[0]["topics"] == "wait_time" and rows[2]["topics"] == "staff,store"
    assert -1 <= float(rows[0]["sentiment_score"]) < 0

    with pytest.raises(cli.InputError, match=r"outside.csv: no column 'comment'.*id, text, note"):
        cli.sentiment(source, "comment", target, tracking_uri=None)
    with pytest.raises(cli.InputError, match=r"missing.csv: no such file"):
        cli.sentiment(tmp_path / "missing.csv", "text", target, tracking_uri=None)


def test_the_eval_report_gives_precision_and_recall_per_class_beside_vader(tmp_path):
    from warehouse.text import cli

    report = cli.deployment_report(_sample_lake(tmp_path, classifier.MIN_PER_CLASS))
    assert "held-out labelled comments" in report
    lines = {line.split()[0]: line for line in report.splitlines()[2:]}
    assert set(lines) == {"classifier", "VADER"}  # and "VADER + lexicon", split at its space
    assert report.count("/") >= 9

    few = cli.deployment_report(_sample_lake(tmp_path / "few", 20))
    assert "too few labelled comments" in few
    assert [line.split()[0] for line in few.splitlines()[2:]] == ["VADER", "VADER"]
    assert "not the benchmark" in cli.handwritten_report()


def test_a_new_scorer_rescores_the_lake_once(tmp_path):
    import json

    from warehouse.text.enrich import prepare_scorer, scorer_id

    lake = tmp_path / "lake"
    first = prepare_scorer(lake, tracking_uri=None)
    assert first.rescore and isinstance(first.scorer, rules.LexiconScorer)
    first.done()
    assert not prepare_scorer(lake, tracking_uri=None).rescore
    # Another reader wrote the lake's files (a champion, or rules since edited): read them again.
    first.marker.write_text(json.dumps({"scorer": "cx_sentiment v1 rules 000000000000"}))
    again = prepare_scorer(lake, tracking_uri=None)
    assert again.rescore and scorer_id(again.scorer).startswith("vader+lexicon lexicon rules ")
