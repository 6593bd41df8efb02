"""How to build every registered method on every contract architecture, and what each call needs.

``RECIPES`` maps a registry name (``nni.available_methods()``) to a :class:`Recipe`; a few extra keys
are *variants* of a registered name (``"smoothgrad(integrated-gradients)"``: SmoothGrad around a
method that takes baselines), built through the registry as well. An architecture a method does not
apply to is listed in ``Recipe.not_applicable`` with the reason and, where the method can be asked,
the refusal it must give (``tests/contract/test_contract.py`` checks it), never left out silently.

``ARCHITECTURES`` are the models the contract is checked on, all seeded and in float64 unless asked
otherwise; models and reference maps are cached per session (``model``, ``inputs``), since torchvision's
ResNet-18 is the slowest part of the suite.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.models import GAPCNN
from toy_models import ARCHITECTURES as TOY_ARCHITECTURES
from toy_models import mnist_like_batch, seeded

#: Side of the ResNet-18 inputs (3 × RESNET_SIZE × RESNET_SIZE): 16 gives 2 × 2 maps after layer2 and
#: 1 × 1 after layer3/layer4; 32 would make ResNet-18 alone take minutes of the suite on two cores.
RESNET_SIZE = 16
#: Side of the vision transformer's inputs (3 × VIT_SIZE × VIT_SIZE).
VIT_SIZE = 16


# --------------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """A seeded model family and the inputs it takes.

    Attributes
    ----------
    build : callable(seed, dtype) -> nn.Module
        The model in eval mode.
    inputs : callable(n, seed, dtype) -> Tensor
        A batch of ``n`` inputs in [0, 1].
    middle : str
        A layer in the middle of the forward pass, for the test's own hooks (a user's hook, a forward
        that raises partway).
    last : str
        A layer whose output nothing modifies in place, for a user's full backward hook.
    """

    build: Callable[[int, torch.dtype], nn.Module]
    inputs: Callable[[int, int, torch.dtype], torch.Tensor]
    middle: str
    last: str


def _dense() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10))


def _resnet18() -> nn.Module:
    import torchvision

    return torchvision.models.resnet18(weights=None, num_classes=10)


def _vit() -> nn.Module:
    """torchvision's VisionTransformer, tiny: 16 x 16 images, four 8 x 8 patches and a class token, one block."""
    import torchvision

    model = torchvision.models.VisionTransformer(
        image_size=VIT_SIZE, patch_size=8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16, num_classes=10
    )
    nn.init.normal_(model.heads.head.weight)  # torchvision initialises the head with zeros: every map would be 0
    return model


def _rand(*shape):
    def inputs(n: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
        return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)

    return inputs


