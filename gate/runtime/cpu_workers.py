"""Independent forward passes run two at a time on a CPU, each on half the cores.

One forward pass of a small model on all of a CPU's cores leaves cores idle
between its matrix products: elementwise operations, attention over a few
hundred tokens and the Python between them run on one core or wait for the
slowest. Two passes at once, each with half the intra-op threads, fill those
gaps: the demo model answers BBQ 1.08-1.10 times as fast on the 2-core AVX2
machine, where one pass already runs its matrix products at about the cores'
peak (`python -m benchmarks --only workers`). Torch releases the GIL inside its
operations, so Python threads suffice. Perplexity's windows, batched into
passes of thousands of tokens, gain 2% and are left alone.

Each pass's arithmetic depends only on its own inputs and the threads it
runs on (a matrix product's summation order follows the thread count), so a
result is the same whichever worker computes it, and the same in every run on
the same machine.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

import torch

WORKERS = 2

T = TypeVar("T")
R = TypeVar("R")


def threads_per_worker(device_type: str) -> int | None:
    """Intra-op threads for each of `WORKERS` concurrent passes, or None where passes should run one at a time:
    an accelerator runs one pass on all of itself, and a thread count that does not split evenly (one core,
    or `--threads 3`) would leave a core idle that one pass on all of them uses."""
    threads = torch.get_num_threads()
    if device_type != "cpu" or threads < WORKERS or threads % WORKERS:
        return None
    return threads // WORKERS


@contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    """Torch's intra-op thread count (process-wide) set to `threads` for the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def map_in_order(work: Callable[[T], R], jobs: Iterable[T], threads: int) -> Iterator[R]:
    """`work(job)` for each job, `WORKERS` at a time with `threads` intra-op threads each, yielded in job order.

    At most two jobs per worker are in flight, so results stream out as they
    finish (progress bars move) and memory stays that of a few jobs. An
    exception in a job is raised here, at its place in the order; the jobs not
    yet started are cancelled."""
    with intra_op_threads(threads), ThreadPoolExecutor(WORKERS, thread_name_prefix="gate-forward") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for job in jobs:
                pending.append(pool.submit(work, job))
                if len(pending) >= 2 * WORKERS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
