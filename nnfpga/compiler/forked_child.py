"""Run an independent part of a compile in a forked child process, beside this one.

Once the RTL description is built, the printers and the estimator share no state: each
reads the description and writes its own files (the estimator returns a small result).
They are pure Python, so on a machine with two or more cores the Verilog printer and the
estimator run in a child process while this one prints VHDL and writes the HLS C++ and
the integration files (``benchmarks/compiler_speed.py`` times the 10k-parameter model
with and without it: ``NNFPGA_JOBS=1``).

A child is forked only where that is safe and useful: POSIX ``fork``, more than one CPU,
and no other thread in this process.  Forking a threaded process can leave the child
waiting forever on a lock that another thread held.  Otherwise, or with
``NNFPGA_JOBS=1`` in the environment, the work runs at once in this process.  The files
written are the same either way.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import threading
from typing import Any, Callable

#: The environment variable that limits the processes of one compile (1: no child).
JOBS_ENV = "NNFPGA_JOBS"


def usable_cpus() -> int:
    """CPUs this process may run on (a container or ``taskset`` can allow fewer than the
    machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def can_fork() -> bool:
    if not hasattr(os, "fork") or usable_cpus() < 2 or threading.active_count() > 1:
        return False
    try:
        return int(os.environ.get(JOBS_ENV, "2")) > 1
    except ValueError:
        return True


class Beside:
    """A task started by `run_beside`: `wait` for its end (its result, or the exception
    it raised), or `cancel` it."""

    def __init__(self, what: str, pid: int | None = None, fd: int | None = None, result: Any = None) -> None:
        self.what, self._pid, self._fd, self._result = what, pid, fd, result

    def wait(self) -> Any:
        """Block until the task has ended; return its result or raise its exception."""
        if self._pid is None:
            return self._result
        # the file owns the descriptor from here: a signal that interrupts the read closes
        # it on the way out, and `cancel` must not close it a second time
        fd, self._fd = self._fd, None
        with os.fdopen(fd, "rb") as f:
            payload = f.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if payload:
            ok, value = pickle.loads(payload)
            if not ok:
                raise value
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                self._result = value
                return value
        raise RuntimeError(f"the process computing the {self.what} ended abnormally "
                           f"(status {status}); run with {JOBS_ENV}=1 to do it in this process")

    def cancel(self) -> None:
        """Stop the task if it still runs (after this process failed: its output is
        thrown away)."""
        if self._pid is None:
            return
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self._pid, 0)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._pid = None


def _die_with(parent: int) -> None:
    """End this child when ``parent`` is killed: it must not go on writing into the work
    folder that the next compile removes as stale (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # killed before the request took effect
        os._exit(1)


def run_beside(task: Callable[[], Any], what: str) -> Beside:
    """Start ``task`` in a child process when `can_fork`, else run it now.  ``what``
    names the task in an error message ("Verilog and the estimate").  The task's result
    comes back pickled: keep it small."""
    if not can_fork():
        return Beside(what, result=task())
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: run the task, report how it ended, never return
        code = 1
        try:
            _die_with(parent)
            os.close(read_fd)
            try:
                payload, code = pickle.dumps((True, task())), 0
            except BaseException as e:  # noqa: BLE001 -- every ending goes to the parent
                try:
                    payload = pickle.dumps((False, e))
                except Exception:  # noqa: BLE001 -- an exception that cannot be pickled
                    payload = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
            with os.fdopen(write_fd, "wb") as f:
                f.write(payload)
        finally:
            os._exit(code)  # no atexit handlers, no flush of buffers the parent owns
    os.close(write_fd)
    return Beside(what, pid, read_fd)
