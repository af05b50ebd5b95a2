"""Eligibility conditions are parsed as one SQL expression (issue 23): nothing written in a
condition reaches past it, the check and the cycle refuse the same texts naming the program and
the field, and the conditions marketers write select the same members as before."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from config import load_settings
from config.settings import REPO_ROOT
from programs import cli, config, cycle, eligibility
from programs.config import ProgramConfigError
from programs.eligibility import ExpressionError, Rules
from programs.members import KNOWN_VALUES, SEGMENT_COLUMNS, member_columns
from warehouse.store import open_store

ON = date(2026, 6, 30)
WHERE = "program 'win_back', field 'eligibility'"

# Both passed the old check (pasted into `select (<text>) as selected from members`): the first
# then targeted every member, the second failed the run with a ParserException.
BREAKOUTS = [
    pytest.param("1=1) or (1=1", "unbalanced parentheses", id="closes-the-code-parenthesis"),
    pytest.param(
        "true) as selected from members --", "unbalanced parentheses", id="ends-the-statement"
    ),
]
INJECTIONS = [
    pytest.param("risk_band = 'high'; drop table members", "without ';'", id="second-statement"),
    pytest.param(
        "risk_band = 'high' -- and predicted_segment = 'Swing'", "comment", id="dash-dash"
    ),
    pytest.param("risk_band = 'high' /* or true */", "comment", id="slash-star"),
    pytest.param("risk_band in (select risk_band from members)", "a query", id="subquery"),
    pytest.param("exists (select * from read_csv('/etc/passwd'))", "a query", id="exists"),
    pytest.param("risk_band = 'high' union select true", "a query", id="union"),
    pytest.param("getenv('HOME') is not null", "function getenv is not allowed", id="function"),
    pytest.param("current_date > as_of_date", "function current_date", id="wall-clock"),
    pytest.param("other.risk_band = 'high'", "names a table", id="other-table"),
    pytest.param(
        "risk > 0.5", "unknown column 'risk' (did you mean risk_band", id="unknown-column"
    ),
    pytest.param("risk_band = $$high$$", "single quotes", id="dollar-quoted"),
]


def _file(condition: str) -> str:
    return yaml.safe_dump(
        {"programs": [{"name": "win_back", "priority": 1, "eligibility": condition}]}
    )


def _members(n: int = 400, seed: int = 23) -> pd.DataFrame:
    """Every member column, seeded values of its type, about a fifth of them missing."""
    rng = np.random.default_rng(seed)
    reasons = ["no purchase in 95 days", "2 unresolved calls", "last NPS answer was 4"]
    frame = {}
    for name, (kind, _) in member_columns().items():
        if name in KNOWN_VALUES:
            values = rng.choice(list(KNOWN_VALUES[name]), n).astype(object)
        elif name.startswith("reason_"):
            values = rng.choice(reasons, n).astype(object)
        elif kind == "text":
            values = np.array([f"{name}_{i}" for i in range(n)], dtype=object)
        elif kind == "boolean":
            values = rng.random(n) < 0.4
        elif kind == "bigint":
            # Mostly zero, as counts of calls, answers and moments are: a condition that ORs a
            # few "> 0" counts (service recovery) must still leave members out.
            values = np.where(rng.random(n) < 0.6, 0, rng.integers(-5, 400, n))
        elif kind == "date":
            values = np.full(n, ON)
        else:
            values = rng.random(n).round(3)
        frame[name] = pd.Series(values, dtype=object)
        if name not in ("member_id", "is_closed", "marketing_opt_in"):
            frame[name][rng.random(n) < 0.2] = None
    out = pd.DataFrame(frame)
    out["member_id"] = [f"M{i:04d}" for i in range(n)]
    return out.convert_dtypes()


NO_HISTORY = pd.DataFrame(
    columns=["member_id", "program", "cycle_date", "assignment_group", "response_window_days"]
)


# ---------------------------------------------------------------------------------------------
# Refused by the check and by the run, naming the program and the field


@pytest.mark.parametrize(("condition", "why"), BREAKOUTS + INJECTIONS)
def test_the_check_refuses_it_naming_the_program_and_the_field(condition, why):
    with pytest.raises(ProgramConfigError) as error:
        config.parse(_file(condition), source="programs.yml")
    assert str(error.value).startswith(f"programs.yml, {WHERE}: ")
    assert why in str(error.value)


@pytest.mark.parametrize(("condition", "why"), BREAKOUTS + INJECTIONS)
def test_the_run_refuses_it_naming_the_program_and_the_field(condition, why):
    programs = [Rules("win_back", 1, condition, True, 30)]
    with pytest.raises(ExpressionError) as selecting:
        eligibility.select(_members(), programs, NO_HISTORY, ON)
    # The check for segments reads the same parse, so a cycle without a segment model refuses too.
    with pytest.raises(ExpressionError) as skipping:
        eligibility.skipped(programs, dict.fromkeys(SEGMENT_COLUMNS, "no segment model"))
    for error in (selecting, skipping):
        assert str(error.value).startswith(f"{WHERE}: ")
        assert why in str(error.value)


@pytest.mark.parametrize(("condition", "why"), BREAKOUTS)
def test_programs_check_and_the_cycle_refuse_the_breakouts(
    condition, why, tmp_path, monkeypatch, capsys
):
    path = tmp_path / "programs.yml"
    path.write_text(_file(condition))
    monkeypatch.setenv("CX_PROGRAMS_CONFIG", str(path))
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "data"))
    for name in ("CX_DUCKDB_PATH", "CX_EXPORTS_DIR", "CX_REPORTS_DIR", "CX_WAREHOUSE_TARGET"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["check"]) == 2
    message = capsys.readouterr().err
    assert f"programs.yml, {WHERE}: " in message and why in message
    with pytest.raises(ProgramConfigError, match=f"{WHERE}: .*{why}"):
        settings = load_settings()
        cycle.assign(open_store(settings), settings)


# ---------------------------------------------------------------------------------------------
# What runs is the parsed expression, and the check binds the very statement the run executes


def test_the_statement_wraps_the_rendered_expression_not_the_text():
    statement = eligibility.selection_statement(
        "Risk_Band = 'high'   and members.Tenure_Days > 3", member_columns()
    )
    assert statement == (
        'select ("risk_band" = \'high\' AND "tenure_days" > 3) as selected from members'
    )


def test_the_check_and_the_run_bind_the_same_statement(monkeypatch):
    built = []
    build = eligibility.selection_statement

    def spy(expression, columns):
        built.append(build(expression, columns))
        return built[-1]

    monkeypatch.setattr(eligibility, "selection_statement", spy)
    loaded = config.parse(_file("risk_band = 'high' and not is_lapsed"))
    checked = list(built)
    eligibility.select(_members(), [p.rules() for p in loaded.programs], NO_HISTORY, ON)
    assert len(checked) == 1 and built == checked * 2


def test_quotes_and_semicolons_inside_text_are_values_not_syntax():
    frame = _members()
    frame.loc[frame.index[:3], "reason_1"] = "odd -- text; /* with ) marks"
    condition = "reason_1 = 'odd -- text; /* with ) marks'"
    eligibility.check_expression(condition, member_columns(), KNOWN_VALUES)
    assert eligibility.evaluate(condition, frame).tolist() == [True] * 3 + [False] * (
        len(frame) - 3
    )
    assert eligibility.referenced_columns(condition) == {"reason_1"}


def test_a_condition_that_is_not_true_or_false_is_refused_by_the_run_too():
    with pytest.raises(ExpressionError, match="must be true or false .* gives varchar"):
        eligibility.evaluate("'true'", _members())


# ---------------------------------------------------------------------------------------------
# Valid conditions select the same members as the text did when it was pasted into SQL


SHIPPED = config.load(REPO_ROOT / "programs" / "programs.yml").programs
MORE = [
    "risk_band in ('high', 'medium') and predicted_segment = 'Disengaged'",
    "latest_nps_score <= 6",
    "risk_band not in ('low') and not is_lapsed",
    "tenure_days between 100 and 300 or latest_nps_score is null",
    "latest_nps_score is not null and nps_score_change < 50",
    "spend_90d * 2 > spend_365d - 0.1 and transactions_90d % 2 = 0",
    "churn_probability / 2 >= 0.2 or segment_probability > 0.9",
    "transactions_30d // 3 = 10 or -points_balance < -300",
    "reason_1 like '%purchase%' or reason_2 not ilike '%NPS%'",
    "not (segment_dropped or is_lapsed) and tier = 'gold'",
    "previous_segment is distinct from predicted_segment",
    "segment_dropped is true or members.is_lapsed",
    "true",
]


def _as_written(condition: str, frame: pd.DataFrame) -> list[bool]:
    with duckdb.connect() as con:
        con.register("members", frame)
        selected = con.execute(f"select coalesce(({condition}), false) from members").fetchnumpy()
    return list(next(iter(selected.values())).astype(bool))


@pytest.mark.parametrize(
    "condition", [p.eligibility for p in SHIPPED] + MORE, ids=[p.name for p in SHIPPED] + MORE
)
def test_a_valid_condition_selects_the_members_it_selected_as_written(condition):
    frame = _members()
    eligibility.check_expression(condition, member_columns(), KNOWN_VALUES)
    selected = eligibility.evaluate(condition, frame).tolist()
    assert selected == _as_written(condition, frame)
    if condition != "true":  # a comparison that matched nobody or everyone would prove little
        assert 0 < sum(selected) < len(frame)
