"""Memory stays bounded: the peak RSS of a 5,000-digit MNIST job is about that of a 500-digit one (maps go to the store)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import resource, sys, tempfile
import nn_interpretability as nni
limit = int(sys.argv[1])
with tempfile.TemporaryDirectory() as folder:
    nni.jobs.explain_dataset("mnist_cnn", "mnist:all", {"Saliency": "saliency"}, f"{folder}/job.zarr",
                             limit=limit, device="cpu", show_progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_peak_memory_does_not_grow_with_the_dataset():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # Both jobs at once (separate processes: each peak is its own), the whole dataset loaded in both.
    jobs = [
        subprocess.Popen([sys.executable, "-W", "ignore", "-c", SCRIPT, str(n)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in (500, 5000)
    ]
    peaks = []
    for job in jobs:
        out, err = job.communicate(timeout=400)
        assert job.returncode == 0, err[-3000:]
        peaks.append(int(out.split()[-1]) * 1024)
    small, large = peaks
    maps_bytes = 5000 * 28 * 28 * 4  # what holding the 5,000 saliency maps in memory would add at least
    assert large <= 1.5 * small
    assert large - small < maps_bytes, f"peak RSS grew by {(large - small) / 2**20:.1f} MiB from 500 to 5,000 digits"
