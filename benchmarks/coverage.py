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
Run with ``python benchmarks/coverage.py [--families NAME ...]``; ``--timm NAME ...`` runs the same columns on
random-weight timm models instead (``pip install timm``; :data:`TIMM_MODELS` with ``--timm`` alone), at
their default input size, with the same biases, class tokens and position embeddings zeroed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
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
#: A spread of timm's architectures: ViTs and their variants, hybrids, MLP mixers, mobile and classic CNNs.
TIMM_MODELS = (
    "vit_tiny_patch16_224 deit_tiny_patch16_224 beit_base_patch16_224 eva02_tiny_patch14_224 cait_xxs24_224 "
    "xcit_nano_12_p16_224 crossvit_tiny_240 swin_tiny_patch4_window7_224 twins_svt_small pvt_v2_b0 gcvit_xxtiny "
    "nest_tiny maxvit_nano_rw_256 coatnet_nano_rw_224 coat_lite_tiny levit_128s mobilevitv2_050 tiny_vit_5m_224 "
    "efficientformer_l1 fastvit_t8 edgenext_xx_small visformer_tiny poolformer_s12 convmixer_768_32 mixer_b16_224 "
    "resmlp_12_224 sequencer2d_s convnext_atto efficientnet_b0 mobilenetv3_small_050 ghostnet_050 lcnet_050 "
    "mnasnet_050 hardcorenas_a rexnet_100 regnetx_002 repvgg_a0 resnet18 res2net50_14w_8s resnest14d cspresnet50 "
    "dpn68 dla34 densenet121 inception_v3 hrnet_w18_small selecsls42b vovnet39a nfnet_l0"
).split()
#: Parameters zeroed so that relevance is conserved: biases (``q_bias``, ...), tokens and position embeddings
#: (``cls_token``, coat's ``cls_token4``, crossvit's ``pos_embed_0``, visformer's ``pos_embed1``), matched on the name's last part.
_TIMM_ZEROED = re.compile(r".*bias|.*_token.*|pos_embed.*")
#: Without biases and with a zero class token, CoaT's class token never sees the image (its query is zero and
#: CoaT's factorised attention is linear in it), so its logits are zero: pool the patch tokens instead.
_TIMM_OPTIONS = {"coat_lite_tiny": {"global_pool": "avg"}}


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


def _timm_model(name: str, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    """A random-weight timm model, float64, eval, with biases, tokens and position embeddings zeroed."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=10, **_TIMM_OPTIONS.get(name, {})).double()
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if _TIMM_ZEROED.fullmatch(parameter_name.rsplit(".", 1)[-1]):
                parameter.zero_()
            elif parameter.dim() > 1 and not parameter.any():  # heads initialised to zero
                parameter.normal_(0.0, 0.05)
    size = model.default_cfg.get("input_size", (3, 224, 224))
    generator = torch.Generator().manual_seed(seed)
    return model.eval(), torch.rand(1, *size, generator=generator, dtype=torch.float64)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=sorted(FAMILIES))
    parser.add_argument("--timm", nargs="*", default=None, help="timm models instead of the torchvision families")
    args = parser.parse_args(argv)
    if args.timm is not None:
        names, build = args.timm or list(TIMM_MODELS), _timm_model
    else:
        names, build = args.families, lambda family: family_model(family, bias_free=True)
    columns = ("ours LRP", "ours DeepLift", "Zennit EpsilonPlusFlat", "Captum LRP", "Captum DeepLift")
    print("| family | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    counts = dict.fromkeys(columns, 0)
    for family in names:
        cells = {}
        for column in columns:
            model, x = build(family)  # a fresh model: the peers may leave hooks behind
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
    print("| right | " + " | ".join(f"{counts[c]} / {len(names)}" for c in columns) + " |")


if __name__ == "__main__":
    main()
