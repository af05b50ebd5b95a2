"""Label logic: who is at risk, what counts as churn, which survey sets the segment."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from ml.labels import (
    IncompleteLabelWindowError,
    churn_labels,
    segment_from_answers,
    segment_labels,
)

CUTOFF = date(2025, 6, 1)
LAST = date(2025, 12, 31)


def _purchases(rows):
    return pd.DataFrame(rows, columns=["member_id", "occurred_date", "amount"])


def _members(closed):
    return pd.DataFrame(
        {"member_id": list(closed), "closed_at": pd.to_datetime([closed[m] for m in closed])}
    )


def test_churn_label_rules():
    purchases = _purchases(
        [
            ("stays", date(2025, 5, 1), 10.0),
            ("stays", date(2025, 7, 1), 10.0),
            ("quiet", date(2025, 5, 1), 10.0),
            ("closes", date(2025, 5, 1), 10.0),
            ("closes", date(2025, 6, 2), 10.0),
            ("lapsed", date(2024, 11, 1), 10.0),
            ("lapsed", date(2025, 7, 1), 10.0),
            ("gone", date(2025, 5, 1), 10.0),
            ("returns", date(2025, 5, 1), 10.0),
            ("returns", date(2025, 6, 10), -10.0),
            ("late", date(2025, 5, 1), 10.0),
            ("late", date(2025, 8, 30), 10.0),
            ("edge", date(2025, 5, 1), 10.0),
            ("edge", date(2025, 8, 29), 10.0),
        ]
    )
    members = _members(
        {
            "stays": None,
            "quiet": None,
            "closes": "2025-06-20",
            "lapsed": None,
            "gone": "2025-05-20",
            "returns": None,
            "late": None,
            "edge": None,
        }
    )
    out = churn_labels(purchases, members, [CUTOFF], LAST, horizon_days=90).set_index("member_id")[
        "churned"
    ]
    assert out.to_dict() == {
        "closes": True,  # bought in the window but closed the account in it
        "edge": False,  # day 89 of the window is inside it
        "late": True,  # day 90 is outside the window
        "quiet": True,
        "returns": True,  # a return is not a purchase
        "stays": False,
    }  # "lapsed" (not active in 180 days) and "gone" (closed before) are not at risk


def test_churn_horizon_is_configurable():
    purchases = _purchases([("a", date(2025, 5, 1), 5.0), ("a", date(2025, 7, 20), 5.0)])
    members = _members({"a": None})
    assert churn_labels(purchases, members, [CUTOFF], LAST, horizon_days=30)["churned"].item()
    assert not churn_labels(purchases, members, [CUTOFF], LAST, horizon_days=90)["churned"].item()


def test_churn_labels_over_several_cutoffs_and_a_purchase_with_no_member():
    purchases = _purchases(
        [
            ("a", date(2025, 5, 1), 5.0),
            ("a", date(2025, 6, 15), 5.0),
            ("b", date(2025, 6, 20), 5.0),
            (None, date(2025, 5, 2), 5.0),
        ]
    )
    members = _members({"a": None, "b": "2025-07-10"})
    out = churn_labels(purchases, members, [CUTOFF, date(2025, 7, 1)], LAST, horizon_days=30)
    assert [tuple(row) for row in out.itertuples(index=False)] == [
        ("a", CUTOFF, False),  # bought on June 15
        ("a", date(2025, 7, 1), True),  # nothing in July
        ("b", date(2025, 7, 1), True),  # closed on July 10, inside the window
    ]


def test_incomplete_label_window_raises():
    purchases = _purchases([("a", date(2025, 5, 1), 5.0)])
    with pytest.raises(IncompleteLabelWindowError, match="needs data up to 2025-08-29"):
        churn_labels(purchases, _members({"a": None}), [CUTOFF], date(2025, 8, 1), 90)


def test_segment_rule_follows_the_scales_anchors():
    """Engaged: agrees (mean item >= 4) and a promoter (9-10); Disengaged: disagrees (<= 2) or a
    detractor (0-6); the edges of each anchor land on their side."""
    emotion = pd.Series([4.0, 4.2, 3.0, 2.4, 4.6, 3.8, 2.0, 4.0, 5.0])
    nps = pd.Series([9, 5, 8, 9, 6, 10, 10, 8, 7])
    assert list(segment_from_answers(emotion, nps)) == [
        "Engaged",
        "Disengaged",  # a detractor, whatever the items say
        "Swing",
        "Swing",  # between disagree and neutral, and a promoter
        "Disengaged",
        "Swing",  # a promoter who does not quite agree on average
        "Disengaged",  # disagrees, even as a promoter
        "Swing",  # agrees, but a passive
        "Swing",
    ]


def _response(member, when, nps, item, survey_type="relationship"):
    return {
        "member_id": member,
        "submitted_at": pd.Timestamp(when),
        "survey_type": survey_type,
        "nps_score": nps,
        "valued_score": item,
        "confident_score": item,
        "informed_score": item,
        "protected_score": item,
        "helped_score": item,
    }


def test_segment_labels_use_latest_relationship_survey_before_cutoff():
    responses = pd.DataFrame(
        [
            _response("a", "2025-01-10", 10, 5),
            _response("a", "2025-04-10", 3, 1),  # latest before the cutoff: Disengaged
            _response("a", "2025-06-01 00:00", 10, 5),  # at the cutoff: the future, ignored
            _response("b", "2025-05-01", 2, 1, "post_call"),  # not a relationship survey
            _response("c", "2024-05-01", 10, 5),  # more than a year old
            _response("d", "2025-05-31 23:59", 8, 3),
        ]
    )
    out = segment_labels(responses, [CUTOFF]).set_index("member_id")["segment"].to_dict()
    assert out == {"a": "Disengaged", "d": "Swing"}
