"""The configuration table in docs/configuration.md is the one `Settings` generates."""

from __future__ import annotations

import inspect
import re

import pytest

from config import docs
from config.settings import ENV_VARS, Settings, load_settings


def test_doc_table_is_the_generated_one():
    document = docs.DOC.read_text()
    assert docs.with_table(document, docs.render_table()) == document, (
        "docs/configuration.md's settings table differs from config/settings.py: "
        "run `make config-docs` (python -m config.docs)"
    )


def test_every_setting_says_what_it_is_for():
    undocumented = [
        f.name
        for f in docs.documented_fields()
        if not f.metadata["env"].startswith("CX_") or not f.metadata["doc"].strip()
    ]
    assert undocumented == []
    # Every field but the free-form extras comes from the environment and is in the table.
    assert {f.name for f in docs.documented_fields()} == {
        f for f in Settings.__dataclass_fields__ if f != "extra"
    }


def test_every_variable_load_settings_reads_is_documented():
    read = set(re.findall(r'"(CX_[A-Z0-9_]+)"', inspect.getsource(load_settings)))
    assert read, "load_settings reads no CX_ variable: the pattern above is stale"
    assert read - set(ENV_VARS) == set(), "a variable without a Settings field's description"
    table = docs.render_table()
    for name in read:
        assert f"| `{name}` |" in table


def test_defaults_are_written_without_this_machine_s_paths():
    table = docs.render_table()
    assert str(docs.REPO_ROOT) not in table
    assert "| `CX_DUCKDB_PATH` | `$CX_DATA_DIR/warehouse/cx.duckdb` |" in table
    assert "| `CX_DATA_DIR` | `./data` |" in table


def test_a_changed_default_shows_as_a_difference():
    document = docs.DOC.read_text()
    stale = document.replace("| `CX_SAMPLE_SEED` | `7` |", "| `CX_SAMPLE_SEED` | `8` |")
    assert stale != document
    assert docs.with_table(stale, docs.render_table()) == document


def test_check_mode_fails_on_a_stale_doc_and_writes_nothing(tmp_path, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text(f"# Configuration\n\n{docs.START}\n| old |\n{docs.END}\n")
    before = stale.read_text()
    assert docs.main(["--check", "--doc", str(stale)]) == 1
    assert stale.read_text() == before
    assert docs.main(["--doc", str(stale)]) == 0
    assert docs.main(["--check", "--doc", str(stale)]) == 0


def test_markers_are_required():
    with pytest.raises(ValueError, match="settings-table:start"):
        docs.with_table("no markers here", docs.render_table())
