"""A job killed with SIGKILL partway through and started again with the same command equals an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs_helpers import assert_stores_equal
from nn_interpretability.jobs import JobStore
from nn_interpretability.jobs.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
CHUNKS = 50
CONFIG = f"""model: jobs_helpers:tiny_cnn
dataset: jobs_helpers:tiny_dataset
chunk_size: 2
methods:
  IG: {{method: integrated-gradients, attribute: {{n_steps: 300}}}}
  SG: {{method: smoothgrad, init: {{nt_samples: 20}}}}
"""


def test_a_killed_job_resumes_to_the_uninterrupted_store(tmp_path, monkeypatch):
    config = tmp_path / "job.yaml"
    config.write_text(CONFIG)
    killed, reference = tmp_path / "killed.zarr", tmp_path / "reference.zarr"
    command = [sys.executable, "-m", "nn_interpretability.jobs", "explain", "--config", str(config), "--store", str(killed), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    flags = killed / "done" / "c"
    deadline = time.monotonic() + 300
    while not (flags.is_dir() and len(list(flags.iterdir())) >= 3):
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the job wrote no chunk within 300 s"
        time.sleep(0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = JobStore(killed).done()
    assert 3 <= done.sum() < CHUNKS, f"killed too late: {int(done.sum())} of {CHUNKS} chunks done"

    computed = []
    write_chunk = JobStore.write_chunk
    monkeypatch.setattr(JobStore, "write_chunk", lambda self, chunk, values, flags="done": (computed.append(chunk), write_chunk(self, chunk, values, flags)))
    assert main(command[3:]) == 0  # the same command again
    assert sorted(computed) == [i for i in range(CHUNKS) if not done[i]]
    monkeypatch.setattr(JobStore, "write_chunk", write_chunk)
    assert main(["explain", "--config", str(config), "--store", str(reference), "--no-progress"]) == 0
    assert_stores_equal(killed, reference)
