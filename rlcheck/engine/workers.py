"""Training processes that notice when one of them dies.

``multiprocessing.Pool`` replaces a worker that dies but loses the task it held: its result
never comes, and whoever waits for it waits forever. Here each worker has a pipe of its own,
so the parent knows which job every process holds; when a process dies (the kernel's
out-of-memory killer, a segfault in a native library, a ``kill -9``) its job is trained
again in a fresh process, and a job that kills its process every time stops the caller
with :class:`WorkerDied` instead of hanging it.

Nothing here knows what a job is: a job is any picklable value, ``fn`` any importable function.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import signal
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from rlcheck.engine import trace


class WorkerDied(RuntimeError):
    """A job's process died each time the job was tried: the job cannot be finished."""


def _serve(conn: multiprocessing.connection.Connection) -> None:
    # Ctrl-C is the parent's to handle: it saves what finished and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        index, fn, job = message
        try:
            reply = (index, True, fn(job))
        except BaseException as exc:  # sent back and raised in the parent, as Pool does
            reply = (index, False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. an exception that cannot be pickled
            conn.send((index, False, RuntimeError(f"{type(reply[2]).__name__}: {reply[2]} ({exc})")))


@dataclass
class _Worker:
    process: BaseProcess
    conn: multiprocessing.connection.Connection
    job: tuple[int, Any] | None = None  # (index, job) while it trains one


def _oom_kills() -> int | None:
    """The kernel's count of out-of-memory kills in this cgroup, where it keeps one."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            for line in Path(path).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def _cause(exitcode: int | None, oom_before: int | None) -> str:
    oom_now = _oom_kills()
    if oom_before is not None and oom_now is not None and oom_now > oom_before:
        return "out of memory: killed by the kernel's OOM killer"
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class WorkerPool:
    """``size`` spawned processes that train jobs handed to :meth:`imap_unordered`.

    The processes stay up between calls (a study keeps them for all its rounds) until
    :meth:`stop`, which ends them at once, whatever they are doing."""

    def __init__(self, size: int) -> None:
        # "spawn": a forked child would inherit torch's thread pools mid-use and can deadlock.
        self._context = multiprocessing.get_context("spawn")
        self._workers = [self._start() for _ in range(size)]

    def _start(self) -> _Worker:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child_end,), daemon=True)
        process.start()
        trace.event("process started", child=process.pid)
        child_end.close()
        return _Worker(process, parent_end)

    @property
    def busy(self) -> dict[int, Any]:
        """The job each busy process holds, by its pid."""
        return {w.process.pid: w.job[1] for w in self._workers if w.job is not None and w.process.pid is not None}

    def imap_unordered(
        self,
        fn: Callable[[Any], Any],
        jobs: Sequence[Any],
        describe: Callable[[Any], str] = repr,
        on_retry: Callable[[str], None] | None = None,
    ) -> Iterator[Any]:
        """Yield ``fn(job)`` for every job as each finishes, in the order jobs are handed out
        (``jobs``' order) to free processes. An exception ``fn`` raises is raised here.

        A job whose process dies is trained again once, in a fresh process (``on_retry`` is
        told why); if that one dies too, :class:`WorkerDied` names the job and the cause."""
        waiting: deque[tuple[int, Any]] = deque(enumerate(jobs))
        died: set[int] = set()
        oom_before = _oom_kills()
        while waiting or any(w.job is not None for w in self._workers):
            for slot, worker in enumerate(self._workers):
                if worker.job is None and waiting:
                    if not worker.process.is_alive():  # died while idle: nothing of it is lost
                        worker.conn.close()
                        worker = self._workers[slot] = self._start()
                    self._hand(worker, fn, waiting.popleft())
            watched = [w for w in self._workers if w.job is not None]
            ready = multiprocessing.connection.wait([w.conn for w in watched] + [w.process.sentinel for w in watched])
            for slot, worker in enumerate(self._workers):
                if worker.job is None or (worker.conn not in ready and worker.process.sentinel not in ready):
                    continue
                index, job = worker.job
                if worker.conn.poll():
                    try:
                        _, ok, value = worker.conn.recv()
                    except (EOFError, OSError):
                        pass  # it died while sending: treated as a death below
                    else:
                        worker.job = None
                        if not ok:
                            raise value
                        yield value
                        continue
                worker.process.join()
                cause = _cause(worker.process.exitcode, oom_before)
                worker.conn.close()
                fresh = self._workers[slot] = self._start()
                if index in died:
                    raise WorkerDied(
                        f"a training process died twice while training {describe(job)} ({cause}); "
                        "if it ran out of memory, give it fewer seeds or workers (--workers 1)"
                    )
                died.add(index)
                if on_retry is not None:
                    on_retry(f"a training process died while training {describe(job)} ({cause}); training it again")
                self._hand(fresh, fn, (index, job))

    def _hand(self, worker: _Worker, fn: Callable[[Any], Any], item: tuple[int, Any]) -> None:
        worker.job = item
        # If it died while idle, its sentinel fires and the job is handed out again.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            worker.conn.send((item[0], fn, item[1]))

    def stop(self) -> None:
        """End every process now. Whatever they were training is abandoned."""
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self._workers:
            worker.process.join()
            worker.conn.close()
        self._workers = []
