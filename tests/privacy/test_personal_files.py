"""Files that hold personal data are their owner's alone, or also one configured group's:
``CX_PERSONAL_FILE_GROUP``, its check, and the suppression list's modes."""

from __future__ import annotations

import grp
import os
import stat

import pytest
from privacy_fixtures import HASH_KEY

from config import load_settings
from config.settings import ENV_VARS, SettingsError
from privacy import personal_files, suppression


def own_group() -> str:
    """The current user's primary group: one it may give its files, as root or not."""
    return grp.getgrgid(os.getgid()).gr_name


def another_group() -> str:
    """A group other than the primary one that this user may give its files, or skip."""
    if os.geteuid() == 0:
        candidates = [g.gr_gid for g in grp.getgrall()]
    else:
        candidates = os.getgroups()
    for gid in candidates:
        if gid != os.getgid():
            return grp.getgrgid(gid).gr_name
    pytest.skip("this user belongs to no group but its primary one")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _settings(tmp_path, **env: str):
    return load_settings({"CX_DATA_DIR": str(tmp_path / "data"), "CX_HASH_KEY": HASH_KEY, **env})


def test_the_setting_is_a_group_of_this_machine_and_documented(tmp_path):
    assert _settings(tmp_path).personal_file_group is None
    group = own_group()
    assert _settings(tmp_path, CX_PERSONAL_FILE_GROUP=group).personal_file_group == group
    with pytest.raises(SettingsError, match="CX_PERSONAL_FILE_GROUP='cx-no-such-group'"):
        _settings(tmp_path, CX_PERSONAL_FILE_GROUP="cx-no-such-group")
    assert "CX_PERSONAL_FILE_GROUP" in ENV_VARS


def test_the_suppression_list_is_the_owners_alone_by_default(tmp_path):
    settings = _settings(tmp_path)
    suppression.record(settings, {"member": ["M1"]}, members=1)
    assert _mode(settings.suppression_list) == 0o600


def test_the_suppression_list_is_also_the_groups_when_one_is_set(tmp_path):
    settings = _settings(tmp_path, CX_PERSONAL_FILE_GROUP=own_group())
    suppression.record(settings, {"member": ["M1"]}, members=1)
    assert _mode(settings.suppression_list) == 0o640
    assert os.stat(settings.suppression_list).st_gid == os.getgid()


def test_the_suppression_list_is_given_the_group(tmp_path):
    """A group other than the one its files get anyway: the file is really given it."""
    group = another_group()
    settings = _settings(tmp_path, CX_PERSONAL_FILE_GROUP=group)
    suppression.record(settings, {"member": ["M1"]}, members=1)
    assert _mode(settings.suppression_list) == 0o640
    assert os.stat(settings.suppression_list).st_gid == grp.getgrnam(group).gr_gid


def test_a_group_that_went_missing_fails_naming_the_setting(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("member_id\n")
    with pytest.raises(personal_files.PersonalFileError, match="CX_PERSONAL_FILE_GROUP"):
        personal_files.protect(path, "cx-no-such-group")


@pytest.mark.parametrize(
    ("group", "read_only", "file_mode", "folder_mode"),
    [(None, False, 0o600, 0o700), (None, True, 0o400, 0o700), ("g", True, 0o440, 0o750)],
)
def test_modes(group, read_only, file_mode, folder_mode):
    assert personal_files.file_mode(group, read_only) == file_mode
    assert personal_files.folder_mode(group) == folder_mode
