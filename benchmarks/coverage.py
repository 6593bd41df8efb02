"""Which torchvision families each library's LRP and DeepLIFT explain, and whether they get them right.

On one random-weight model per family (``FAMILIES`` of ``nn_interpretability.models.torchvision_models``,
float64, eval, biases zeroed so that exact rules conserve exactly), for one image:

- ours: LRP-0 without biases with CP-LRP's attention (conservation: Σ R = f(x)) and DeepLift Rescale
  (summation-to-delta against the zero baseline);
- Zennit 0.5: its ``EpsilonPlusFlat`` composite with ``epsilon=0`` and the canonizers a user would pick
  (``ResNetCanonizer`` for ResNets, ``SequentialMergeBatchNorm`` otherwise); conservation of its
  relevance (Zennit passes operations it has no rule for with their gradient, so it rarely raises);
- Captum 0.9: ``LRP`` (default rules) and ``DeepLift``.

A cell is "ok" when the method runs and its property holds to 1e-6 relative, "off 3e-01" when it runs
but the property fails by that much, or the start of the error. Not part of the test suite.
Run with ``python benchmarks/coverage.py [--families NAME ...]``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import warnings

import torch
from captum import attr as captum_attr
from zennit import composites as zennit_composites
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.torchvision import ResNetCanonizer

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import Composite, Epsilon
from nn_interpretability.models.torchvision_models import FAMILIES, family_model

TOLERANCE = 1e-6


def _verdict(error: float) -> str:
    return "ok" if error <= TOLERANCE else f"off {error:.0e}"


def _ours_lrp(model, x, target, logit):
    composite = Composite(default=Epsilon(0.0, bias=False), stabilizer=0.0, attention="conservative")
    relevance = nni.LRP(model, composite=composite).attribute(x, target=target)
    return _verdict(float((relevance.sum() - logit).abs() / logit.abs()))


def _ours_deeplift(model, x, target, logit):
    _, delta = nni.DeepLift(model).attribute(x, target=target, return_convergence_delta=True)
    difference = logit - model(torch.zeros_like(x))[0, target]
    return _verdict(float(delta.abs().max() / difference.abs()))


def _zennit(family, model, x, target, logit):
    canonizers = [ResNetCanonizer()] if family in ("resnet", "resnext", "wide_resnet") else [SequentialMergeBatchNorm()]
    composite = zennit_composites.EpsilonPlusFlat(canonizers=canonizers, epsilon=1e-12, zero_params="bias")
    with Gradient(model=model, composite=composite) as attributor:
        seed = torch.eye(model(x).shape[1], dtype=x.dtype)[[target]] * logit  # relevance starts as the logit
        _, relevance = attributor(x.clone().requires_grad_(True), seed)
    return _verdict(float((relevance.sum() - logit).abs() / logit.abs()))


def _captum_lrp(model, x, target, logit):
    relevance = captum_attr.LRP(model).attribute(x.clone().requires_grad_(True), target=target)
    return _verdict(float((relevance.sum() - logit).abs() / logit.abs()))


def _captum_deeplift(model, x, target, logit):
    _, delta = captum_attr.DeepLift(model).attribute(
        x.clone().requires_grad_(True), target=target, return_convergence_delta=True
    )
    difference = logit - model(torch.zeros_like(x))[0, target]
    return _verdict(float(delta.abs().max() / difference.abs()))


def _cell(fn) -> str:
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return fn()
    except Exception as error:  # noqa: BLE001 -- the table reports whatever a library raises
        return f"{type(error).__name__}: {str(error).splitlines()[0][:60]}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=sorted(FAMILIES))
    args = parser.parse_args(argv)
    columns = ("ours LRP", "ours DeepLift", "Zennit EpsilonPlusFlat", "Captum LRP", "Captum DeepLift")
    print("| family | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    counts = dict.fromkeys(columns, 0)
    for family in args.families:
        cells = {}
        for column in columns:
            model, x = family_model(family, bias_free=True)  # a fresh model: the peers may leave hooks behind
            with torch.no_grad():
                output = model(x)
            target = int(output.argmax())
            logit = output[0, target]
            run = {
                "ours LRP": lambda: _ours_lrp(model, x, target, logit),
                "ours DeepLift": lambda: _ours_deeplift(model, x, target, logit),
                "Zennit EpsilonPlusFlat": lambda: _zennit(family, model, x, target, logit),
                "Captum LRP": lambda: _captum_lrp(model, x, target, logit),
                "Captum DeepLift": lambda: _captum_deeplift(model, x, target, logit),
            }[column]
            cells[column] = _cell(run)
            counts[column] += cells[column] == "ok"
        print(f"| {family} | " + " | ".join(cells[c] for c in columns) + " |", flush=True)
    print("| families right | " + " | ".join(f"{counts[c]} / {len(args.families)}" for c in columns) + " |")


if __name__ == "__main__":
    main()
