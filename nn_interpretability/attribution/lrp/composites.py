"""Composites: which LRP rule each layer of a model gets.

A composite sees the layers in the order the forward pass calls them. Every call of a ``Linear`` or
``Conv1d/2d/3d`` layer is one *layer position* (0 = the layer that receives the input; a module called
twice has two positions), so a composite can pick rules by module type, by module name or by position.
The textbook (end of section "LRP") and the report (section 2.2.5) recommend LRP-0 for the upper
layers, LRP-epsilon for the middle layers, LRP-gamma or alpha-beta for the lower layers and the z^B
rule for the input layer; :class:`ReportComposite` is that recipe.

Layers that need no rule: activations pass relevance through unchanged, max-pooling gives it to the
maximum (winner-take-all), average pooling and residual additions share it in proportion to the
contributions (the ``stabilizer`` of the composite), BatchNorm is folded into the layer before it
(:class:`~nn_interpretability.attribution.lrp.canonizers.MergeBatchNorm`); a BatchNorm that cannot be
folded passes relevance through unless the composite maps it.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from .rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, Rule, ZBox, ZPlus, _check_stabilizer

#: How attention is explained: AttnLRP (Achtibat et al. 2024) or the conservative propagation of Ali et al.
#: 2022 (CP-LRP: attention weights taken as constants).
ATTENTION_RULES = ("attnlrp", "conservative")

#: Module types whose calls are layer positions (their ``forward`` is ``F.linear`` / ``F.convNd``).
LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class Layer:
    """One layer call of the forward pass, as composites see it.

    Attributes
    ----------
    name : str
        The module's name in ``model.named_modules()`` ("" for the model itself).
    module : nn.Module
        The module whose parameters the call uses.
    kind : str
        ``"linear"`` (dense), ``"conv"``, ``"batch_norm"`` (a BatchNorm that could not be folded) or
        ``"other"`` (any other parametrised operation, e.g. a LayerNorm).
    position : int or None
        Index among the linear and convolutional layer calls, in forward order; None for other kinds.
    count : int
        Number of linear and convolutional layer calls in the forward pass.
    """

    name: str
    module: nn.Module
    kind: str
    position: int | None
    count: int

    @property
    def label(self) -> str:
        """``'name' (Type)`` for messages."""
        return f"{self.name or '<model>'!r} ({type(self.module).__name__})"


class Composite:
    """Map layers to LRP rules by module type, module name or layer position.

    Parameters
    ----------
    rules : mapping, optional
        Keys: a module type or tuple of types (matched with ``isinstance``), a module name (exact or a
        shell pattern such as ``"features.*"``), an int layer position (negative counts from the last
        layer) or a ``slice`` of positions. Values: :class:`~nn_interpretability.attribution.lrp.rules.Rule`.
        Positions take precedence over names, names over types; among keys of one kind the first
        that matches wins.
    default : Rule, optional
        Rule for every linear or convolutional layer that no key matches.
    stabilizer : float
        Stabiliser of the sum rule ``R_i = x_i R / sum_k x_k`` used for average pooling, sums and
        residual additions (0 conserves relevance exactly), and of the product, softmax and
        normalisation rules.
    attention : {"attnlrp", "conservative"}
        Products of two activations and softmax: AttnLRP's uniform and softmax rules (Achtibat et al.
        2024), or CP-LRP (Ali et al. 2022), which takes the attention weights (softmax outputs) as
        constants in their product with the values, so that q and k get no relevance.

    Examples
    --------
    >>> composite = Composite({0: ZBox(0.0, 1.0), nn.Conv2d: Gamma(0.25), -1: Epsilon(0)}, default=Epsilon(0.25))
    """

    def __init__(
        self, rules: Mapping | None = None, default: Rule | None = None, stabilizer: float = 1e-6, attention: str = "attnlrp"
    ):
        if attention not in ATTENTION_RULES:
            raise ValueError(f"attention must be one of {ATTENTION_RULES}, got {attention!r}")
        self.attention = attention
        self.rules = dict(rules or {})
        for key, rule in self.rules.items():
            _check_key(key)
            if not isinstance(rule, Rule):
                raise TypeError(f"the rule for {key!r} must be an LRP rule (Epsilon(), Gamma(), ...), got {rule!r}")
        if default is not None and not isinstance(default, Rule):
            raise TypeError(f"default must be an LRP rule (Epsilon(), Gamma(), ...), got {default!r}")
        self.default = default
        self.stabilizer = _check_stabilizer(stabilizer)

    def assign(self, layers: Sequence[Layer]) -> list[Rule | None]:
        """The rule of every layer call (None where the composite has none)."""
        return [self.lookup(layer) or self._builtin(layer, layers) for layer in layers]

    def lookup(self, layer: Layer) -> Rule | None:
        """The rule the user's keys give ``layer``, or None."""
        if layer.position is not None:
            for key, rule in self.rules.items():
                if isinstance(key, range) and (layer.position in key or layer.position - layer.count in key):
                    return rule
                if isinstance(key, int) and not isinstance(key, bool) and layer.position == key % layer.count:
                    return rule
        for key, rule in self.rules.items():
            if isinstance(key, str) and fnmatch.fnmatchcase(layer.name, key):
                return rule
        for key, rule in self.rules.items():
            if isinstance(key, (type, tuple)) and isinstance(layer.module, key):
                return rule
        return None

    def _builtin(self, layer: Layer, layers: Sequence[Layer]) -> Rule | None:
        """The composite's own choice for a layer no key matched."""
        if layer.kind == "batch_norm":
            return Pass()
        if layer.kind in ("linear", "conv"):
            return self.default
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rules={self.rules!r}, default={self.default!r})"


