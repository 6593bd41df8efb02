"""Settings for the whole test run (tests/ and the notebooks that nbval executes).

``make test`` runs the suite on two pytest-xdist workers with ``--dist loadfile``: every cell of a
notebook is one test item, and the cells of one notebook must run in order in one kernel, so each file
goes to one worker whole. Each worker uses its share of the cores for torch's intra-op threads, so two
workers do not oversubscribe the machine.
"""
import os

import torch


def pytest_configure(config):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