def _mnist(n: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    return mnist_like_batch(n, seed=seed, dtype=dtype)


def _toy(name: str):
    return lambda seed, dtype: TOY_ARCHITECTURES[name](seed).to(dtype)


ARCHITECTURES: dict[str, Architecture] = {
    # 2-D inputs (N, 12): no spatial dimensions at all.
    "dense": Architecture(lambda seed, dtype: seeded(_dense, seed, dtype), _rand(12), middle="1", last="3"),
    "mnist_cnn": Architecture(_toy("mnist_cnn"), _mnist, middle="features.2", last="classifier.3"),
    "residual_bn": Architecture(_toy("residual_bn"), _mnist, middle="conv", last="fc"),
    "nested_functional": Architecture(_toy("nested_functional"), _mnist, middle="blocks.1", last="head.fc2"),
    # Conv -> global average pooling -> one linear layer: the network CAM is defined for.
    "gap_cnn": Architecture(
        lambda seed, dtype: seeded(lambda: GAPCNN(map_size=3), seed, dtype), _mnist, middle="features.3", last="fc"
    ),
    "resnet18": Architecture(
        lambda seed, dtype: seeded(_resnet18, seed, dtype), _rand(3, RESNET_SIZE, RESNET_SIZE), middle="layer1", last="fc"
    ),
    # Attention (nn.MultiheadAttention), LayerNorm, GELU, a class token and position embeddings.
    "vit": Architecture(
        lambda seed, dtype: seeded(_vit, seed, dtype),
        _rand(3, VIT_SIZE, VIT_SIZE),
        middle="encoder.layers.encoder_layer_0",
        last="heads.head",
    ),
}

#: Layer explained by the CAM family, per architecture (Grad-CAM: any layer with feature maps).
GRAD_CAM_LAYER = {
    "mnist_cnn": "features.5",
    "residual_bn": "conv",
    "nested_functional": "blocks.1.conv",
    "gap_cnn": "features.10",
    "resnet18": "layer2",
    "vit": "encoder.layers.encoder_layer_0.ln_1",  # tokens (N, 1 + 2 x 2, 8): the patch grid is found
}
#: CAM's (feature layer, linear layer after the global average pooling).
CAM_LAYERS = {"gap_cnn": ("features.10", "fc"), "resnet18": ("layer4", "fc")}

_IMAGE_SIDE = {"resnet18": RESNET_SIZE, "vit": VIT_SIZE}


def _side(arch: str) -> int:
    return _IMAGE_SIDE.get(arch, 28)


def _channels(arch: str) -> int:
    return 3 if arch in ("resnet18", "vit") else 1


# --------------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotApplicable:
    """Why a method does not apply to an architecture, and how it refuses when asked anyway.

    ``attempt(model, x)`` builds the method as a user would and calls it; it must raise ``error``
    with a message matching ``match``. ``attempt=None`` where there is nothing sensible to try.
    """

    reason: str
    attempt: Callable[[nn.Module, torch.Tensor], object] | None = None
    error: type[Exception] = ValueError
    match: str = ""


@dataclass(frozen=True)
class Recipe:
    """How the contract suite builds and calls one method.

    Attributes
    ----------
    construct : callable(arch) -> dict
        Keyword arguments of ``nni.get_method(registry_name, model, **kwargs)`` on architecture ``arch``.
    per_call : callable(arch) -> dict
        Keyword arguments every ``attribute`` call needs or should use to stay fast.
    not_applicable : dict
        ``{arch: NotApplicable(reason, ...)}``.
    registry_name : str, optional
        For a variant key, the registered name it is built from.
    xfail : dict
        ``{(test name, arch): reason}`` for known package bugs (strict xfails).
    """

    construct: Callable[[str], dict] = lambda arch: {}
    per_call: Callable[[str], dict] = lambda arch: {}
    not_applicable: dict[str, NotApplicable] = field(default_factory=dict)
    registry_name: str | None = None
    xfail: dict[tuple[str, str], str] = field(default_factory=dict)


def _occlusion_window(arch: str) -> dict:
    if arch == "dense":
        return {"sliding_window_shapes": (4,), "strides": 4}
    half = _side(arch) // 2
    return {"sliding_window_shapes": (_channels(arch), half, half), "strides": half}


def _lime_settings(arch: str) -> dict:
    return {"segmentation": "grid", "cell_size": _side(arch) // 4, "n_samples": 20}


def _coarse_features(arch: str) -> torch.Tensor:
    """Four feature groups per sample (quarters of the image, or of the dense net's 12 inputs)."""
    if arch == "dense":
        return torch.arange(12) // 3
    side = _side(arch)
    quarter = torch.arange(side) // (side // 2)
    return (quarter[:, None] * 2 + quarter[None, :]).view(1, 1, side, side)


_NO_FEATURE_MAPS = NotApplicable(
    "the dense net has no layer with spatial feature maps (and its inputs are (N, 12)): the CAM family explains (N, K, h, w) activations",
    attempt=lambda model, x: nni.GradCAM(model, "1").attribute(x),
    match="at least 3 dimensions",
)


def _cam_refusal(feature: str, fc: str) -> Callable:
    return lambda model, x: nni.CAM(model, feature, fc).attribute(x)


_CAM_NEEDS_GAP = "CAM needs a GAP network (conv feature maps -> global average pooling -> one linear layer); "

def _layer_sum(value: torch.Tensor) -> torch.Tensor:
    """A neuron selector for the layer of any architecture: the sum of every other value of each sample.

    Many, so that not all are dead; half of each token's features, whose sum a following LayerNorm does
    not ignore (the ViT's head reads the class token alone).
    """
    return value.flatten(1)[:, ::2].sum(1)


def _middle(arch: str) -> dict:
    return {"layer": ARCHITECTURES[arch].middle}


RECIPES: dict[str, Recipe] = {
    "saliency": Recipe(),
    "input-x-gradient": Recipe(),
    # Built with a root point: the registry default (None, the limit εx -> 0) is input × gradient,
    # which input-x-gradient covers; with baselines=0.0 the per-call default is the number 0.0.
    "simple-taylor": Recipe(construct=lambda arch: {"baselines": 0.0}),
    "guided-backprop": Recipe(),
    "deconvolution": Recipe(),
    "integrated-gradients": Recipe(per_call=lambda arch: {"n_steps": 4}),
    "layer-activation": Recipe(construct=_middle),
    "layer-gradient-x-activation": Recipe(construct=_middle),
    "layer-integrated-gradients": Recipe(construct=_middle, per_call=lambda arch: {"n_steps": 3}),
    "layer-conductance": Recipe(construct=_middle, per_call=lambda arch: {"n_steps": 3}),
    "internal-influence": Recipe(construct=_middle, per_call=lambda arch: {"n_steps": 3}),
    "neuron-gradient": Recipe(construct=_middle, per_call=lambda arch: {"neuron_selector": _layer_sum}),
    "neuron-integrated-gradients": Recipe(construct=_middle, per_call=lambda arch: {"neuron_selector": _layer_sum, "n_steps": 3}),
    "neuron-conductance": Recipe(construct=_middle, per_call=lambda arch: {"neuron_selector": _layer_sum, "n_steps": 3}),
    "smoothgrad": Recipe(construct=lambda arch: {"nt_samples": 2}),
    "smoothgrad-sq": Recipe(construct=lambda arch: {"nt_samples": 2}),
    "vargrad": Recipe(construct=lambda arch: {"nt_samples": 2}),
    # Variant: SmoothGrad around a method with baselines, forwarding the per-call arguments.
    "smoothgrad(integrated-gradients)": Recipe(
        registry_name="smoothgrad",
        construct=lambda arch: {"base": "integrated-gradients", "nt_samples": 2},
        per_call=lambda arch: {"n_steps": 4},
    ),
    "occlusion": Recipe(per_call=_occlusion_window),
    "lime": Recipe(
        construct=_lime_settings,
        not_applicable={
            "dense": NotApplicable(
                "LIME segments images: it needs (N, C, H, W) inputs, the dense net takes (N, 12)",
                attempt=lambda model, x: nni.Lime(model, segmentation="grid", n_samples=4).attribute(x),
                match="at least 4 dimensions",
            )
        },
    ),
    "feature-ablation": Recipe(per_call=lambda arch: {"feature_mask": _coarse_features(arch)}),
    "shapley-value-sampling": Recipe(construct=lambda arch: {"n_samples": 2}, per_call=lambda arch: {"feature_mask": _coarse_features(arch)}),
    "kernel-shap": Recipe(construct=lambda arch: {"n_samples": 8}, per_call=lambda arch: {"feature_mask": _coarse_features(arch)}),
    "gradient-shap": Recipe(construct=lambda arch: {"n_samples": 2}),
    "rise": Recipe(
        construct=lambda arch: {"n_masks": 6, "mask_resolution": 4},
        not_applicable={
            "dense": NotApplicable(
                "RISE masks images: it needs (N, C, H, W) inputs, the dense net takes (N, 12)",
                attempt=lambda model, x: nni.RISE(model, n_masks=2).attribute(x),
                match="at least 4 dimensions",
            )
        },
    ),
    "cam": Recipe(
        construct=lambda arch: dict(zip(("feature_layer", "fc_layer"), CAM_LAYERS[arch])),
        not_applicable={
            "dense": NotApplicable(
                _CAM_NEEDS_GAP + "the dense net has no feature maps",
                attempt=_cam_refusal("1", "3"),
                match="at least 3 dimensions",
            ),
            "mnist_cnn": NotApplicable(
                _CAM_NEEDS_GAP + "MNISTCNN flattens its 7x7 maps into two linear layers",
                attempt=_cam_refusal("features.6", "classifier.1"),
                match="expects 1960",
            ),
            "residual_bn": NotApplicable(
                _CAM_NEEDS_GAP + "ResidualBNNet pools to 2x2 before its linear layer",
                attempt=_cam_refusal("conv", "fc"),
                match="expects 24",
            ),
            "nested_functional": NotApplicable(
                _CAM_NEEDS_GAP + "NestedFunctionalCNN max-pools and flattens into two linear layers",
                attempt=_cam_refusal("blocks.1", "head.fc1"),
                match="expects 392",
            ),
            "vit": NotApplicable(
                _CAM_NEEDS_GAP + "the ViT's head reads the class token, not pooled patch maps",
                attempt=_cam_refusal("encoder.layers.encoder_layer_0.ln_1", "heads.head"),
                match="is not the global average of",
            ),
        },
    ),
    "grad-cam": Recipe(construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]}, not_applicable={"dense": _NO_FEATURE_MAPS}),
    "grad-cam-plus-plus": Recipe(construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]}, not_applicable={"dense": _NO_FEATURE_MAPS}),
    "xgrad-cam": Recipe(construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]}, not_applicable={"dense": _NO_FEATURE_MAPS}),
    "hires-cam": Recipe(construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]}, not_applicable={"dense": _NO_FEATURE_MAPS}),
    "layer-cam": Recipe(construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]}, not_applicable={"dense": _NO_FEATURE_MAPS}),
    "eigen-cam": Recipe(construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]}, not_applicable={"dense": _NO_FEATURE_MAPS}),
    "score-cam": Recipe(
        construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]},
        per_call=lambda arch: {"internal_batch_size": 16, "show_progress": False},
        not_applicable={"dense": _NO_FEATURE_MAPS},
    ),
    "ablation-cam": Recipe(
        construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]},
        per_call=lambda arch: {"internal_batch_size": 16, "show_progress": False},
        not_applicable={"dense": _NO_FEATURE_MAPS},
    ),
    "full-grad": Recipe(
        not_applicable={
            "dense": NotApplicable(
                "FullGrad sums the bias-gradient maps of convolutions and BatchNorms: the dense net has none, its inputs are (N, 12)",
                attempt=lambda model, x: nni.FullGrad(model).attribute(x),
                match="at least 3 dimensions",
            )
        }
    ),
    "guided-grad-cam": Recipe(
        construct=lambda arch: {"layer": GRAD_CAM_LAYER[arch]}, not_applicable={"dense": _NO_FEATURE_MAPS}
    ),
    "deeplift": Recipe(),
    "deeplift-no-rule": Recipe(),
    "deeplift-linear": Recipe(),
    "deeplift-rescale": Recipe(),
    "deeplift-linear-rescale": Recipe(),
    "deeplift-reveal-cancel": Recipe(),
    "deeplift-linear-reveal-cancel": Recipe(),
    "lrp": Recipe(),
    "lrp-0": Recipe(),
    "lrp-epsilon": Recipe(),
    "lrp-gamma": Recipe(),
    "lrp-alpha2-beta1": Recipe(),
    "lrp-composite": Recipe(),  # low=0, high=1 by default: the inputs lie in [0, 1]
    "deep-taylor": Recipe(
        construct=lambda arch: {"low": 0.0, "high": 1.0},
        not_applicable={
            "vit": NotApplicable(
                "deep Taylor's z+ root points need non-negative inputs at every hidden layer; the ViT's come from LayerNorm",
                attempt=lambda model, x: nni.DeepTaylor(model, 0.0, 1.0).attribute(x),
                error=NotImplementedError,
                match="receives negative inputs",
            )
        },
    ),
    # Attention rollout reads the attention weights of a transformer: only the ViT has any.
    "attention-rollout": Recipe(
        not_applicable={
            arch: NotApplicable(
                "attention rollout multiplies the attention weights of a transformer's layers; this net has no attention",
                attempt=(lambda model, x: nni.AttentionRollout(model).attribute(x)) if arch != "dense" else None,
                match="no nn.MultiheadAttention or F.scaled_dot_product_attention",
            )
            for arch in ARCHITECTURES
            if arch != "vit"
        }
    ),
}


