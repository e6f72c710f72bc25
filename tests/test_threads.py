"""The thread default of the ``ganad`` command follows the affinity mask and torchrun's process count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ganad import threads


def test_explicit_omp_num_threads_wins():
    assert threads.default_threads({"OMP_NUM_THREADS": "3", "LOCAL_WORLD_SIZE": "2"}) == 3


def test_cores_are_shared_among_the_processes_of_a_node():
    cores = threads.allowed_cores()
    assert threads.default_threads({}) == cores
    assert threads.default_threads({"LOCAL_WORLD_SIZE": str(2 * cores)}) == 1  # never 0
    if cores >= 2:
        assert threads.default_threads({"LOCAL_WORLD_SIZE": "2"}) == cores // 2


def test_a_bad_omp_num_threads_is_a_clear_error():
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        threads.default_threads({"OMP_NUM_THREADS": "many"})


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_a_process_pinned_to_one_core_configures_one_intra_and_one_interop_thread():
    code = "import torch; from ganad import threads; threads.configure(); print(torch.get_num_threads(), torch.get_num_interop_threads())"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE")}
    first = sorted(os.sched_getaffinity(0))[0]
    out = subprocess.run(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{first}}}); {code}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out == ["1", "1"]


def test_main_called_in_process_leaves_the_callers_thread_settings_alone(tmp_path):
    """Only the console entry sizes the pools: an in-process ``main`` (tests, notebooks)
    that reset them changed the numerics of every later fit in the same process."""
    import torch

    from ganad import cli

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main(["fit", "kde", "--data", "digits", "--normal", "0", "--quiet", "--out", str(tmp_path / "run")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
