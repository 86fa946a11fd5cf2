"""``python -I -S bench/launcher.py RESULT_FILE COMMAND...``: run COMMAND and measure it from a small process.

Why a launcher: on Linux a child's ``ru_maxrss`` is at least the resident size of the process it was
forked from (``exec`` keeps the old address space's high-water mark), so measured straight from the
benchmark (tens of MB of Python and Rich) a small program would look as big as the benchmark. Started
with ``-I -S`` this launcher is a few MB; it forks COMMAND, times it with ``time.perf_counter`` from just
before the fork to the ``os.wait4`` that reaps it, and writes ``<exit code> <wall s> <ru_maxrss KiB>`` to
RESULT_FILE. It exits with COMMAND's exit code, and forwards SIGTERM and SIGINT to it.

Standard library only, and nothing imported from ``bench``: ``-I -S`` leaves no package path.
"""

from __future__ import annotations

import os
import signal
import sys
import time

EXEC_FAILED = 127


def _forward(child: int) -> None:
    def handler(signum: int, _frame: object) -> None:
        os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def main(result_file: str, command: list[str]) -> int:
    """Run ``command``, write its measurement to ``result_file``; returns its exit code."""
    started = time.perf_counter()
    child = os.fork()
    if child == 0:
        try:
            os.execvp(command[0], command)  # noqa: S606 - the command is the benchmark's own, never a shell
        finally:
            os._exit(EXEC_FAILED)
    _forward(child)
    _, status, usage = os.wait4(child, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(result_file, "w", encoding="ascii") as result:
        result.write(f"{code} {wall:.6f} {usage.ru_maxrss}\n")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
