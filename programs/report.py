"""The segment report: one static HTML page for marketers, regenerated every cycle.

``gather`` reads what the page shows from the warehouse (read-only) and the exports manifest;
``render`` turns it into HTML with inline SVG charts (``programs/charts.py``) and is pure, so a
test can render any situation; ``write`` publishes the page atomically as
``<reports>/segment-report.html`` and keeps a dated copy per cycle.

Sections: segment sizes over time, transitions between segments, churn risk by segment and by
tier, the most common reasons, program sizes and measured lift, and key drivers.

Without a segment model (a deployment with no survey responses to learn segments from) the page
says so and why at the top and in place of the segment sections, shows churn risk by tier, and
lists the programs skipped for want of a segment with their reasons.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from pathlib import Path

import pandas as pd

from ml.labels import EMOTION_ITEMS, SEGMENTS, segment_from_answers
from programs import charts, drivers, members

REPORT_NAME = "segment-report.html"
RISK_BANDS = ("low", "medium", "high")
TIERS = ("bronze", "silver", "gold", "platinum")
SEGMENT_ORDER = tuple(reversed(SEGMENTS))  # Engaged, Swing, Disengaged

# Reasons are sentences with the member's own numbers; the report counts them by kind.
REASON_KINDS: tuple[tuple[str, str], ...] = (
    (r"negative experiences? in the last 30 days", "Negative experiences in the last 30 days"),
    (r"negative experiences? in the last 90 days", "Several negative experiences in 90 days"),
    (r"unresolved calls?", "Unresolved calls"),
    (r"escalated calls?", "Escalated calls"),
    (r"^called back", "Called back about the same issue"),
    (r"^NPS fell", "NPS fell"),
    (r"^last NPS answer was", "Detractor NPS answer"),
    (r"^ease of getting help fell", "Harder to get help (CES fell)"),
    (r"^waited .* call queue", "Long waits in the call queue"),
    (r"^no purchase in \d+ days", "Long time since the last purchase"),
    (r"^quiet for longer than usual", "Quieter than their usual rhythm"),
    (r"in the last 30 days, down from", "Fewer purchases than the month before"),
    (r"^spent .* less", "Spending less than the 90 days before"),
    (r"(^no purchase|^only \d+ purchases?) in the last 90 days", "Few purchases in 90 days"),
    (r"^engagement index fell", "Engagement fell"),
)


def reason_kind(reason: str) -> str:
    """The kind of a reason sentence (its numbers replaced by # when no kind matches)."""
    for pattern, kind in REASON_KINDS:
        if re.search(pattern, reason):
            return kind
    return re.sub(r"\d+", "#", reason)


@dataclass
class ReportData:
    """Everything the page shows; frames may be empty (a first run, before any lift)."""

    as_of: date
    model_version: str
    members_scored: int
    predicted_segments: pd.DataFrame  # score_date, predicted_segment, members
    measured_segments: pd.DataFrame  # month, segment, responses
    predicted_transitions: pd.DataFrame  # from_segment, to_segment, members
    measured_transitions: pd.DataFrame  # from_segment, to_segment, members
    transition_dates: tuple[str, str] | None
    risk: pd.DataFrame  # predicted_segment, tier, risk_band, members, churn_probability_sum
    reasons: pd.DataFrame  # reason, members
    cycles: pd.DataFrame  # program_cycles rows
    lift: pd.DataFrame  # mart_program_lift rows
    key_drivers: pd.DataFrame  # mart_key_drivers rows for as_of
    exports_path: str | None = None
    manifest: dict | None = None
    notes: list[str] = field(default_factory=list)
    no_segments: str | None = None  # why the scores carry no segment ("no segment model: ...")
    cases: dict | None = None  # programs.cases.summary: open, overdue, time to close, retention
    topics: dict | None = None  # programs.topics.summary: top negative topics and their trend
    # Each program's minimum detectable effect in the latest cycle (programs.lift).
    detectable: pd.DataFrame = field(default_factory=pd.DataFrame)


# ---------------------------------------------------------------------------------------------
# Reading


# One row per member and score date: when the models scored a date twice, the latest models'
# row. The report reads the latest two dates' rows and the counts per date, never the whole
# score history (ml_scores keeps every date).
_LATEST_MODELS = """
    qualify row_number() over (
        partition by score_date, member_id
        order by try_cast(churn_model_version as integer) desc nulls last,
            try_cast(segment_model_version as integer) desc nulls last,
            model_version desc
    ) = 1
"""

_SEGMENTS_PER_DATE = f"""
    select score_date, predicted_segment, count(*) as members
    from (select score_date, predicted_segment from ml_scores {_LATEST_MODELS}) as latest
    where predicted_segment is not null
    group by score_date, predicted_segment
    order by score_date, predicted_segment
"""


def _scores_on(store, day: date, columns: str = "*") -> pd.DataFrame:
    return store.read(
        f"select {columns} from ml_scores where score_date = $1 {_LATEST_MODELS}", [day]
    )


def _measured(store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segments of relationship answers by month, and moves between a member's consecutive
    answers (the rule of ``ml/labels.py``)."""
    answers = members.read(
        store,
        "select member_id, submitted_at, nps_score, "
        + ", ".join(EMOTION_ITEMS)
        + " from fct_survey_responses where survey_type = 'relationship' "
        "and member_id is not null and nps_score is not null "
        "order by member_id, submitted_at, response_id",
    )
    answers["mean_emotion"] = answers[list(EMOTION_ITEMS)].astype(float).mean(axis=1)
    answers = answers.dropna(subset=["mean_emotion"])
    answers["segment"] = segment_from_answers(
        answers["mean_emotion"], answers["nps_score"].astype(float)
    )
    answers["month"] = pd.to_datetime(answers["submitted_at"]).dt.strftime("%Y-%m")
    monthly = answers.groupby(["month", "segment"]).size().rename("responses").reset_index()
    answers["from_segment"] = answers.groupby("member_id")["segment"].shift()
    moves = answers.dropna(subset=["from_segment"]).rename(columns={"segment": "to_segment"})
    transitions = moves.groupby(["from_segment", "to_segment"]).size().rename("members")
    return monthly, transitions.reset_index()


def _reasons(current: pd.DataFrame) -> pd.DataFrame:
    stacked = current.melt(
        id_vars="member_id", value_vars=["reason_1", "reason_2", "reason_3"], value_name="reason"
    ).dropna(subset=["reason"])
    # Reasons repeat across members: each distinct sentence is matched once.
    kinds = {reason: reason_kind(reason) for reason in stacked["reason"].unique()}
    stacked["reason"] = stacked["reason"].map(kinds)
    counts = stacked.drop_duplicates(["member_id", "reason"]).groupby("reason").size()
    counts = counts.rename("members").reset_index()
    return counts.sort_values(["members", "reason"], ascending=[False, True], ignore_index=True)


def shown_path(path: Path, data_dir: Path | None) -> str:
    """``path`` as the report shows it: relative to the data folder (``CX_DATA_DIR``) when it is
    inside it, so the page names no server's absolute path; else only its last two parts."""
    if data_dir is not None:
        try:
            # Not resolve(): ``latest`` is a symlink, and the page names the link, which stays.
            inside = Path(os.path.abspath(path)).relative_to(os.path.abspath(data_dir))
            return inside.as_posix()
        except ValueError:
            pass
    return Path(*Path(path).parts[-2:]).as_posix()


def gather(store, exports_dir: Path | None = None, data_dir: Path | None = None) -> ReportData:
    """Read the report's data from the warehouse (``store``) and the exports' manifest; paths
    are shown relative to ``data_dir``."""
    from programs.cases import summary as case_summary
    from programs.exports import read_manifest
    from programs.lift import detectable_effects
    from programs.topics import summary as topics_summary

    dates = [
        day.date()
        for day in store.read("select distinct score_date from ml_scores order by score_date")[
            "score_date"
        ]
    ]
    if not dates:
        raise ValueError("ml_scores holds no scores: score the members before the report")
    as_of = dates[-1]
    current = _scores_on(store, as_of)
    tiers = store.read("select member_id, tier from customer_360")
    current = current.merge(tiers, on="member_id", how="left")
    no_segments = members.segment_model_absence(store, current)
    predicted = pd.DataFrame(columns=["from_segment", "to_segment", "members"])
    transition_dates = None
    if len(dates) >= 2 and not no_segments:
        before = _scores_on(store, dates[-2], "member_id, predicted_segment")
        moved = before.merge(
            current[["member_id", "predicted_segment"]], on="member_id", suffixes=("_a", "_b")
        )
        predicted = (
            moved.groupby(["predicted_segment_a", "predicted_segment_b"])
            .size()
            .rename("members")
            .reset_index()
            .rename(
                columns={"predicted_segment_a": "from_segment", "predicted_segment_b": "to_segment"}
            )
        )
        transition_dates = (dates[-2].isoformat(), dates[-1].isoformat())
    monthly, measured_transitions = _measured(store)
    risk = (
        current.groupby(["predicted_segment", "tier", "risk_band"], dropna=False)
        .agg(members=("member_id", "size"), churn_probability_sum=("churn_probability", "sum"))
        .reset_index()
    )
    cycles = (
        store.read("select * from program_cycles order by cycle_date, priority")
        if store.exists("program_cycles")
        else pd.DataFrame()
    )
    lift_rows = (
        store.read("select * from mart_program_lift order by cycle_date, program")
        if store.exists("mart_program_lift")
        else pd.DataFrame()
    )
    driver_rows = (
        store.read(
            "select * from mart_key_drivers where as_of_date = $1 order by outcome, driver", [as_of]
        )
        if store.exists("mart_key_drivers")
        else pd.DataFrame()
    )
    manifest = read_manifest(exports_dir) if exports_dir else None
    return ReportData(
        as_of=as_of,
        model_version=str(current["model_version"].iloc[0]),
        members_scored=len(current),
        predicted_segments=store.read(_SEGMENTS_PER_DATE),
        measured_segments=monthly,
        predicted_transitions=predicted,
        measured_transitions=measured_transitions,
        transition_dates=transition_dates,
        risk=risk,
        reasons=_reasons(current),
        cycles=cycles,
        lift=lift_rows,
        key_drivers=driver_rows,
        exports_path=(
            shown_path(exports_dir / "latest", data_dir) if manifest and exports_dir else None
        ),
        manifest=manifest,
        no_segments=no_segments,
        cases=case_summary(store, as_of),
        topics=topics_summary(store, as_of),
        detectable=(
            detectable_effects(store, pd.Timestamp(cycles["cycle_date"].max()).date())
            if len(cycles)
            else pd.DataFrame()
        ),
    )


# ---------------------------------------------------------------------------------------------
# Rendering


def _pivot(frame: pd.DataFrame, index: str, columns: str, values: str, rows, cols) -> list:
    table = frame.pivot_table(index=index, columns=columns, values=values, aggfunc="sum")
    table = table.reindex(index=list(rows), columns=list(cols)).fillna(0)
    return table.to_numpy().tolist()


def _empty(message: str) -> str:
    return f"<p class='empty'>{escape(message)}</p>"


def _no_segments_section(data: ReportData) -> str:
    """In place of segment sizes and transitions: that there is no segment model, and why."""
    measured = ""
    if not data.measured_segments.empty:
        measured = f"""
  <p class="how">Survey respondents, placed by their own answers, month by month:</p>
  <figure>{_measured_chart(data.measured_segments)}<figcaption>Measured segments, relationship
  survey respondents</figcaption></figure>"""
    return f"""
<section id="segments">
  <h2>Segments</h2>
  <p class="notice">{escape(_sentence(data.no_segments or ""))}</p>
  <p class="how">Engagement segments (Engaged, Swing, Disengaged) are learned from survey answers
  (how valued, confident, informed, protected and helped members feel, and their NPS). Without
  them the models score churn risk only: there are no segment sizes or transitions to show, and
  programs whose condition uses a segment are skipped (see Programs below). Churn risk, its reasons
  and the other programs are unaffected. Segments appear once survey responses are loaded and the
  segment model is trained on them.</p>{measured}
</section>"""


def _sentence(text: str) -> str:
    """``no segment model: the deployment ...`` as a sentence: capitalised, with a full stop."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _measured_chart(measured: pd.DataFrame) -> str:
    months = sorted(measured["month"].unique())
    grid = _pivot(measured, "month", "segment", "responses", months, SEGMENT_ORDER)
    return charts.stacked_columns(
        months,
        [
            (s, [row[j] for row in grid], charts.SEGMENT_COLOURS[s])
            for j, s in enumerate(SEGMENT_ORDER)
        ],
        "Measured segments among survey respondents, by month",
    )


def _segments_section(data: ReportData) -> str:
    if data.no_segments:
        return _no_segments_section(data)
    predicted = data.predicted_segments
    dates = sorted(predicted["score_date"].astype(str).unique())
    counts = _pivot(
        predicted.assign(score_date=predicted["score_date"].astype(str)),
        "score_date",
        "predicted_segment",
        "members",
        dates,
        SEGMENT_ORDER,
    )
    series = [
        (segment, [row[j] for row in counts], charts.SEGMENT_COLOURS[segment])
        for j, segment in enumerate(SEGMENT_ORDER)
    ]
    predicted_chart = charts.stacked_bars(
        [f"scored {d}" for d in dates],
        series,
        "Predicted segment sizes per score date",
        percent=False,
    )
    measured = data.measured_segments
    if measured.empty:
        measured_chart = _empty("No relationship survey answers yet.")
    else:
        measured_chart = _measured_chart(measured)
    return f"""
<section id="segments">
  <h2>Segment sizes over time</h2>
  <p class="how">Every open member gets a predicted segment each time the models score; one bar
  per score date. Hover a bar for counts.</p>
  <figure>{predicted_chart}<figcaption>Predicted segments, all scored members</figcaption></figure>
  <p class="how">Survey respondents, placed by their own answers (mean of the five emotional
  items and NPS), month by month: the longer view while scoring history builds up.</p>
  <figure>{measured_chart}<figcaption>Measured segments, relationship survey respondents
  </figcaption></figure>
</section>"""


def _transition_chart(frame: pd.DataFrame, label: str) -> str:
    grid = _pivot(frame, "from_segment", "to_segment", "members", SEGMENT_ORDER, SEGMENT_ORDER)
    return charts.heatmap(SEGMENT_ORDER, SEGMENT_ORDER, grid, label, "from ↓ / to →", "")


def _transitions_section(data: ReportData) -> str:
    if data.transition_dates and not data.predicted_transitions.empty:
        start, end = data.transition_dates
        predicted = (
            f"<figure>{_transition_chart(data.predicted_transitions, 'Predicted transitions')}"
            f"<figcaption>Predicted segment, {start} to {end} (members scored on both dates)"
            "</figcaption></figure>"
        )
    else:
        predicted = _empty(
            "Predicted transitions appear from the second score date on (one so far)."
        )
    if data.measured_transitions.empty:
        measured = _empty("No member has answered two relationship surveys yet.")
    else:
        measured = (
            f"<figure>{_transition_chart(data.measured_transitions, 'Measured transitions')}"
            "<figcaption>Measured segment, from one relationship survey answer to the member's "
            "next</figcaption></figure>"
        )
    return f"""
<section id="transitions">
  <h2>Transitions between segments</h2>
  <p class="how">Read each row: of the members who started in a segment, the share that ended in
  each. Moves down are the inflection points programs act on.</p>
  <div class="pair">{predicted}{measured}</div>
</section>"""


def _risk_chart(risk: pd.DataFrame, by: str, order, label: str) -> str:
    present = [c for c in order if c in set(risk[by].dropna())]
    grid = _pivot(risk, by, "risk_band", "members", present, RISK_BANDS)
    return charts.stacked_bars(
        present,
        [
            (band, [row[j] for row in grid], charts.RISK_COLOURS[band])
            for j, band in enumerate(RISK_BANDS)
        ],
        label,
    )


def _risk_table(risk: pd.DataFrame, by: str, order) -> str:
    grouped = risk.groupby(by).agg(
        members=("members", "sum"), probability=("churn_probability_sum", "sum")
    )
    rows = "".join(
        f"<tr><td>{escape(str(key))}</td><td>{int(grouped.loc[key, 'members']):,}</td>"
        f"<td>{grouped.loc[key, 'probability'] / grouped.loc[key, 'members']:.0%}</td></tr>"
        for key in order
        if key in grouped.index
    )
    return (
        f"<table><thead><tr><th>{escape(by.replace('predicted_', ''))}</th><th>members</th>"
        f"<th>mean churn probability</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _risk_section(data: ReportData) -> str:
    by_tier = _risk_chart(data.risk, "tier", TIERS, "Risk by tier")
    if data.no_segments:
        heading = "Churn risk by tier"
        by_segment = _empty("No churn risk by segment: there is no segment model (see Segments).")
    else:
        heading = "Churn risk by segment and by tier"
        chart = _risk_chart(data.risk, "predicted_segment", SEGMENT_ORDER, "Risk by segment")
        by_segment = (
            f"<figure>{chart}<figcaption>By predicted segment</figcaption>"
            f"{_risk_table(data.risk, 'predicted_segment', SEGMENT_ORDER)}</figure>"
        )
    return f"""
<section id="risk">
  <h2>{heading}</h2>
  <p class="how">Share of members in each risk band: high means a 50% or higher chance of no
  purchase (or a closed account) in the next 90 days, medium 25-50%.</p>
  <div class="pair">
    {by_segment}
    <figure>{by_tier}<figcaption>By loyalty tier</figcaption>
    {_risk_table(data.risk, "tier", TIERS)}</figure>
  </div>
</section>"""


def _reasons_section(data: ReportData, top: int = 12) -> str:
    if data.reasons.empty:
        chart = _empty("No reasons recorded for this score date.")
    else:
        head = data.reasons.head(top)
        chart = charts.horizontal_bars(
            head["reason"].tolist(), head["members"].tolist(), "Most common reasons"
        )
    return f"""
<section id="reasons">
  <h2>The most common reasons</h2>
  <p class="how">Each scored member carries up to three plain-word reasons for their risk,
  negative moments first. Members counted once per kind of reason.</p>
  <figure>{chart}</figure>
</section>"""


def _pts(value: float) -> str:
    return f"{value * 100:+.1f} pts"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"


def _money(value: float) -> str:
    return f"{value:+,.2f}"


def _count(value) -> str:
    """A funnel count; empty for a column a cycle written before it existed lacks."""
    return "" if value is None or pd.isna(value) else f"{int(value):,}"


def _skipped(cycles: pd.DataFrame) -> pd.Series:
    """Why each row's program was skipped (None where it ran; tables from before could skip)."""
    if "skipped_reason" not in cycles.columns:
        return pd.Series(None, index=cycles.index, dtype=object)
    return cycles["skipped_reason"].astype(object).where(cycles["skipped_reason"].notna(), None)


def _skipped_list(latest: pd.DataFrame, titles: dict[str, str]) -> str:
    reasons = _skipped(latest)
    items = "".join(
        f"<li><b>{escape(titles.get(program, program))}</b>: {escape(reason)}</li>"
        for program, reason in zip(latest["program"], reasons, strict=True)
        if reason is not None
    )
    if not items:
        return ""
    return (
        "<p>Skipped this cycle (no members were selected, so none are exported or held out):</p>"
        f"<ul class='skipped'>{items}</ul>"
    )


def _program_sizes(cycles: pd.DataFrame, titles: dict[str, str]) -> str:
    latest = cycles[cycles["cycle_date"] == cycles["cycle_date"].max()].sort_values("priority")
    skipped = _skipped(latest)
    ran = latest[skipped.isna()]
    if ran.empty:
        return _empty("Every program was skipped this cycle.") + _skipped_list(latest, titles)
    chart = charts.stacked_bars(
        [titles.get(p, p) for p in ran["program"]],
        [
            ("treatment", ran["treatment"].tolist(), charts.GROUP_COLOURS["treatment"]),
            ("control", ran["control"].tolist(), charts.GROUP_COLOURS["control"]),
        ],
        "Program sizes",
        percent=False,
    )
    columns = (
        "matched",
        "in_global_holdout",
        "not_opted_in",
        "contacted_recently",
        "held_in_control",
        "taken_by_higher_priority",
        "eligible",
        "treatment",
        "control",
    )
    header = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in columns)
    rows = "".join(
        f"<tr><td>{escape(titles.get(r.program, r.program))}</td><td>{r.priority}</td>"
        + (
            "".join(f"<td>{_count(getattr(r, c, None))}</td>" for c in columns)
            if reason is None
            else f"<td colspan='{len(columns)}' class='empty'>skipped (see above)</td>"
        )
        + "</tr>"
        for r, reason in zip(latest.itertuples(), skipped, strict=True)
    )
    day = pd.Timestamp(latest["cycle_date"].iloc[0]).date()
    return (
        f"<figure>{chart}<figcaption>Cycle {day}: members per program and group</figcaption>"
        f"</figure>{_skipped_list(latest, titles)}<table><thead><tr><th>program</th>"
        f"<th>priority</th>{header}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _lift_block(lift_rows: pd.DataFrame, titles: dict[str, str]) -> str:
    if lift_rows.empty:
        return _empty("No program cycle yet.")
    measured = lift_rows[lift_rows["status"] == "measured"]
    parts = []
    for metric, fmt, title in (
        ("retention_rate", _pts, "Retention lift (treated minus control, percentage points)"),
        ("spend_per_member", _money, "Spend lift per member (treated minus control)"),
    ):
        rows = measured[measured["metric"] == metric]
        if rows.empty:
            continue
        points = [
            (
                f"{titles.get(r.program, r.program)} · {pd.Timestamp(r.cycle_date).date()}",
                r.difference,
                r.ci_low,
                r.ci_high,
            )
            for r in rows.itertuples()
        ]
        parts.append(
            f"<figure>{charts.forest(points, title, title, fmt)}<figcaption>{escape(title)}, "
            "with 95% confidence intervals; an interval that crosses zero is no proven effect"
            "</figcaption></figure>"
        )
    if measured.empty:
        parts.append(
            _empty("No program's response window has passed yet, so there is no lift to show.")
        )
    body = []
    for r in lift_rows.itertuples():
        name = escape(titles.get(r.program, r.program))
        cycle = pd.Timestamp(r.cycle_date).date()
        fmt = _pts if r.metric == "retention_rate" else _money
        if r.status == "window_open":
            result = (
                f"window not yet passed: measurable on {pd.Timestamp(r.window_ends_on).date()} "
                f"(data through {pd.Timestamp(r.measured_through).date()})"
            )
        elif r.status == "too_small":
            result = "too few members in a group to compare"
        else:
            result = (
                f"{fmt(r.difference)} (95% CI {fmt(r.ci_low)} to {fmt(r.ci_high)}, "
                f"p {_p(r.p_value)})"
            )
        body.append(
            f"<tr><td>{name}</td><td>{cycle}</td><td>{r.metric.replace('_', ' ')}</td>"
            f"<td>{int(r.treatment_members):,}</td><td>{int(r.control_members):,}</td>"
            f"<td class='status-{r.status}'>{escape(result)}</td></tr>"
        )
    parts.append(
        "<table><thead><tr><th>program</th><th>cycle</th><th>metric</th><th>treated</th>"
        f"<th>control</th><th>lift</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
    return "".join(parts)


def _last_result(lift_rows: pd.DataFrame, program: str, before) -> str:
    """What the program's last measured cycle achieved, or when its first result is due."""
    if lift_rows.empty:
        return "first cycle: nothing to compare yet"
    mine = lift_rows[
        (lift_rows["program"] == program) & (pd.to_datetime(lift_rows["cycle_date"]) < before)
    ]
    measured = mine[mine["status"] == "measured"]
    if measured.empty:
        waiting = mine[mine["status"] == "window_open"]
        if len(waiting):
            due = pd.Timestamp(waiting["window_ends_on"].min()).date()
            return f"no result yet: the first response window ends on {due}"
        if len(mine):
            return "too few members in a group to compare"
        return "first cycle: nothing to compare yet"
    last = measured[measured["cycle_date"] == measured["cycle_date"].max()]
    cycle = pd.Timestamp(last["cycle_date"].iloc[0]).date()
    parts = []
    for metric, fmt, label in (
        ("retention_rate", _pts, "retention"),
        ("spend_per_member", _money, "spend per member"),
    ):
        row = last[last["metric"] == metric]
        if row.empty:
            continue
        r = row.iloc[0]
        parts.append(f"{label} {fmt(r.difference)} (95% CI {fmt(r.ci_low)} to {fmt(r.ci_high)})")
    return f"cycle {cycle}: " + "; ".join(parts)


def _manifest_programs(data: ReportData, cycle) -> dict[str, dict]:
    """The latest manifest's program entries when it is the cycle's (else none)."""
    if not data.manifest or str(data.manifest.get("cycle_date")) != str(cycle):
        return {}
    return {p["name"]: p for p in data.manifest.get("programs", [])}


def _todo_section(data: ReportData) -> str:
    """What to do this cycle: each program, whom to contact, how, by when, and what the last
    cycle achieved. The page opens with it."""
    if data.cycles.empty:
        return ""
    on = data.cycles["cycle_date"].max()
    latest = data.cycles[data.cycles["cycle_date"] == on].sort_values("priority")
    cycle = pd.Timestamp(on).date()
    entries = _manifest_programs(data, cycle)
    rows = []
    for r, reason in zip(latest.itertuples(), _skipped(latest), strict=True):
        title = escape(r.title)
        if reason is not None:
            rows.append(
                f"<tr><td>{title}</td><td colspan='4' class='empty'>skipped this cycle "
                "(why: see <a href='#programs'>Programs and lift</a>)</td></tr>"
            )
            continue
        within = getattr(r, "contact_within_days", None)
        within = 7 if within is None or pd.isna(within) else int(within)
        by = cycle + timedelta(days=within)
        entry = entries.get(r.program)
        if entry and "channels" in entry:
            channels = entry["channels"]
            how = ", ".join(
                f"{channels.get(c, 0):,} by {c}" for c in ("email", "phone") if channels.get(c)
            )
            if channels.get("none"):
                how += f"{'; ' if how else ''}{channels['none']:,} with no channel"
            file = f"<br><code>{escape(data.exports_path or 'latest')}/{r.program}.csv</code>"
        else:
            how, file = "", ""
        rows.append(
            f"<tr><td><b>{title}</b></td><td>{int(r.treatment):,}{file}</td>"
            f"<td>{escape(how) or '-'}</td><td>{by}</td>"
            f"<td>{escape(_last_result(data.lift, r.program, pd.Timestamp(on)))}</td></tr>"
        )
    holdout = ""
    share = latest.get("global_holdout_share")
    if share is not None and len(latest) and pd.notna(share.iloc[0]) and share.iloc[0] > 0:
        held = latest["global_holdout_members"].iloc[0]
        holdout = (
            f"<p>{int(held):,} members ({share.iloc[0]:.0%}) are in the global holdout: no "
            "program contacts them, in any cycle, so they show what all the programs together "
            "change.</p>"
        )
    return f"""
<section id="todo">
  <h2>What to do this cycle ({cycle})</h2>
  <p class="how">Contact the treated members of each program by the date shown: the response
  window starts on the cycle date, so a late contact shortens it. The control groups are not in
  the files and must not be contacted.</p>
  <table><thead><tr><th>program</th><th>contact</th><th>how</th><th>by</th>
  <th>what the last cycle achieved</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
  {holdout}
</section>"""


def _detectable_block(data: ReportData, titles: dict[str, str]) -> str:
    """Each program's minimum detectable effect for this cycle's group sizes."""
    if data.detectable.empty:
        return ""
    order = {name: position for position, name in enumerate(titles)}  # priority order
    rows = "".join(
        f"<tr><td>{escape(titles.get(r.program, r.program))}</td><td>{r.treatment:,}</td>"
        f"<td>{r.control:,}</td>"
        f"<td>{'' if pd.isna(r.baseline_retention) else f'{r.baseline_retention:.0%}'}</td>"
        f"<td>{'-' if pd.isna(r.retention_mde) else f'{r.retention_mde * 100:.1f} pts'}</td>"
        f"<td>{'-' if pd.isna(r.spend_mde) else f'{r.spend_mde:,.2f}'}</td></tr>"
        for r in data.detectable.sort_values(
            "program", key=lambda names: names.map(order)
        ).itertuples()
    )
    return f"""
  <h3>Smallest effect this cycle can detect</h3>
  <p class="how">Before any outcome is in: the smallest true lift each program would find 80% of
  the time at the 5% level (two-sided), for its treated and control sizes, with the outcome's
  spread taken from the same members over the window just before the cycle. A true effect
  smaller than this will most likely read as "no proven effect"; a larger control share or
  pooling cycles narrows it.</p>
  <table><thead><tr><th>program</th><th>treated</th><th>control</th>
  <th>retention before</th><th>retention lift</th><th>spend lift per member</th></tr></thead>
  <tbody>{rows}</tbody></table>"""


def _programs_section(data: ReportData) -> str:
    if data.cycles.empty:
        return """
<section id="programs"><h2>Programs and measured lift</h2>
<p class='empty'>No program cycle has run yet: run <code>make programs</code>.</p></section>"""
    titles = dict(zip(data.cycles["program"], data.cycles["title"], strict=False))
    exports = ""
    if data.exports_path and data.manifest:
        rows = sum(p.get("rows", 0) for p in data.manifest.get("programs", []))
        exports = (
            f"<p>Exports for cycle {escape(str(data.manifest.get('cycle_date')))}: {rows:,} "
            f"treated members in <code>{escape(data.exports_path)}</code> (one CSV and one "
            "Parquet file per program, and <code>manifest.json</code>).</p>"
        )
    return f"""
<section id="programs">
  <h2>Programs and measured lift</h2>
  <p class="how">Each program holds out a random control group that is never contacted. When the
  program's response window has passed, retention (bought again and kept the account) and spend of
  the treated members are compared with the control group's.</p>
  {exports}
  {_program_sizes(data.cycles, titles)}
  {_detectable_block(data, titles)}
  <h3>Lift</h3>
  {_lift_block(data.lift, titles)}
</section>"""


def _drivers_section(data: ReportData) -> str:
    if data.key_drivers.empty:
        return """
<section id="drivers"><h2>Key drivers</h2>
<p class='empty'>Key drivers are computed with each program cycle.</p></section>"""
    figures = []
    not_derived = []  # outcomes without data at all: said once, left out of the table
    for outcome, title in drivers.OUTCOMES.items():
        rows = data.key_drivers[
            (data.key_drivers["outcome"] == outcome)
            & data.key_drivers["derived_importance"].notna()
            & data.key_drivers["stated_performance"].notna()
        ]
        if rows.empty:
            notes = data.key_drivers.loc[data.key_drivers["outcome"] == outcome, "note"]
            shared = set(notes.dropna())
            if len(notes) and notes.notna().all() and len(shared) == 1:
                not_derived.append(outcome)
                figures.append(_empty(f"{title} is not derived: {shared.pop()}."))
            else:
                figures.append(_empty(f"Not enough data to derive what drives {title}."))
            continue
        points = list(
            zip(
                rows["driver_label"],
                rows["stated_performance"],
                rows["derived_importance"],
                strict=True,
            )
        )
        chart = charts.scatter_quadrants(
            points,
            f"Key drivers of {title}",
            "stated performance: share of answers or calls that went well",
            "derived importance: share of explained variation",
        )
        first = rows.iloc[0]
        figures.append(
            f"<figure>{chart}<figcaption>{escape(title)}: {int(first.outcome_members):,} members, "
            f"the experiences explain {first.r_squared:.0%} of its variation</figcaption></figure>"
        )
    table_rows = "".join(
        f"<tr><td>{escape(r.driver_label)}</td><td>{r.outcome}</td>"
        f"<td>{'' if pd.isna(r.stated_performance) else f'{r.stated_performance:.0%}'}</td>"
        f"<td>{'' if pd.isna(r.derived_importance) else f'{r.derived_importance:.0%}'}</td>"
        f"<td>{'' if pd.isna(r.correlation) else f'{r.correlation:+.2f}'}</td>"
        f"<td>{int(r.observed_members):,}</td>"
        f"<td>{'' if pd.isna(r.note) else escape(r.note)}</td></tr>"
        for r in data.key_drivers[~data.key_drivers["outcome"].isin(not_derived)]
        .sort_values(["outcome", "derived_importance"], ascending=[False, False])
        .itertuples()
    )
    return f"""
<section id="drivers">
  <h2>Key drivers: what moves NPS and churn</h2>
  <p class="how">What customers say matters is not always what moves them. Importance here is
  derived from how each experience goes with NPS and with churn (relative weights: each
  experience's share of what the experiences together explain), shown against how well it is
  delivered today. Top left, <b>fix first</b>: it matters and goes well less often. Top right,
  <b>keep it up</b>. Along the bottom, experiences that matter less to this outcome.</p>
  <div class="pair">{"".join(figures)}</div>
  <table><thead><tr><th>experience</th><th>outcome</th><th>performance</th><th>importance</th>
  <th>correlation</th><th>members observed</th><th>note</th></tr></thead>
  <tbody>{table_rows}</tbody></table>
</section>"""


STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1f2a30;
  margin: 0 auto; max-width: 1180px; padding: 24px 28px 60px; line-height: 1.45; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 20px; margin-top: 40px;
  border-bottom: 1px solid #e3e7ea; padding-bottom: 6px; } h3 { font-size: 16px; }
.meta { color: #6b7780; } .how { color: #44525b; max-width: 820px; }
figure { margin: 16px 0; } figcaption { color: #6b7780; font-size: 13px; margin-top: 4px; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; } .pair > figure { flex: 1 1 460px; }
table { border-collapse: collapse; font-size: 13px; margin: 10px 0 18px; }
th, td { border-bottom: 1px solid #e3e7ea; padding: 4px 10px; text-align: left; }
th { color: #6b7780; font-weight: 600; } .empty { color: #6b7780; font-style: italic; }
.status-window_open { color: #6b7780; } nav a { margin-right: 14px; color: #3d5a80; }
code { background: #f3f5f6; padding: 1px 4px; border-radius: 3px; }
.notice { background: #fff4e5; border-left: 4px solid #f4a261; padding: 8px 12px;
  max-width: 820px; }
"""


def render(data: ReportData) -> str:
    """The whole page as one HTML string (no scripts, no external resources)."""
    from programs.cases import report_section as cases_section
    from programs.topics import report_section as topics_section

    sections = [
        _todo_section(data),
        _segments_section(data),
        "" if data.no_segments else _transitions_section(data),
        _risk_section(data),
        _reasons_section(data),
        topics_section(data.topics),
        _programs_section(data),
        cases_section(data.cases),
        _drivers_section(data),
    ]
    notes = "".join(f"<li>{escape(n)}</li>" for n in data.notes)
    notice = (
        f"<p class='notice'>{escape(_sentence(data.no_segments))} Churn risk and the programs "
        "that do not need a segment are shown as usual.</p>"
        if data.no_segments
        else ""
    )
    transitions_link = "" if data.no_segments else '<a href="#transitions">Transitions</a>'

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Segment report, {data.as_of}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Segment report</h1>
<p class="meta">As of {data.as_of} · {data.members_scored:,} open members scored ·
models {escape(data.model_version)}</p>
{notice}
<nav><a href="#todo">This cycle</a><a href="#segments">Segments</a>{transitions_link}<a href="#risk">Risk</a>
<a href="#reasons">Reasons</a>{'<a href="#topics">Complaints</a>' if data.topics is not None else ""}<a href="#programs">Programs and lift</a>
<a href="#cases">Cases</a><a href="#drivers">Key drivers</a></nav>
{"".join(sections)}
{f"<ul class='meta'>{notes}</ul>" if notes else ""}
<p class="meta">Generated from the customer warehouse by <code>python -m programs report</code>.
Segments: Engaged, Swing, Disengaged. Retention: a purchase in the response window and the
account still open. Confidence intervals are 95%.</p>
</body>
</html>
"""


def write(reports_dir: Path, html: str, on: date) -> Path:
    """Publish the page atomically as ``segment-report.html`` (and ``segment-report-<date>``)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    target = reports_dir / REPORT_NAME
    for path in (reports_dir / f"segment-report-{on.isoformat()}.html", target):
        handle, staged = tempfile.mkstemp(dir=reports_dir, prefix=".tmp-report-", suffix=".html")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(html)
        os.chmod(staged, 0o644)
        os.replace(staged, path)
    return target
