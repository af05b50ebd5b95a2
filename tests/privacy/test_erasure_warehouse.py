"""Erasure from the DuckDB warehouse (every table, SCD2 history, scores, programs), the analysts'
copy and the exports; and the next pipeline run (ingestion, then dbt) not bringing M1 back.

One warehouse is built for the module; the tests read it in order: erased, then rebuilt.
"""

from __future__ import annotations

import json
import shutil
import stat
from datetime import date
from types import SimpleNamespace

import duckdb
import pytest
from privacy_fixtures import (
    ERASED,
    ERASED_EMAIL,
    KEPT,
    KEPT_EMAIL,
    build_duckdb,
    env_of,
    land_everything,
    mentions_erased,
    mentions_kept,
    scan_duckdb,
    scan_files,
    settings_for,
)

from config import load_settings
from warehouse.publish import published_path

CYCLE = date(2026, 6, 2)
# Every record of M1's, whichever way it names M1 (T2 is M2's, R8 and C7 too).
ERASED_RECORDS = {"T1", "T3", "R1", "R7", "C1", "C5", "C6"}
KEPT_RECORDS = {"T2", "R8", "C7"}


def _add_scores_and_programs(settings) -> None:
    """The tables ml/ and programs/ write into the warehouse, with every member in them."""
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute(
            "create table ml_scores as select member_id, date '2026-06-02' as score_date, "
            "'v1' as model_version, 0.4 as churn_probability, 'Swing' as predicted_segment "
            "from customer_360"
        )
        con.execute(
            "create table segment_transitions as select member_id, 'Engaged' as from_segment, "
            "'Swing' as to_segment, date '2026-06-02' as score_date from customer_360"
        )
        con.execute(
            "create table ml_monitoring as select date '2026-06-02' as score_date, "
            "'v1' as model_version, 'spend_30d' as feature, 0.01 as psi"
        )
        con.execute(
            "create table program_assignments (cycle_date date not null, program varchar not "
            "null, member_id varchar not null, assignment_group varchar not null, "
            "primary key (cycle_date, program, member_id))"
        )
        con.execute(
            "insert into program_assignments select date '2026-06-02', 'winback', member_id, "
            "'treatment' from customer_360"
        )


def _write_exports(settings) -> None:
    import pandas as pd

    from programs.exports import EXPORT_COLUMNS, write_cycle

    frame = pd.DataFrame(
        [
            {"member_id": ERASED, "first_name": None, "email": ERASED_EMAIL, "segment": "Swing"},
            {"member_id": KEPT, "first_name": None, "email": KEPT_EMAIL, "segment": "Engaged"},
        ],
        columns=list(EXPORT_COLUMNS),
    ).astype(object)
    frame = frame.where(frame.notna(), None)
    manifest = {"cycle_date": CYCLE.isoformat(), "programs": [{"name": "winback"}]}
    write_cycle(settings.exports_dir, CYCLE, {"winback": frame}, manifest)


@pytest.fixture(scope="module")
def erased(landed_template, tmp_path_factory):
    from privacy.erase import erase_members

    root = tmp_path_factory.mktemp("privacy-warehouse")
    shutil.copytree(landed_template.data_dir, root / "data")
    settings = settings_for(root, sources=landed_template.data_dir.parent)
    build_duckdb(settings)
    _add_scores_and_programs(settings)
    _write_exports(settings)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        before = set(scan_duckdb(con))
    report = erase_members(settings, [ERASED])
    yield SimpleNamespace(settings=settings, report=report, before=before)
    shutil.rmtree(root, ignore_errors=True)


def _keys(con) -> set[str]:
    """Every value of every record-key column in every table."""
    found = set()
    for schema, table, column in con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where column_name in ('transaction_id', 'response_id', 'call_id', 'record_id')"
    ).fetchall():
        found |= {
            r[0] for r in con.execute(f'select "{column}" from "{schema}"."{table}"').fetchall()
        }
    return found


def test_the_warehouse_held_the_member_in_every_layer(erased):
    tables = {hit.rsplit(".", 1)[0] for hit in erased.before}
    assert {
        "restricted.member_contacts",
        "snapshots.snap_members",
        "main.fct_transactions",
        "main.customer_360",
        "main.ml_scores",
        "main.segment_transitions",
        "main.program_assignments",
        "main.stg_surveys__responses",
    } <= tables


@pytest.mark.parametrize("which", ["live", "published"])
def test_no_trace_in_any_table_or_view(erased, which):
    path = erased.settings.duckdb_path
    path = path if which == "live" else published_path(path)
    with duckdb.connect(str(path), read_only=True) as con:
        assert scan_duckdb(con) == []
        keys = _keys(con)
        assert not keys & ERASED_RECORDS
        assert keys >= KEPT_RECORDS
        assert {r[0] for r in con.execute("select member_id from dim_members").fetchall()} == {
            KEPT,
            "M3",
        }
        assert scan_duckdb(con, mentions_kept)  # M2 is still there


def test_published_copy_stays_read_only(erased):
    import os
    import stat

    mode = stat.S_IMODE(os.stat(published_path(erased.settings.duckdb_path)).st_mode)
    assert not mode & 0o222


