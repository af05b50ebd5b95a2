"""`make bench`'s arithmetic on made-up stages: totals, shares and ratios to the ceilings."""

from __future__ import annotations

from bench.run import Stage, print_table, summarise


def _stage(name, wall, tasks=None, ok=True):
    return Stage(name, wall, wall / 2, 100.0, rows=1000, ok=ok, tasks=tasks or {}, load_1m=1.0)


def test_summary_totals_shares_and_ratios(capsys):
    stages = [
        Stage("generate sample", 50.0, 40.0, 900.0, counted=False),
        _stage("full:ingest_loyalty", 30.0, {"members.validate": 3.0, "members.extract": 20.0}),
        _stage("full:ingest_surveys", 10.0, {"responses.validate": 3.0}),
        _stage("full:build_warehouse", 60.0),
        _stage("incremental:ingest_loyalty", 4.0),
        _stage("incremental:build_warehouse", 8.0),
    ]
    ceilings = [
        Stage("ceiling:compiled SQL in DuckDB", 40.0, 30.0, 0.0),
        Stage("ceiling:read loyalty", 5.0, 0.0, 0.0, rows=100),
    ]
    result = summarise(1000, stages, ceilings)
    totals = result["totals"]
    assert totals["full_wall_seconds"] == 100.0  # generation is not counted
    assert totals["incremental_wall_seconds"] == 12.0
    assert totals["incremental_share_of_full"] == 0.12
    assert totals["validation_share_of_ingestion"] == 0.15  # (3 + 3) / (30 + 10)
    assert totals["all_ok"] is True
    assert result["ratios_to_ceiling"] == {
        "warehouse_build_vs_compiled_sql": 1.5,
        "ingest_loyalty_vs_raw_read": 6.0,
    }
    print_table(result)
    printed = capsys.readouterr().out
    assert "full:build_warehouse" in printed and "incremental_share_of_full" in printed
    assert result["dbt_tasks"] == "single" and "dbt as single" in printed


def test_the_summary_names_the_dbt_task_mode(capsys):
    result = summarise(10, [_stage("full:build_warehouse", 5.0)], [], dbt_tasks="per_model")
    assert result["dbt_tasks"] == "per_model"
    print_table(result)
    assert "dbt as per_model" in capsys.readouterr().out


def test_a_failed_stage_makes_the_run_not_ok():
    result = summarise(10, [_stage("full:build_warehouse", 5.0, ok=False)], [])
    assert result["totals"]["all_ok"] is False


def test_the_engines_ratio_is_spark_over_duckdb_and_only_when_both_built():
    duckdb = Stage("engine:duckdb dbt build", 13.0, 12.0, 380.0, counted=False)
    spark = Stage("engine:spark dbt build", 136.5, 10.0, 220.0, counted=False)
    result = summarise(10, [_stage("full:build_warehouse", 5.0)], [duckdb, spark])
    assert result["ratios_to_ceiling"]["spark_vs_duckdb_dbt_build"] == 10.5
    assert result["totals"]["full_wall_seconds"] == 5.0  # references, not counted
    spark.ok = False
    result = summarise(10, [_stage("full:build_warehouse", 5.0)], [duckdb, spark])
    assert "spark_vs_duckdb_dbt_build" not in result["ratios_to_ceiling"]


def test_the_ceiling_runs_the_feature_table_batch_by_batch(tmp_path):
    """dbt writes member_features_pit's first batch of cutoffs in the model and the rest in a
    post-hook that compiling leaves out; the ceiling runs the same SQL for every batch."""
    import duckdb

    from bench.run import pit_batches

    built = tmp_path / "cx.duckdb"
    cutoffs = ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01"]
    with duckdb.connect(str(built)) as con:
        con.execute("create table member_features_pit (cutoff_date date)")
        con.executemany("insert into member_features_pit values (?)", [[c] for c in cutoffs])
    compiled = (
        "with cutoffs as (\n    -- pit cutoffs: begin\n"
        "    select cast('2025-01-01' as date) as cutoff_date, cast('fp1' as varchar) as f\n"
        "    union all\n"
        "    select cast('2025-02-01' as date) as cutoff_date, cast('fp2' as varchar) as f\n"
        "    -- pit cutoffs: end\n) select cutoff_date from cutoffs"
    )
    batches = pit_batches(compiled, built)
    assert len(batches) == 3  # batches of two, as dbt chose
    with duckdb.connect() as con:
        ran = [[str(r[0]) for r in con.execute(sql).fetchall()] for sql in batches]
    assert ran == [cutoffs[0:2], cutoffs[2:4], cutoffs[4:]]


def test_the_host_calibration_is_timed_and_kept_with_the_machine(capsys):
    from bench.run import calibrate

    figures = calibrate(rows=2_000_000)
    assert set(figures) == {"duckdb_seconds", "python_seconds"}
    assert all(seconds > 0 for seconds in figures.values())
    calibration = {"before": figures, "after": {"duckdb_seconds": 2.0, "python_seconds": 1.0}}
    result = summarise(10, [_stage("full:build_warehouse", 5.0)], [], calibration=calibration)
    assert result["machine"]["calibration"] == calibration
    print_table(result)
    printed = capsys.readouterr().out
    assert "host calibration after" in printed and "'duckdb_seconds': 2.0" in printed


def test_the_floor_is_reported_against_the_full_run_apart_from_the_day(capsys):
    stages = [
        _stage("full:build_warehouse", 100.0),
        _stage("incremental:build_warehouse", 20.0),
        # A failed stand-in is printed, but the pipeline's run stays ok, as with a ceiling.
        Stage("floor:build_warehouse", 8.0, 8.0, 200.0, counted=False, ok=False),
    ]
    totals = summarise(10, stages, [])["totals"]
    assert totals["incremental_wall_seconds"] == 20.0  # the floor is not part of the day
    assert totals["incremental_orchestration_floor_seconds"] == 8.0
    assert totals["incremental_floor_share_of_full"] == 0.08
    assert totals["all_ok"] is True
    print_table(summarise(10, stages, []))
    printed = capsys.readouterr().out
    assert "floor:build_warehouse" in printed and "incremental_floor_share_of_full" in printed
    unmeasured = summarise(10, stages[:2], [])["totals"]
    assert unmeasured["incremental_orchestration_floor_seconds"] is None


def test_no_floor_is_measured_after_a_day_that_failed(tmp_path):
    from bench.run import orchestration_floor

    day = [_stage("incremental:ingest_loyalty", 4.0, ok=False)]
    assert orchestration_floor(day, None, {}, tmp_path, tmp_path / "log") == []
    assert not (tmp_path / "floor_dags").exists()


def test_a_floor_stand_in_is_a_chain_of_tasks_that_do_nothing(tmp_path, monkeypatch):
    """The stand-in parses from the DAG folder Airflow is configured with, as the day's DAGs do,
    and has the real DAG's number of tasks, one after another."""
    from bench.run import FLOOR_DAG
    from pipeline.run import load_dag

    source = FLOOR_DAG.format(dag_id="floor_run_programs", real="run_programs", tasks=3)
    (tmp_path / "floor_run_programs.py").write_text(source)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    dag = load_dag("floor_run_programs")
    assert sorted(dag.task_ids) == ["step_0", "step_1", "step_2"]
    assert dag.get_task("step_0").upstream_task_ids == set()
    assert dag.get_task("step_2").upstream_task_ids == {"step_1"}
    assert dag.get_task("step_1").python_callable() is None
