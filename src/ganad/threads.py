"""How many CPU threads torch uses: a default from the cores this process may run on.

torch's intra-op pool already follows the process's CPU affinity, but its
inter-op pool is sized from every core of the machine, and several processes
on one node (two benchmark lanes pinned with ``taskset``, or ``ganad fit
--nproc N``) each take all the cores they are allowed.  The ``ganad`` command
calls :func:`configure` once at start:

* intra-op threads = ``OMP_NUM_THREADS`` when it is set, else the cores in the
  affinity mask divided by the processes torchrun started on this node
  (``LOCAL_WORLD_SIZE``), at least 1;
* inter-op threads = the same number (they only run independent ops side by side,
  which these models rarely have; more than the intra-op pool only oversubscribes).

A library caller keeps torch's own defaults unless it calls :func:`configure`.
"""

from __future__ import annotations

import os


def allowed_cores() -> int:
    """Cores this process may run on (its affinity mask), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads(env: dict[str, str] | None = None) -> int:
    """The intra-op thread count :func:`configure` applies (see the module docstring)."""
    env = os.environ if env is None else env
    explicit = env.get("OMP_NUM_THREADS", "").strip()
    if explicit:
        try:
            return max(1, int(explicit))
        except ValueError:
            raise ValueError(f"OMP_NUM_THREADS must be a whole number; got {explicit!r}") from None
    try:
        procs = max(1, int(env.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        procs = 1
    return max(1, allowed_cores() // procs)


def configure(env: dict[str, str] | None = None) -> int:
    """Set torch's intra- and inter-op thread counts to :func:`default_threads`; return it.

    The inter-op count can only be set before torch runs parallel work; a later
    call leaves it as it is."""
    import torch

    n = default_threads(env)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already started (set once per process)
        pass
    return n
