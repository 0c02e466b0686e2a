"""Run one task per input file in worker processes, surviving a worker that dies.

dlib embeds on one core and the pipeline's models load once per process, so whole-folder jobs
(benchmarks, feature extraction) spread files over spawned workers, one model set and one thread each.
Results come back in input order whatever order workers finish in.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

from lookalike.detection.centerface import set_threads
from lookalike.errors import error_line

Progress = Callable[[int, int], None]


def run_tasks(
    tasks: list[tuple[Callable, tuple]],
    paths: list[Path],
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    on_failure: Callable[[int, str], Any],
) -> list[Any]:
    """``function(*args)`` for each task, about the file ``paths[i]``; in ``jobs`` processes when > 1.

    A task that raises in a worker, or whose worker dies twice, yields ``on_failure(i, message)`` with a
    one-line message naming its file; the other tasks go on. In-process (``jobs`` = 1) the functions are
    expected to handle their own errors. Functions must be importable (module-level) for the workers.
    """
    total = len(tasks)
    if jobs <= 1 or total <= 1:
        outcomes = []
        for done, (function, args) in enumerate(tasks, 1):
            outcomes.append(function(*args))
            if progress:
                progress(done, total)
        return outcomes
    results: list[Any] = [None] * total
    pending = set(range(total))

    def record(i: int, outcome: Any) -> None:
        results[i] = outcome
        pending.discard(i)
        if progress:
            progress(total - len(pending), total)

    try:
        with _pool(jobs) as pool:
            futures = {pool.submit(tasks[i][0], *tasks[i][1]): i for i in range(total)}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    raise
                except Exception as exc:  # noqa: BLE001 - e.g. the result could not be sent back; the run goes on
                    outcome = on_failure(i, error_line(paths[i], exc))
                record(i, outcome)
    except BrokenProcessPool:
        # A worker died (killed for memory, or a native crash) and took the pool down. The rest run one at a
        # time, so a file that kills its worker again is known, reported as failed, and the run goes on.
        pool = _pool(1)
        for i in sorted(pending):
            try:
                record(i, pool.submit(tasks[i][0], *tasks[i][1]).result())
            except BrokenProcessPool:
                record(i, on_failure(i, f"{paths[i]}: the process working on it crashed (out of memory?)"))
                pool.shutdown()
                pool = _pool(1)
        pool.shutdown()
    return results


def _pool(jobs: int) -> ProcessPoolExecutor:
    # spawn, not fork: forking a process that already runs torch or onnxruntime threads can deadlock
    return ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_init_worker)


def _init_worker() -> None:
    """One thread per worker: the workers already fill the cores, more threads only contend."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    set_threads(1)
    os.environ.setdefault("GLOG_minloglevel", "2")


def default_jobs() -> int:
    """One worker per CPU core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
