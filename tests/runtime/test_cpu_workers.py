"""Two forward passes at a time on a CPU (gate/runtime/cpu_workers.py): order, threads, errors, and the same results."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from gate.measurements.bias.bbq import load_bbq_source
from gate.measurements.bias.order import asking_order
from gate.measurements.bias.prompts import letter_tokens, option_orders, prompt_format, prompt_opening, render_prompt
from gate.runtime import cpu_workers
from gate.runtime.torch_backend import load_torch_model


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_results_come_in_job_order_whatever_order_the_jobs_finish_in(two_threads):
    def work(job: int) -> tuple[int, str]:
        time.sleep(0.02 * (job % 3))  # later jobs often finish first
        return job, threading.current_thread().name

    results = list(cpu_workers.map_in_order(work, range(12), threads=1))
    assert [job for job, _ in results] == list(range(12))
    assert {name.split("_")[0] for _, name in results} == {"gate-forward"}  # ran on the pool, not the caller


def test_each_job_runs_on_the_threads_given_and_the_count_is_restored_after(two_threads):
    seen = list(cpu_workers.map_in_order(lambda _: torch.get_num_threads(), range(4), threads=1))
    assert seen == [1, 1, 1, 1]
    assert torch.get_num_threads() == 2


def test_a_failing_job_raises_at_its_place_and_the_rest_are_not_started(two_threads):
    started: list[int] = []

    def work(job: int) -> int:
        started.append(job)
        if job == 1:
            raise ValueError("job 1 broke")
        return job

    results = cpu_workers.map_in_order(work, range(100), threads=1)
    assert next(results) == 0
    with pytest.raises(ValueError, match="job 1 broke"):
        next(results)
    assert len(started) < 10  # at most a few in flight, never the whole queue
    assert torch.get_num_threads() == 2


def test_passes_run_one_at_a_time_on_an_accelerator_or_threads_that_do_not_split_evenly(two_threads):
    assert cpu_workers.threads_per_worker("cpu") == 1
    assert cpu_workers.threads_per_worker("cuda") is None
    for threads, expected in ((1, None), (3, None), (4, 2)):
        torch.set_num_threads(threads)
        assert cpu_workers.threads_per_worker("cpu") == expected


def test_trees_scored_two_at_a_time_equal_each_tree_scored_alone_on_the_same_threads(tiny_model_dir, two_threads):
    handle = load_torch_model(tiny_model_dir, device="cpu", dtype="float32")
    try:
        fmt, letters = prompt_format(handle.tokenizer), letter_tokens(handle.tokenizer)
        head = len(prompt_opening(handle.tokenizer, fmt))
        trees = [([render_prompt(handle.tokenizer, item, order, fmt) for item in family
                   for order in option_orders(True)], head)
                 for family in asking_order(load_bbq_source(None).items[:400])[:6]]
        together = list(handle.tree_logprobs_each(trees, letters.flat))
        with cpu_workers.intra_op_threads(1):
            alone = [handle.tree_logprobs(prompts, letters.flat, head) for prompts, head in trees]
    finally:
        handle.close()
    assert len(together) == len(trees)
    for mine, reference in zip(together, alone):
        np.testing.assert_array_equal(mine, reference)  # bit for bit: the worker does not matter