def registry_name(key: str) -> str:
    return RECIPES[key].registry_name or key


def build(key: str, model: nn.Module, arch: str):
    """The method ``key`` on ``model`` (of architecture ``arch``), built through the registry."""
    return nni.get_method(registry_name(key), model, **RECIPES[key].construct(arch))


def per_call(key: str, arch: str) -> dict:
    return dict(RECIPES[key].per_call(arch))


# --------------------------------------------------------------------------------------------------
# Cached models and inputs
# --------------------------------------------------------------------------------------------------

_MODELS: dict[tuple, nn.Module] = {}


def model(arch: str, seed: int = 0, dtype: torch.dtype = torch.float64, device: str = "cpu") -> nn.Module:
    """The cached seeded model; tests that change it restore it or call :func:`forget`."""
    key = (arch, seed, dtype, device)
    if key not in _MODELS:
        _MODELS[key] = ARCHITECTURES[arch].build(seed, dtype).to(device)
    return _MODELS[key]


def forget(arch: str, seed: int = 0, dtype: torch.dtype = torch.float64, device: str = "cpu") -> None:
    """Drop a cached model that a failing test may have left changed."""
    _MODELS.pop((arch, seed, dtype, device), None)


def inputs(arch: str, n: int = 3, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A fresh batch (never shared between tests, so that a test may check it is left untouched)."""
    return ARCHITECTURES[arch].inputs(n, seed, dtype)


def layer(model: nn.Module, name: str) -> nn.Module:
    return dict(model.named_modules())[name]
