"""``make sentiment`` (any CSV of text) and the sentiment evaluation ``make eval`` prints.

``python -m warehouse.text sentiment --in comments.csv --column text --out labelled.csv`` writes
the input rows, every column as it was, plus ``sentiment_label`` (negative, neutral or
positive), ``sentiment_score`` (-1..1) and ``topics`` (the taxonomy's keys, comma-separated),
read by the deployment's ``cx_sentiment`` champion, or VADER with the CX complaint lexicon when
there is none. A blank text gets blank columns.

``python -m warehouse.text eval`` prints precision and recall per class on a held-out quarter of
the deployment's labelled comments (the classifier trained on the rest, VADER and the lexicon
fallback side by side), and the same figures on the hand-written set in tests/fixtures, which is
a sanity check and not the real benchmark.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from warehouse.text import rules

OUTPUT_COLUMNS = ("sentiment_label", "sentiment_score", "topics")
HANDWRITTEN = (
    Path(__file__).resolve().parents[2]
    / "tests"
    / "fixtures"
    / "text"
    / "handwritten_complaints.csv"
)


class InputError(ValueError):
    """An input file or column that cannot be used, in words naming it."""


def read_rows(path: Path, column: str) -> tuple[list[str], list[dict[str, str]]]:
    """The CSV's header and rows; the column must be in the header."""
    if not path.is_file():
        raise InputError(f"{path}: no such file (IN= names the CSV to label)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: not a UTF-8 CSV file ({error})") from error
    if not header:
        raise InputError(f"{path}: empty file, no header row")
    if column not in header:
        raise InputError(
            f"{path}: no column {column!r} (COLUMN= names it); its columns are: "
            + ", ".join(header)
        )
    return header, rows


def label_rows(rows: list[dict[str, str]], column: str, scorer) -> list[dict[str, str]]:
    texts = [(row.get(column) or "").strip() for row in rows]
    present = [text for text in texts if text]
    labels, scores = scorer.score(present) if present else ([], [])
    scored = iter(zip(labels, scores, strict=True))
    out = []
    for row, text in zip(rows, texts, strict=True):
        added = dict.fromkeys(OUTPUT_COLUMNS, "")
        if text:
            label, score = next(scored)
            added = {
                "sentiment_label": label,
                "sentiment_score": f"{score:.4f}",
                "topics": ",".join(rules.topics_of(text)),
            }
        out.append({**row, **added})
    return out


def write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = header + [name for name in OUTPUT_COLUMNS if name not in header]
    temporary = path.with_name(f".tmp-{path.name}")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(path)


def sentiment(source: Path, column: str, target: Path, tracking_uri: str | None) -> str:
    """Label ``source``'s ``column`` into ``target``; returns what was done, in words."""
    from warehouse.text.classifier import current_scorer

    header, rows = read_rows(source, column)
    scorer = current_scorer(tracking_uri) if tracking_uri else rules.LexiconScorer()
    labelled = label_rows(rows, column, scorer)
    write_rows(target, header, labelled)
    counts = {label: 0 for label in rules.LABELS}
    for row in labelled:
        if row["sentiment_label"]:
            counts[row["sentiment_label"]] += 1
    said = ", ".join(f"{n} {label}" for label, n in counts.items())
    return (
        f"{len(rows)} rows of {source} read by {scorer.name} {scorer.version}: {said} -> {target}"
    )


def format_metrics(title: str, metrics: dict[str, dict[str, float]]) -> str:
    """One line per scorer: precision and recall per class, and macro-F1."""
    lines = [title]
    header = f"  {'':<22}" + "".join(f"{label + ' P/R':>18}" for label in rules.LABELS)
    lines.append(header + f"{'macro-F1':>10}")
    for name, values in metrics.items():
        cells = "".join(
            f"{values[f'{label}_precision']:>11.2f} /{values[f'{label}_recall']:>5.2f}"
            for label in rules.LABELS
        )
        lines.append(f"  {name:<22}{cells}{values['macro_f1']:>10.2f}")
    return "\n".join(lines)


def deployment_report(lake_dir: Path) -> str:
    """Classifier (trained on three quarters), VADER and the fallback on the held-out quarter
    of the deployment's labelled comments; or why there are too few."""
    from warehouse.text import classifier

    frame = classifier.labelled_comments(lake_dir)
    reason = classifier.too_few(frame["label"])
    if reason:
        scored = classifier.evaluate(
            {"VADER": rules.VaderScorer(), "VADER + lexicon": rules.LexiconScorer()}, frame
        )
        return format_metrics(
            f"sentiment on all {len(frame)} labelled comments ({reason})", scored.metrics
        )
    train_rows, holdout = classifier.split(frame)
    pipeline = classifier.build_pipeline().fit(
        train_rows["text"].tolist(), train_rows["label"].tolist()
    )
    scored = classifier.evaluate(
        {
            "classifier": classifier.ClassifierScorer(pipeline),
            "VADER": rules.VaderScorer(),
            "VADER + lexicon": rules.LexiconScorer(),
        },
        holdout,
    )
    return format_metrics(
        f"sentiment on {len(holdout)} held-out labelled comments (of {len(frame)}; labels from "
        "NPS, else CSAT)",
        scored.metrics,
    )


def handwritten_report(path: Path = HANDWRITTEN) -> str:
    from warehouse.text.classifier import class_metrics

    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    texts, gold = [row["text"] for row in rows], [row["label"] for row in rows]
    metrics = {
        name: class_metrics(gold, scorer.score(texts)[0])
        for name, scorer in (
            ("VADER", rules.VaderScorer()),
            ("VADER + lexicon", rules.LexiconScorer()),
        )
    }
    return format_metrics(
        f"sentiment on the {len(rows)} hand-written lines of {path.name} (written for the tests, "
        "not real text: a sanity check, not the benchmark)",
        metrics,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warehouse.text", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    label = commands.add_parser("sentiment", help="label a CSV column's text")
    label.add_argument("--in", dest="source", required=True, type=Path)
    label.add_argument("--column", required=True)
    label.add_argument("--out", dest="target", required=True, type=Path)
    commands.add_parser("eval", help="precision and recall per class, classifier vs VADER")
    args = parser.parse_args(argv)
    from config import load_settings

    settings = load_settings()
    if args.command == "sentiment":
        try:
            print(sentiment(args.source, args.column, args.target, settings.mlflow_tracking_uri))
        except InputError as error:
            print(f"make sentiment: {error}", file=sys.stderr)
            return 2
        return 0
    print(deployment_report(settings.lake_dir))
    print()
    print(handwritten_report())
    return 0