def test_exports_are_rewritten_with_their_checksums(erased):
    from programs.exports import BUILDS, read_manifest, sha256

    exports = erased.settings.exports_dir
    assert scan_files(exports) == []
    assert scan_files(exports, mentions_kept)
    cycle = exports / CYCLE.isoformat()
    builds = [p for p in (exports / BUILDS).iterdir() if not p.name.startswith(".")]
    assert builds == [cycle.resolve()]  # the old build is gone, the cycle points at the new one
    manifest = read_manifest(exports, CYCLE.isoformat())
    program = manifest["programs"][0]
    assert program["rows_erased"] == 1
    for entry in program["files"]:
        path = cycle / entry["path"]
        assert entry["sha256"] == sha256(path)
        assert entry["bytes"] == path.stat().st_size
        assert entry["rows"] == 1
    assert (cycle / "winback.csv").read_text().splitlines()[1].startswith(f"{KEPT},")
    # The rewritten build is protected as a cycle's export is: its owner's alone, read-only.
    assert stat.S_IMODE(cycle.resolve().stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in cycle.iterdir()} == {0o400}


def test_report_counts_every_place_and_names_nobody(erased):
    removed = erased.report.removed
    for place in (
        "duckdb:main.ml_scores",
        "duckdb:main.segment_transitions",
        "duckdb:main.program_assignments",
        "duckdb:snapshots.snap_members",
        "duckdb:restricted.member_contacts",
        "duckdb:main.int_identity_links",
        "lake:raw/loyalty/members",
        "lake:enriched/survey_sentiment",
        "lake:enriched/member_hashes",
        "lake:enriched/response_hashes",
        "lake:enriched/call_hashes",
    ):
        assert removed.get(place), place
    assert not mentions_erased(json.dumps(erased.report.as_dict()))


def test_verification_passes_then_catches_a_row_put_back(erased):
    from privacy.verify import ErasureIncompleteError, assert_erased

    assert assert_erased(erased.settings, [ERASED]) == {"members": 1, "remaining": 0}
    with pytest.raises(ErasureIncompleteError, match="not on the suppression list"):
        assert_erased(erased.settings, ["M3"])
    copy = erased.settings.duckdb_path.with_name("planted.duckdb")
    shutil.copy(erased.settings.duckdb_path, copy)
    planted = load_settings({**env_of(erased.settings), "CX_DUCKDB_PATH": str(copy)})
    with duckdb.connect(str(copy)) as con:
        con.execute("insert into ml_scores (member_id) values ('m1')")
    with pytest.raises(ErasureIncompleteError, match=r"duckdb:main\.ml_scores \(1\)"):
        assert_erased(planted, [ERASED])
    copy.unlink()


def test_the_next_pipeline_run_does_not_bring_the_member_back(erased):
    """Last: ingestion reruns every interval from the sources (which still hold M1), the
    warehouse rebuilds (incremental facts and the snapshot included), and M1 stays gone."""
    settings = erased.settings
    land_everything(settings)
    build_duckdb(settings)
    assert scan_files(settings.lake_dir) == []
    for path in (settings.duckdb_path, published_path(settings.duckdb_path)):
        with duckdb.connect(str(path), read_only=True) as con:
            assert scan_duckdb(con) == []
            assert not _keys(con) & ERASED_RECORDS
            assert con.execute("select count(*) from snapshots.snap_members").fetchone()[0] == 2


def test_an_erasure_whose_publish_failed_is_caught_up_by_the_next_publish(
    landed_template, tmp_path, monkeypatch
):
    """Erasure deletes from the tables whose models log what they rewrite for the analysts'
    copy, outside that log. So it empties the copy's position in the log in the same
    transaction (``warehouse.erase.PUBLISH_STATE``): if its own publish then fails, the next daily publish compares every row
    instead of the logged ones, and the member leaves the copy too."""
    from pipeline.warehouse_tasks import published_by_their_writers
    from privacy.erase import erase_members
    from warehouse import publish

    shutil.copytree(landed_template.data_dir, tmp_path / "data")
    settings = settings_for(tmp_path, sources=landed_template.data_dir.parent)
    build_duckdb(settings)
    copy = published_path(settings.duckdb_path)
    recorded = "select count(*) from cx_state.publish_log_position"
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute(recorded).fetchone() == (1,)

    def failing(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(publish, "publish_duckdb", failing)
    with pytest.raises(OSError, match="no space"):
        erase_members(settings, [ERASED])
    monkeypatch.undo()
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        # The copy's position is forgotten (and the log, which names member ids, emptied).
        assert con.execute(recorded).fetchone() == (0,)
        assert con.execute("select count(*) from cx_state.publish_log").fetchone() == (0,)
    with duckdb.connect(str(copy), read_only=True) as con:
        assert scan_duckdb(con)  # the failed publish left the member in the copy

    publish.publish_duckdb(settings.duckdb_path, by_rows=True, skip=published_by_their_writers())
    with duckdb.connect(str(copy), read_only=True) as con:
        assert scan_duckdb(con) == []
        assert scan_duckdb(con, mentions_kept)
