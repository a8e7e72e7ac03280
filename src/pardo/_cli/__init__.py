"""The ``pardo`` command: GNU-Parallel-style shell jobs on pardo's engine, and ``pardo demo``.

``main(argv)`` is the console script and ``python -m pardo``. ``pardo demo`` runs the numpy
grid-search demo; anything else is a command line for shell jobs (see docs/cli.md).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["demo"] and not any(word.startswith(":::") for word in args):
        from pardo._cli._demo import demo

        return demo(args[1:])
    from pardo._cli._args import UsageError, parse_args
    from pardo._cli._process import default_streams
    from pardo._cli._run import OTHER_ERROR, run

    try:
        options = parse_args(args)
        stdin, stdout, stderr = default_streams()
        sys.stdout.flush()
        return run(options, stdin, stdout, stderr)
    except (UsageError, OSError, ImportError) as exc:  # bad usage; unwritable log; no dask
        sys.stderr.write(f"pardo: {exc}\n")
        return OTHER_ERROR
    except SystemExit as exc:  # --help and --version print and stop
        return exc.code if isinstance(exc.code, int) else 0
