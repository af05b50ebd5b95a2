"""The latest day the enabled sources hold data for: the day ``make run`` runs for on a user's
own data when ``CX_AS_OF`` is not set.

Read before ingestion, from the sources themselves: the latest ``occurred_at`` or
``recorded_at`` of the loyalty ``transactions`` table, parsed as ingestion parses it (text cast
to a UTC instant; values that do not parse are ignored, as ingestion quarantines them), and the
latest ``<root>/<YYYY-MM-DD>/`` export folder holding a file for surveys and calls. The wall
clock is never consulted: a value dated in the future wins like any other, which is why the
result says which source, column or folder set it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date
from pathlib import PurePosixPath

import duckdb
import fsspec
import sqlalchemy as sa

from config import Settings
from config.settings import mask_url
from ingestion.contract import TRANSACTIONS
from ingestion.errors import ContractError, NoDataError, SourceUnavailableError
from ingestion.land import SOURCE_SETTINGS
from ingestion.readers import _fetch_text, _quote, export_folder_date

EXPORT_SUFFIX = {"surveys": ".jsonl", "calls": ".csv"}


@dataclass(frozen=True)
class DataDay:
    """The latest day found, which source set it and how, and what each source held."""

    day: date
    source: str
    where: str  # e.g. "transactions.recorded_at 2026-06-30 23:58:00+00:00 in sqlite:///..."
    by_source: dict[str, date | None] = field(default_factory=dict)

    def describe(self) -> str:
        others = [
            f"{source} {day if day else 'holds no dated record'}"
            for source, day in self.by_source.items()
            if source != self.source
        ]
        text = f"the latest day in the {self.source} source ({self.where})"
        return text + (f"; {', '.join(others)}" if others else "")


def latest_transaction(url: str) -> tuple[date, str] | None:
    """The UTC day of the loyalty ``transactions`` table's latest ``occurred_at`` or
    ``recorded_at`` that parses, and the column and value that set it; None for no such value."""
    shown = sa.engine.make_url(url).render_as_string()
    table = TRANSACTIONS.name
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            present = {c["name"] for c in sa.inspect(connection).get_columns(table)}
    except sa.exc.NoSuchTableError:
        raise ContractError(f"loyalty database {shown}: table {table!r} does not exist") from None
    except sa.exc.SQLAlchemyError as error:
        raise SourceUnavailableError(
            f"loyalty database {shown} could not be read: "
            f"{error.__class__.__name__}: {str(error).splitlines()[0]}"
        ) from error
    finally:
        engine.dispose()
    if "occurred_at" not in present:
        raise ContractError(
            f"loyalty database {shown}: table {table!r} lacks required column 'occurred_at'"
        )
    columns = [c for c in ("occurred_at", "recorded_at") if c in present]
    con = duckdb.connect()
    try:
        # The session zone makes an offset-less timestamp UTC, as at landing.
        con.execute("set TimeZone = 'UTC'")
        con.register("_timestamps", _fetch_text(url, table, columns, (), None, None))
        latest = ", ".join(
            f"max(try_cast(nullif({_quote(c)}, '') as TIMESTAMPTZ)) as {_quote(c)}" for c in columns
        )
        row = con.execute(f"select {latest} from _timestamps").fetchone()
    finally:
        con.close()
    found = [(value, column) for value, column in zip(row, columns, strict=True) if value]
    if not found:
        return None
    value, column = max(found, key=lambda pair: pair[0])
    instant = value.astimezone(UTC)
    return instant.date(), f"{table}.{column} {instant.isoformat(sep=' ')} in {shown}"


def latest_export_folder(root: str, suffix: str) -> date | None:
    """The latest ``<root>/<YYYY-MM-DD>/`` folder holding a ``*<suffix>`` file; None for none.

    Folders not named as a date are ignored, as ingestion ignores them; a missing root is an
    error."""
    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        raise SourceUnavailableError(f"export root {root} does not exist")
    dated = []
    for entry in fs.ls(path, detail=False):
        day = export_folder_date(PurePosixPath(entry).name)
        if day is not None:
            dated.append((day, entry))
    # Newest first, stopping at the first folder with a file: one listing on a long history.
    for day, entry in sorted(dated, reverse=True):
        if any(name.endswith(suffix) for name in fs.ls(entry, detail=False)):
            return day
    return None


def latest_data_day(settings: Settings) -> DataDay:
    """The latest day any enabled source (``CX_SOURCES``) holds data for.

    Raises ``NoDataError`` naming every source looked at when none holds a dated record, and the
    readers' ``SourceUnavailableError`` or ``ContractError`` (with the setting to check) when a
    source cannot be read."""
    found: dict[str, tuple[date, str] | None] = {}
    for source in settings.enabled_sources:
        try:
            if source == "loyalty":
                found[source] = latest_transaction(settings.loyalty_url)
            else:
                root = settings.survey_root if source == "surveys" else settings.calls_root
                day = latest_export_folder(root, EXPORT_SUFFIX[source])
                found[source] = (day, f"export folder {root}/{day}") if day else None
        except (SourceUnavailableError, ContractError) as error:
            raise type(error)(f"{error} (check {SOURCE_SETTINGS[source]})") from error
    dated = {source: value for source, value in found.items() if value is not None}
    if not dated:
        looked_at = {
            "loyalty": f"no parseable transactions.occurred_at in {mask_url(settings.loyalty_url)}",
            "surveys": f"no {settings.survey_root}/<YYYY-MM-DD>/*.jsonl",
            "calls": f"no {settings.calls_root}/<YYYY-MM-DD>/*.csv",
        }
        detail = "; ".join(
            f"{source} ({SOURCE_SETTINGS[source]}): {looked_at[source]}" for source in found
        )
        raise NoDataError(
            f"no enabled source holds a dated record, so there is no day to run for: {detail}. "
            "Point the settings at the data, or set CX_AS_OF=YYYY-MM-DD."
        )
    source = max(dated, key=lambda name: dated[name][0])
    day, where = dated[source]
    by_source = {name: value[0] if value else None for name, value in found.items()}
    return DataDay(day=day, source=source, where=where, by_source=by_source)
