"""``python -m ml train`` and ``python -m ml score``: what humans, Make and the DAGs call."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the stage's own ``main()``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "train": "ml.train",
        "score": "ml.score",
        "monitor": "ml.monitor",
        "features": "ml.features",
    }
    if not argv or argv[0] not in commands:
        print("usage: python -m ml {train|score|monitor|features} [options]", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(commands[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
