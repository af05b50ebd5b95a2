"""Run a pipeline command in a child process that stops at a chosen point of a write, so that
the test can SIGKILL it exactly there.

    python kill_points.py --fd N (--after-sql RE | --after-duckdb RE | --after-call MOD:FUNC[:K])
        -- <module> [args...]

installs one hook, then runs ``python -m <module> args...``. When the hook fires, the child
writes one byte to file descriptor ``N`` (a pipe the parent reads, so the parent waits on an
event, not on a clock) and blocks forever; the parent then kills it with SIGKILL, which no
handler, ``finally`` or ``atexit`` sees.

- ``--after-sql RE``: after dbt (dbt-duckdb) ran a statement matching ``RE``, inside the
  model's open transaction.
- ``--after-duckdb RE``: after a ``duckdb.connect()`` connection ran a statement matching ``RE``
  (the publishing copy, which talks to DuckDB directly).
- ``--after-call MOD:FUNC[:K]``: after the ``K``-th call (default 1) of ``MOD.FUNC`` returned
  (``FUNC`` may be ``Class.method``).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import re
import runpy
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path


def run_until_killed(
    hook: list[str], command: list[str], env: dict[str, str], log: Path, timeout: float = 600
) -> None:
    """Parent side: start ``python -m <command>`` with ``hook`` (e.g. ``["--after-sql", RE]``),
    wait for the child to reach the point, SIGKILL it there. Fails if the child never gets there
    (its output is in the message). ``timeout`` only bounds a hang; nothing waits on a clock."""
    from config.settings import REPO_ROOT

    read, write = os.pipe()
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--fd", str(write), *hook, "--", *command],
            pass_fds=(write,),
            env={**env, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], timeout)
        reached = os.read(read, 1) == b"!" if ready else False
    finally:
        os.close(read)
    if not reached:
        child.kill()
        child.wait()
        output = log.read_text(errors="replace")[-4000:]
        raise AssertionError(
            f"`{' '.join(command)}` never reached {hook} (exit {child.returncode}):\n{output}"
        )
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL


def _stop(fd: int) -> None:
    os.write(fd, b"!")
    threading.Event().wait()  # until the parent's SIGKILL


def hook_dbt_sql(pattern: re.Pattern, fd: int) -> None:
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    original = DuckDBConnectionManager.add_query

    @functools.wraps(original)
    def add_query(self, sql, *args, **kwargs):
        result = original(self, sql, *args, **kwargs)
        if pattern.search(sql):
            _stop(fd)
        return result

    DuckDBConnectionManager.add_query = add_query


class _Connection:
    """A DuckDB connection that stops after a matching statement; the rest passes through."""

    def __init__(self, real, pattern: re.Pattern, fd: int):
        self._real, self._pattern, self._fd = real, pattern, fd

    def __enter__(self):
        self._real.__enter__()
        return self

    def __exit__(self, *exc):
        return self._real.__exit__(*exc)

    def execute(self, sql, *args, **kwargs):
        result = self._real.execute(sql, *args, **kwargs)
        if self._pattern.search(sql):
            _stop(self._fd)
        return result

    def __getattr__(self, name):
        return getattr(self._real, name)


def hook_duckdb_sql(pattern: re.Pattern, fd: int) -> None:
    import duckdb

    connect = duckdb.connect

    @functools.wraps(connect)
    def hooked(*args, **kwargs):
        return _Connection(connect(*args, **kwargs), pattern, fd)

    duckdb.connect = hooked


def hook_call(target: str, fd: int) -> None:
    module_name, name, *rest = target.split(":")
    stop_at = int(rest[0]) if rest else 1
    owner = importlib.import_module(module_name)
    *path, function_name = name.split(".")  # a function, or a class's method
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, function_name)
    calls = 0

    @functools.wraps(original)
    def hooked(*args, **kwargs):
        nonlocal calls
        result = original(*args, **kwargs)
        calls += 1
        if calls == stop_at:
            _stop(fd)
        return result

    setattr(owner, function_name, hooked)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    hooks = parser.add_mutually_exclusive_group(required=True)
    hooks.add_argument("--after-sql")
    hooks.add_argument("--after-duckdb")
    hooks.add_argument("--after-call")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.after_sql:
        hook_dbt_sql(re.compile(args.after_sql), args.fd)
    elif args.after_duckdb:
        hook_duckdb_sql(re.compile(args.after_duckdb), args.fd)
    else:
        hook_call(args.after_call, args.fd)
    module, *module_args = command
    sys.argv = [module, *module_args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