def _check_key(key) -> None:
    if isinstance(key, tuple) and key and all(isinstance(k, type) and issubclass(k, nn.Module) for k in key):
        return
    if isinstance(key, type) and issubclass(key, nn.Module):
        return
    if isinstance(key, (str, range)) or (isinstance(key, int) and not isinstance(key, bool)):
        return
    raise TypeError(
        f"composite keys are module types, module names, int layer positions or ranges of positions, got {key!r}"
    )


def _first(layers: Sequence[Layer], kinds: tuple[str, ...]) -> int | None:
    positions = [layer.position for layer in layers if layer.kind in kinds]
    return min(positions) if positions else None


class EpsilonGammaBox(Composite):
    """z^B on the first convolution, LRP-gamma on the other convolutions, LRP-epsilon on dense layers.

    Montavon et al. 2019; Zennit's composite of the same name.

    Parameters
    ----------
    low, high : float or Tensor
        Bounds of the input (see :class:`~nn_interpretability.attribution.lrp.rules.ZBox`).
    epsilon, gamma, stabilizer : float
        Rule parameters.
    bias : bool
        Whether biases enter the denominators.
    rules : mapping, optional
        User keys (as in :class:`Composite`) that take precedence over the composite's choices.
    """

    def __init__(self, low, high, epsilon=1e-6, gamma=0.25, stabilizer=1e-6, bias=True, rules=None, attention="attnlrp"):
        super().__init__(rules, stabilizer=stabilizer, attention=attention)
        self.box = ZBox(low, high, stabilizer)
        self.gamma = Gamma(gamma, stabilizer, bias)
        self.epsilon = Epsilon(epsilon, bias)

    def _builtin(self, layer, layers):
        if layer.kind == "conv":
            return self.box if layer.position == _first(layers, ("conv",)) else self.gamma
        return self.epsilon if layer.kind == "linear" else super()._builtin(layer, layers)


