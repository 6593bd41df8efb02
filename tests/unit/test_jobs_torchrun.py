"""Two ``torchrun`` ranks (gloo, CPU) write the same store, bit for bit, as one process, explanation and evaluation."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jobs_helpers import assert_stores_equal
from nn_interpretability.jobs import JobStore
from nn_interpretability.jobs.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")
CONFIG = """model: jobs_helpers:tiny_cnn
dataset: jobs_helpers:tiny_dataset
limit: 45
chunk_size: 4
methods:
  IG: {method: integrated-gradients, attribute: {n_steps: 8}}
  Saliency: saliency
  SG: {method: smoothgrad, init: {nt_samples: 3}}
"""


def torchrun(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1"}
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "nn_interpretability.jobs", *args, "--no-progress"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_two_gloo_ranks_equal_one_process(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text(CONFIG)
    one, two = tmp_path / "one.zarr", tmp_path / "two.zarr"
    assert main(["explain", "--config", str(config), "--store", str(one), "--no-progress"]) == 0
    assert main(["evaluate", "--store", str(one), "--steps", "5", "--no-progress"]) == 0
    torchrun("explain", "--config", str(config), "--store", str(two), "--evaluate", "--steps", "5")
    assert JobStore(two).n_chunks == 12 and JobStore(two).done().all() and JobStore(two).done("evaluation/done").all()
    assert_stores_equal(one, two)
