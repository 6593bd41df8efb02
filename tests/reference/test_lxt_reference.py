"""Our LRP with CP-LRP's attention against LXT 2.1 on torchvision's VisionTransformer (float64).

LXT's patch map for ``torchvision.models.vision_transformer`` is CP-LRP inside the attention (queries
and keys detached) and AttnLRP outside (identity rule at GELU, LayerNorm with its standard deviation
detached), with the plain gradient — LRP-0, biases absorbing their share — at the linear layers. Our
equivalent is LRP-0 (``Epsilon(0)``, ``bias=True``) with ``attention="conservative"``. LXT runs in a
subprocess (``lxt_vit.py``): it patches ``torch.nn`` for the whole process. Skipped where LXT is not
installed (``make test`` installs it without its heavy optional requirements; see the Makefile).
"""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import Composite, Epsilon

pytest.importorskip("lxt.efficient")

CONFIG = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5)


def _vit():
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(**CONFIG).double()
    with torch.no_grad():
        model.heads.head.weight.normal_()  # torchvision initialises the head with zeros
        for name, parameter in model.named_parameters():  # non-zero biases, class token, position embeddings
            if name.endswith(("bias", "class_token", "pos_embedding")):
                parameter.normal_(0.0, 0.1)
    return model.eval()


def _lxt(model, x, target, tmp_path: Path) -> torch.Tensor:
    torch.save({"config": CONFIG, "state": model.state_dict()}, tmp_path / "model.pt")
    torch.save(x, tmp_path / "inputs.pt")
    script = Path(__file__).with_name("lxt_vit.py")
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "model.pt"), str(tmp_path / "inputs.pt"), str(target), str(tmp_path / "out.pt")],
        check=True,
        timeout=300,
    )
    return torch.load(tmp_path / "out.pt", weights_only=True)


def test_cp_lrp_equals_lxt_on_a_vision_transformer(tmp_path):
    model = _vit()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    theirs = _lxt(model, x, 3, tmp_path)
    ours = nni.LRP(model, composite=Composite(default=Epsilon(0.0), stabilizer=0.0, attention="conservative")).attribute(
        x, target=3
    )
    # LXT's identity rule divides by x + 1e-10 at every GELU; that is the only difference in the rules.
    assert float((ours - theirs).abs().max() / theirs.abs().max()) < 1e-6
    torch.testing.assert_close(ours.flatten(1).sum(1), theirs.flatten(1).sum(1), rtol=1e-6, atol=0)
