"""Who may read a file that holds personal data: its owner, and one group if configured.

Program exports (names, emails) and the suppression list are written 0600, or 0400 where they
are published read-only; with ``CX_PERSONAL_FILE_GROUP`` set, 0640 (0440) and owned by that
group, so a campaign tool's or an auditor's account can read them without being the pipeline's
user. Folders that hold such files get 0700 (0750). Never world-readable either way.
"""

from __future__ import annotations

import grp
import os
from pathlib import Path

GROUP_VARIABLE = "CX_PERSONAL_FILE_GROUP"


class PersonalFileError(PermissionError):
    """A personal-data file could not be given the configured group; names the variable."""


def file_mode(group: str | None, read_only: bool = False) -> int:
    owner = 0o400 if read_only else 0o600
    return owner | (0o040 if group else 0)


def folder_mode(group: str | None) -> int:
    return 0o700 | (0o050 if group else 0)


def protect(path: Path | str, group: str | None, *, read_only: bool = False) -> None:
    """Give ``path`` (a file or a folder) the personal-data mode, and ``group`` if set."""
    if group:
        try:
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        except KeyError:
            raise PersonalFileError(
                f"{GROUP_VARIABLE}={group!r}: no such group on this machine"
            ) from None
        except PermissionError:
            raise PersonalFileError(
                f"{GROUP_VARIABLE}={group!r}: this user may not give {path} that group "
                "(a user can only give files a group it belongs to)"
            ) from None
    mode = folder_mode(group) if Path(path).is_dir() else file_mode(group, read_only)
    os.chmod(path, mode)
