"""Settings for the whole test run (tests/ and the notebooks that nbval executes).

``make test`` runs the suite on two pytest-xdist workers with ``--dist loadfile``: every cell of a
notebook is one test item, and the cells of one notebook must run in order in one kernel, so each file
goes to one worker whole. Each worker uses its share of the cores for torch's intra-op threads, so two
workers do not oversubscribe the machine, and nbval waits longer for a busy kernel's outputs.
"""
import os

import pytest
import torch

#: Seconds nbval waits for each output message of a cell after the kernel has answered (nbval's own is 5):
#: with two workers busy beside a kernel, a figure's output can take longer to arrive on a loaded machine.
OUTPUT_TIMEOUT = 120


def pytest_configure(config):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if type(item).__name__ == "IPyNbCell":  # nbval sets the attribute per cell, with no option for it
            item.output_timeout = OUTPUT_TIMEOUT