class EpsilonPlusFlat(Composite):
    """Flat on the input layer, z+ on the other convolutions, LRP-epsilon on dense layers.

    Kohlbrenner et al. 2020 recommend it for CNNs; needs no input bounds, which makes it the default
    of :class:`~nn_interpretability.attribution.lrp.LRP`. Zennit's composite of the same name.

    Parameters
    ----------
    epsilon, stabilizer : float
        Rule parameters.
    bias : bool
        Whether biases enter the denominators.
    rules : mapping, optional
        User keys that take precedence over the composite's choices.
    """

    def __init__(self, epsilon=1e-6, stabilizer=1e-6, bias=True, rules=None, attention="attnlrp"):
        super().__init__(rules, stabilizer=stabilizer, attention=attention)
        self.flat = Flat(stabilizer)
        self.plus = ZPlus(stabilizer, bias)
        self.epsilon = Epsilon(epsilon, bias)

    def _builtin(self, layer, layers):
        if layer.kind in ("linear", "conv") and layer.position == 0:
            return self.flat
        if layer.kind == "conv":
            return self.plus
        return self.epsilon if layer.kind == "linear" else super()._builtin(layer, layers)


class EpsilonAlpha2Beta1(Composite):
    """LRP-alpha2-beta1 on convolutions, LRP-epsilon on dense layers (Zennit's composite of that name).

    Parameters
    ----------
    epsilon, stabilizer : float
        Rule parameters.
    bias : bool
        Whether biases enter the denominators.
    rules : mapping, optional
        User keys that take precedence over the composite's choices.
    """

    def __init__(self, epsilon=1e-6, stabilizer=1e-6, bias=True, rules=None, attention="attnlrp"):
        super().__init__(rules, stabilizer=stabilizer, attention=attention)
        self.alpha_beta = AlphaBeta(2.0, 1.0, stabilizer, bias)
        self.epsilon = Epsilon(epsilon, bias)

    def _builtin(self, layer, layers):
        if layer.kind == "conv":
            return self.alpha_beta
        return self.epsilon if layer.kind == "linear" else super()._builtin(layer, layers)


class ReportComposite(Composite):
    """The report's composite LRP (section 2.2.5, Fig. 13 right): z^B, alpha-beta, epsilon, LRP-0.

    The input layer (position 0) gets the z^B rule (eq. 22). The other linear and convolutional layers,
    in forward order, are split into three parts as evenly as possible (the lower parts get the extra
    layers): the lower third gets LRP-alpha-beta (eq. 21), the middle third LRP-epsilon (eq. 19) and the
    upper third LRP-0 (eq. 18). For the MNIST CNN (3 convolutions, 2 dense layers) that is z^B on conv1,
    alpha2-beta1 on conv2 and conv3, epsilon on fc1 and LRP-0 on fc2.

    Parameters
    ----------
    low, high : float or Tensor
        Bounds of the input (see :class:`~nn_interpretability.attribution.lrp.rules.ZBox`).
    epsilon : float
        Epsilon of the middle layers.
    alpha, beta : float
        Alpha and beta of the lower layers (``alpha - beta = 1``).
    stabilizer : float
        Stabiliser of z^B, alpha-beta and the sum rule.
    bias : bool
        Whether biases enter the denominators.
    rules : mapping, optional
        User keys that take precedence over the composite's choices.
    """

    def __init__(self, low, high, epsilon=0.25, alpha=2.0, beta=1.0, stabilizer=1e-6, bias=True, rules=None, attention="attnlrp"):
        super().__init__(rules, stabilizer=stabilizer, attention=attention)
        self.box = ZBox(low, high, stabilizer)
        self.parts = (AlphaBeta(alpha, beta, stabilizer, bias), Epsilon(epsilon, bias), Epsilon(0.0, bias))

    def _builtin(self, layer, layers):
        if layer.kind not in ("linear", "conv"):
            return super()._builtin(layer, layers)
        if layer.position == 0:
            return self.box
        hidden = layer.count - 1
        size, extra = divmod(hidden, 3)
        # Boundaries of numpy.array_split(range(hidden), 3).
        ends = [size + (extra > 0), 2 * size + (extra > 0) + (extra > 1), hidden]
        index = layer.position - 1
        return self.parts[next(part for part, end in enumerate(ends) if index < end)]
