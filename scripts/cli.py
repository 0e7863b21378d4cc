"""What every command-line script does at its edge: exit codes, a closed pipe, Ctrl-C.

``python scripts/ask.py … --json | head`` closes the pipe before the script has written
everything; Python then raises BrokenPipeError at the next write, and once more when it flushes
stdout at exit, printing a traceback for what is the reader's normal choice. The Python
documentation's recipe (signal module, "Note on SIGPIPE") is applied here once, for every script:
point stdout at /dev/null so the final flush cannot fail, and exit quietly with the conventional
status. Ctrl-C ends a script with status 130 and one line, not a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

SIGPIPE_STATUS = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left
SIGINT_STATUS = 130  # 128 + SIGINT


def run(main: Callable[[], int | None]) -> NoReturn:
    """Run a script's ``main`` and exit with its status; a closed pipe or Ctrl-C ends it quietly."""
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(SIGPIPE_STATUS)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(SIGINT_STATUS)
    sys.exit(status)


def error(exc: BaseException, status: int = 1) -> int:
    """Report an expected failure as one ``error: …`` line on stderr, no traceback, and return
    the script's exit status for it: every script's ``main`` ends a known error this way."""
    print(f"error: {exc}", file=sys.stderr)
    return status
