"""The programs file: the shipped one loads, and every kind of mistake names program and field."""

from __future__ import annotations

import pytest

from config import load_settings
from config.settings import REPO_ROOT, SettingsError
from programs import config
from programs.config import ProgramConfigError

GOOD = """
programs:
  - name: win_back
    priority: 1
    eligibility: risk_band = 'high' and predicted_segment = 'Disengaged'
  - name: nurture
    priority: 2
    eligibility: predicted_segment = 'Swing'
    control_share: 0.2
    contact: {opt_in_required: false}
"""


def test_the_shipped_file_has_the_four_programs_in_priority_order():
    loaded = config.load(REPO_ROOT / "programs" / "programs.yml")
    names = [p.name for p in loaded.programs]
    assert names == ["service_recovery", "win_back", "nurture", "advocates"]
    assert [p.priority for p in loaded.programs] == [1, 2, 3, 4]
    assert all(0 < p.control_share <= 0.5 for p in loaded.programs)
    win_back = loaded.by_name()["win_back"]
    assert win_back.contact.opt_in_required is True
    assert loaded.by_name()["service_recovery"].contact.opt_in_required is False


def test_defaults_apply_and_programs_override_them():
    loaded = config.parse(GOOD)
    win_back, nurture = loaded.programs
    assert win_back.control_share == 0.10 and nurture.control_share == 0.2
    assert win_back.response_window_days == 60
    assert win_back.contact.opt_in_required and not nurture.contact.opt_in_required
    assert nurture.contact.exclude_contacted_within_days == 30
    assert win_back.title == "Win back"
    assert len(loaded.sha256) == 64


def _program(**fields) -> str:
    body = {"name": "win_back", "priority": 1, "eligibility": "risk_band = 'high'", **fields}
    lines = "\n".join(f"    {key}: {value}" for key, value in body.items())
    return f"programs:\n  - {lines.strip()}\n"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (_program(eligibility="risk > 0.5"), "eligibility", "unknown column 'risk' (did you mean risk_band"),
        (_program(eligibility="risk_band = 'hgh'"), "eligibility", "risk_band is never 'hgh'"),
        (_program(eligibility="predicted_segment in ('Swing', 'engaged')"), "eligibility", "never 'engaged'"),
        (_program(eligibility="risk_band"), "eligibility", "must be true or false"),
        (_program(eligibility="churn_probability >"), "eligibility", "not a valid condition"),
        (_program(eligibility="''"), "eligibility", "is empty"),
        (_program(eligibilty="risk_band = 'high'"), "eligibilty", "unknown field (did you mean eligibility?)"),
        (_program(control_share=0), "control_share", "every program keeps a control group"),
        (_program(control_share="ten"), "control_share", "must be a number"),
        (_program(response_window_days=0), "response_window_days", "at least 1"),
        (_program(priority="first"), "priority", "whole number"),
        (_program(contact="{opt_in_required: maybe}"), "contact.opt_in_required", "true or false"),
        (_program(contact="{rest_days: 3}"), "contact.rest_days", "unknown field"),
        (_program(name="Win-Back"), "name", "lower-case letters"),
    ],
)  # fmt: skip
def test_a_mistake_names_the_program_and_the_field(text, field, words):
    with pytest.raises(ProgramConfigError) as error:
        config.parse(text, source="programs.yml")
    message = str(error.value)
    assert message.startswith("programs.yml")
    assert f"field {field!r}" in message
    assert words in message
    if field != "name":
        assert "program 'win_back'" in message


def test_overlapping_names_and_priorities_are_refused():
    twice = GOOD + "  - name: win_back\n    priority: 3\n    eligibility: 'true'\n"
    with pytest.raises(ProgramConfigError, match="program 'win_back', field 'name': is used by"):
        config.parse(twice)
    same_priority = GOOD.replace("priority: 2", "priority: 1")
    with pytest.raises(ProgramConfigError, match="program 'nurture', field 'priority': 1 is also"):
        config.parse(same_priority)


def test_a_key_given_twice_is_refused_not_silently_overwritten():
    text = GOOD.replace("    priority: 1\n", "    priority: 1\n    priority: 5\n")
    with pytest.raises(
        ProgramConfigError, match="program 'win_back', field 'priority': given twice"
    ):
        config.parse(text)


def test_disabled_programs_are_dropped_and_all_disabled_is_an_error():
    text = GOOD.replace("    control_share: 0.2\n", "    control_share: 0.2\n    enabled: false\n")
    assert [p.name for p in config.parse(text).programs] == ["win_back"]
    with pytest.raises(ProgramConfigError, match="every program is disabled"):
        config.parse(text.replace("priority: 1\n", "priority: 1\n    enabled: false\n"))


def test_bad_yaml_and_missing_file_say_where(tmp_path):
    with pytest.raises(ProgramConfigError, match="programs.yml: is not valid YAML"):
        config.parse("programs: [\n", source="programs.yml")
    with pytest.raises(ProgramConfigError, match="CX_PROGRAMS_CONFIG"):
        config.load(tmp_path / "nope.yml")


def test_settings_name_the_programs_file_exports_and_reports(tmp_path):
    settings = load_settings({"CX_DATA_DIR": str(tmp_path)})
    assert settings.exports_dir == tmp_path / "exports"
    assert settings.reports_dir == tmp_path / "reports"
    assert settings.programs_config == REPO_ROOT / "programs" / "programs.yml"
    with pytest.raises(SettingsError, match="CX_PROGRAMS_CONFIG"):
        load_settings({"CX_PROGRAMS_CONFIG": str(tmp_path / "programs.json")})
