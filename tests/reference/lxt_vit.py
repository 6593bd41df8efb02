"""LXT 2.1's relevance for torchvision's VisionTransformer, run as its own process by test_lxt_reference.py.

LXT patches ``torch.nn`` classes for the whole process (``lxt.efficient.monkey_patch``), so it must not
run inside the test session. Usage: ``python lxt_vit.py MODEL.pt INPUTS.pt TARGET OUT.pt``: the model is
a pickled ``state_dict`` with its constructor arguments, the result is ``x * x.grad`` (LXT's
Gradient × Input form of LRP) for the summed target logits.
"""
import sys

import torch
import torchvision
from lxt.efficient import monkey_patch
from torchvision.models import vision_transformer

monkey_patch(vision_transformer, verbose=False)  # LXT's map for this module: CP-LRP in attention, AttnLRP outside
model_path, inputs_path, target, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
saved = torch.load(model_path, weights_only=True)
model = torchvision.models.VisionTransformer(**saved["config"]).double()
model.load_state_dict(saved["state"])
model.eval()
x = torch.load(inputs_path, weights_only=True).requires_grad_(True)
model(x)[:, target].sum().backward()
torch.save((x * x.grad).detach(), out_path)
