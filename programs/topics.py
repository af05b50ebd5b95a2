"""The report's "what customers complain about": the top negative topics and their trend.

Reads ``mart_topics_monthly`` (survey comments and call notes, warehouse/text) through the
store: the months up to the report's date, the topics with the most negative mentions over the
last ``MONTHS`` of them, and each topic's negative mentions month by month.
"""

from __future__ import annotations

from datetime import date
from html import escape

MONTHS = 3
TOP = 5


def summary(store, as_of: date, months: int = MONTHS, top: int = TOP) -> dict | None:
    """The top negative topics of the last ``months`` months with data up to ``as_of``, or None
    when the warehouse has no topics mart (a build before warehouse/text)."""
    from warehouse.text.rules import topics

    if not store.exists("mart_topics_monthly"):
        return None
    rows = store.read(
        """
        select topic_month, topic, sum(mentions) as mentions,
            sum(negative_mentions) as negative_mentions
        from mart_topics_monthly
        where topic <> 'none' and topic_month <= $1
        group by topic_month, topic
        order by topic_month, topic
        """,
        [as_of],
    )
    if rows.empty:
        return {"months": [], "topics": []}
    shown = sorted(rows["topic_month"].drop_duplicates())[-months:]
    recent = rows[rows["topic_month"].isin(shown)]
    totals = (
        recent.groupby("topic")[["mentions", "negative_mentions"]]
        .sum()
        .sort_values(["negative_mentions", "mentions"], ascending=False)
    )
    totals = totals[totals["negative_mentions"] > 0].head(top)
    labels = {topic.key: topic.label for topic in topics()}
    by_month = recent.pivot_table(
        index="topic", columns="topic_month", values="negative_mentions", aggfunc="sum"
    ).fillna(0)
    out = []
    for topic, total in totals.iterrows():
        trend = [int(by_month.loc[topic].get(month, 0)) for month in shown]
        out.append(
            {
                "topic": topic,
                "label": labels.get(topic, topic),
                "negative_mentions": int(total["negative_mentions"]),
                "negative_share": float(total["negative_mentions"] / total["mentions"]),
                "trend": trend,
            }
        )
    return {"months": [month.strftime("%Y-%m") for month in shown], "topics": out}


def _direction(trend: list[int]) -> str:
    if len(trend) < 2 or trend[-1] == trend[-2]:
        return "steady"
    return "rising" if trend[-1] > trend[-2] else "falling"


def report_section(data: dict | None) -> str:
    """The report's section: a table of the top negative topics, or why there is none."""
    head = '<section id="topics">\n  <h2>What customers complain about</h2>\n'
    if data is None:
        return ""
    if not data["topics"]:
        return (
            head + "  <p class='empty'>No negative comment or call note with a topic yet.</p>\n"
            "</section>\n"
        )
    months = data["months"]
    header = "".join(f"<th>{escape(month)}</th>" for month in months)
    rows = []
    for topic in data["topics"]:
        cells = "".join(f"<td>{count:,}</td>" for count in topic["trend"])
        rows.append(
            f"<tr><td>{escape(topic['label'])}</td><td>{topic['negative_mentions']:,}</td>"
            f"<td>{topic['negative_share']:.0%}</td>{cells}"
            f"<td>{_direction(topic['trend'])}</td></tr>"
        )
    return (
        head + f"  <p>Topics of the negative survey comments and call notes over the last "
        f"{len(months)} month(s) with data (warehouse/text/topics.yml), most mentioned first; "
        "the monthly columns count negative mentions.</p>\n"
        "  <table><thead><tr><th>Topic</th><th>Negative mentions</th><th>Share negative</th>"
        f"{header}<th>Last month</th></tr></thead>\n  <tbody>"
        + "".join(rows)
        + "</tbody></table>\n</section>\n"
    )
