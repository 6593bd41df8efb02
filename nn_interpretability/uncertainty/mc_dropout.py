"""Monte Carlo dropout: many stochastic forward passes with dropout on (Gal & Ghahramani 2016; report section 3.1).

Each pass ``k`` is one network drawn from the dropout posterior: its dropout masks are a fixed
function of ``(seed, k)``, not of the global random state. Fixed masks give three guarantees that
the attribution functions of :mod:`~nn_interpretability.uncertainty.attribution` rely on:

* the forward that picks a pass's predicted class and every forward an attribution method runs
  afterwards (DeepLIFT's baseline, the points of Integrated Gradients) see the *same* network;
* all passes run as one batched forward (the input repeated along the batch, one mask per copy), and
  the result equals running the passes one by one, whatever ``internal_batch_size``;
* pass ``k`` is the same network for every input, so a batch equals its items one at a time.

Only dropout changes: the dropout modules are switched to training mode (the rest to eval mode)
inside :func:`~nn_interpretability.core.hooks.borrowed`, so BatchNorm uses its running statistics and
the model comes back exactly as it was.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core import ops
from ..core.base import check_inputs, forward_scores
from ..core.hooks import borrowed
from ..core.validation import positive_int
from ..core.vocabulary import renamed_arguments

#: Module classes whose dropout is switched on (their forward calls the functional dropout of ``core.ops``).
DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)

FUNCTIONAL_DROPOUT = ("raise", "sample", "ignore")


@dataclass(frozen=True)
class _Kind:
    channelwise: bool  # one draw per channel (Dropout1d/2d/3d, FeatureAlphaDropout) or per element
    alpha: bool  # SELU-preserving alpha dropout (Klambauer et al. 2017) instead of inverted dropout


_ELEMENT, _CHANNEL = _Kind(False, False), _Kind(True, False)
_ALPHA, _FEATURE_ALPHA = _Kind(False, True), _Kind(True, True)
# The mask of each dropout operation (every spelling of it in :mod:`~nn_interpretability.core.ops`).
_KINDS = {
    "dropout": _ELEMENT,
    "dropout1d": _CHANNEL,
    "dropout2d": _CHANNEL,
    "dropout3d": _CHANNEL,
    "feature_dropout": _CHANNEL,
    "alpha_dropout": _ALPHA,
    "feature_alpha_dropout": _FEATURE_ALPHA,
}

# SELU's negative saturation -lambda * alpha: where alpha dropout drops a unit, it sets it to this value.
_ALPHA_PRIME = 1.7580993408473766


def _mask_seed(seed: int, call: int, key: tuple[int, ...]) -> int:
    """The generator seed of one mask: NumPy's SeedSequence keeps ``(seed, call, key)`` combinations apart."""
    return int(np.random.SeedSequence(seed, spawn_key=(call, *key)).generate_state(1, np.uint64)[0])


def draw_keep_mask(seed: int, call: int, key: tuple[int, ...], shape: tuple[int, ...], p: float) -> torch.Tensor:
    """The keep-mask (``True`` = unit kept) of dropout call ``call`` in the network with mask key ``key``.

    Drawn on the CPU in float64 from a ``torch.Generator`` seeded with :func:`_mask_seed`, so the mask
    depends neither on the device, the dtype nor the batch it ends up in. ``key`` is ``(k,)`` for pass
    ``k``; ``(k, c + 1)`` for the network of pass ``k`` and class ``c`` in Algorithm 1.
    """
    generator = torch.Generator().manual_seed(_mask_seed(seed, call, key))
    return torch.rand(shape, generator=generator, dtype=torch.float64) >= p


def apply_keep_mask(x: torch.Tensor, keep: torch.Tensor, p: float, alpha: bool = False) -> torch.Tensor:
    """Dropout of ``x`` with a given keep-mask (broadcast against ``x``), with torch's scaling.

    Inverted dropout (Srivastava et al. 2014): ``x ∘ keep / (1 − p)``. Alpha dropout (Klambauer et
    al. 2017, eq. 13): dropped units take SELU's saturation value ``−α'`` and the affine map
    ``a (·) + b`` restores zero mean and unit variance, ``a = ((1 − p)(1 + p α'²))^(−1/2)``,
    ``b = a α' p``. ``p = 1`` drops everything (zeros), as torch does.
    """
    if p == 1.0:  # also avoids 0 * inf below
        return x * 0.0
    keep = keep.to(x.dtype)
    if not alpha:
        return x * (keep / (1.0 - p))
    a = 1.0 / math.sqrt((_ALPHA_PRIME**2 * p + 1.0) * (1.0 - p))
    return a * x * keep + a * _ALPHA_PRIME * (keep + (p - 1.0))


class DropoutMasks(TorchFunctionMode):
    """Applies fixed dropout masks to every dropout call of a model; see :func:`fixed_dropout_masks`.

    ``select(mask_keys)`` assigns one mask key to each row of the batch the next forwards run on (the
    "copies"). A forward may run a whole number ``m`` of such batches stacked along the first
    dimension (DeepLIFT stacks the baseline, Integrated Gradients the path points): row ``r`` uses the
    key of copy ``r mod B``. The ``j``-th dropout call of a forward (counted from the model's own
    ``forward``) with key ``key`` drops with :func:`draw_keep_mask` ``(seed, j, key, ...)``.
    """

    def __init__(self, model: nn.Module, seed: int, functional_dropout: str):
        super().__init__()
        self.model = model
        self.seed = seed
        self.functional_dropout = functional_dropout
        self.calls = 0  # dropout calls handled, over all forwards
        self._keys: torch.Tensor | None = None
        self._cache: dict = {}
        self._call_index = 0
        self._module_depth = 0

    def select(self, mask_keys: torch.Tensor) -> None:
        """Give row ``i`` of the next forwards' batch the network with key ``mask_keys[i]``.

        ``mask_keys`` is a LongTensor of shape ``(B,)`` (key ``(k,)``) or ``(B, L)`` (key of ``L`` ints).
        """
        keys = torch.as_tensor(mask_keys, dtype=torch.long).cpu()
        keys = keys.unsqueeze(1) if keys.dim() == 1 else keys
        if keys.dim() != 2 or keys.shape[0] == 0 or (keys < 0).any():
            raise ValueError(f"mask_keys must be a non-empty (B,) or (B, L) tensor of non-negative ints, got {keys}")
        self._keys = keys
        self._cache = {}

    def require_dropout(self) -> None:
        """Raise ``ValueError`` if the forwards so far met no dropout call (the passes would all be equal)."""
        if self.calls == 0:
            raise ValueError(
                f"{type(self.model).__name__} has no dropout: every pass would be the same deterministic network. "
                "MC dropout needs a model trained with dropout layers (e.g. nni.load_model('mnist_dropout_cnn'))"
            )

    # Hooks registered by fixed_dropout_masks: restart the call count at each forward of the model and
    # tell dropout calls made by dropout modules (always sampled) from functional ones.
    def _start_forward(self, module, args):
        self._call_index = 0

    def _enter_module(self, module, args):
        self._module_depth += 1

    def _leave_module(self, module, args, output):
        self._module_depth -= 1

    def _rows(self, x: torch.Tensor, func) -> torch.Tensor:
        """The mask key index of every row of ``x``."""
        if self._keys is None:
            raise RuntimeError("DropoutMasks.select(mask_keys) must be called before running the model")
        copies = self._keys.shape[0]
        if x.dim() < 2 or x.shape[0] % copies:
            raise ValueError(
                f"{ops.describe(func)} received a batch of {tuple(x.shape)}, not a whole number of copies of the "
                f"{copies} rows whose dropout masks were chosen: the method must run the model on its input "
                "batch stacked whole (row r is copy r mod B). For Integrated Gradients pass internal_batch_size "
                f"as a multiple of {copies}"
            )
        return torch.arange(x.shape[0]) % copies

    def _keep(self, kind: _Kind, x: torch.Tensor, p: float, func) -> torch.Tensor:
        """Keep-masks of the rows of ``x`` for the current call, drawn once per select() and reused."""
        rows = self._rows(x, func)
        shape = (x.shape[1], *[1] * (x.dim() - 2)) if kind.channelwise else tuple(x.shape[1:])
        cache_key = (self._call_index, shape, p, kind, x.device)
        if cache_key not in self._cache:
            unique, inverse = torch.unique(self._keys, dim=0, return_inverse=True)
            masks = torch.stack(
                [draw_keep_mask(self.seed, self._call_index, tuple(key.tolist()), shape, p) for key in unique]
            )
            self._cache[cache_key] = masks[inverse].to(x.device)
        return self._cache[cache_key][rows.to(x.device)]

    def _apply(self, kind: _Kind, x: torch.Tensor, p: float, func) -> torch.Tensor:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        keep = self._keep(kind, x, p, func)
        self._call_index += 1
        self.calls += 1
        return apply_keep_mask(x, keep, p, kind.alpha)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = ops.op_of(func)
        if entry is None or entry.category != ops.DROPOUT:
            return func(*args, **kwargs)
        kind = _KINDS[entry.name]
        x, p, training = ops.dropout_arguments(func, args, kwargs)
        if self._module_depth == 0 and not training:
            if self.functional_dropout == "ignore":
                return func(*args, **kwargs)
            if self.functional_dropout == "raise":
                raise ValueError(
                    f"the model calls {ops.describe(func)} with training=False outside a dropout module (functional "
                    "dropout, e.g. F.dropout(x, p, training=self.training) in a module in eval mode). MC dropout "
                    "switches only dropout modules on; use nn.Dropout modules, or pass functional_dropout='sample' "
                    "to sample it as well or 'ignore' to leave it off"
                )
        return self._apply(kind, x, float(p), func)


@contextmanager
def fixed_dropout_masks(model: nn.Module, functional_dropout: str = "raise", seed: int = 0) -> Iterator[DropoutMasks]:
    """Borrow ``model`` with every dropout drawing fixed, seeded masks; yields the :class:`DropoutMasks`.

    Inside the block only the dropout modules are in training mode (BatchNorm and every other module run
    in eval mode, even if the model was in training mode) and every dropout call, by a module or functional, uses the mask of its row's key (see
    :meth:`DropoutMasks.select`). On exit the model is restored exactly (:func:`~..core.hooks.borrowed`).

    Parameters
    ----------
    model : nn.Module
        Any model; its dropout may be modules (``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``,
        ``FeatureAlphaDropout``) or functional calls.
    functional_dropout : {"raise", "sample", "ignore"}
        What to do with a dropout *call* outside dropout modules whose ``training`` flag is ``False``
        (typically ``F.dropout(x, p, training=self.training)`` in a model in eval mode, which switching
        modules cannot reach): raise a ``ValueError`` naming it, sample it like the modules, or leave it
        off. Functional calls with ``training=True`` always drop, so they are always sampled.
    seed : int
        Seed of the masks.

    Notes
    -----
    In-place dropout runs out of place (the result is returned, the input left as it was). The
    dropout inside recurrent layers (``nn.LSTM(dropout=...)``) is internal to their kernels and cannot
    be reached: such models raise ``NotImplementedError``.
    """
    if functional_dropout not in FUNCTIONAL_DROPOUT:
        raise ValueError(f"functional_dropout must be one of {FUNCTIONAL_DROPOUT}, got {functional_dropout!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    recurrent = [name for name, m in model.named_modules() if isinstance(m, nn.RNNBase) and m.dropout > 0]
    if recurrent:
        raise NotImplementedError(
            f"the recurrent layer(s) {recurrent} apply dropout inside their kernel, which cannot be given fixed "
            "masks; MC dropout supports dropout modules and functional dropout calls"
        )
    masks = DropoutMasks(model, seed, functional_dropout)
    dropouts = [m for m in model.modules() if isinstance(m, DROPOUT_MODULES)]
    with borrowed(model) as borrow:
        # A test-time procedure: everything but dropout in eval mode (BatchNorm on its running statistics,
        # never on the statistics of a batch of copies), whatever mode the model was in.
        borrow.set_training(model.modules(), False)
        borrow.set_training(dropouts, True)
        model.register_forward_pre_hook(masks._start_forward, prepend=True)
        for module in dropouts:
            module.register_forward_pre_hook(masks._enter_module)
            module.register_forward_hook(masks._leave_module, always_call=True)
        with masks:
            yield masks


@dataclass(frozen=True)
class MCDropoutPrediction:
    """The passes of :func:`mc_dropout_predict` and the predictive uncertainty they give (in nats).

    Attributes
    ----------
    logits : Tensor
        ``(passes, N, C)`` class scores of every pass (the report's Fig. 18, left).
    probabilities : Tensor
        ``(passes, N, C)`` their softmax (Fig. 18, right).
    mean : Tensor
        ``(N, C)`` predictive mean ``p̄ = (1/T) Σ_k softmax(f_k(x))`` (Gal & Ghahramani 2016, eq. 8).
    predictive_entropy : Tensor
        ``(N,)`` ``H[p̄] = -Σ_c p̄_c log p̄_c``, the total uncertainty.
    expected_entropy : Tensor
        ``(N,)`` ``(1/T) Σ_k H[p_k]``, the aleatoric part.
    mutual_information : Tensor
        ``(N,)`` ``H[p̄] - (1/T) Σ_k H[p_k]`` (BALD, Houlsby et al. 2011), the epistemic part; ``>= 0``.
    """

    logits: torch.Tensor
    probabilities: torch.Tensor
    mean: torch.Tensor
    predictive_entropy: torch.Tensor
    expected_entropy: torch.Tensor
    mutual_information: torch.Tensor

    @property
    def passes(self) -> int:
        return self.logits.shape[0]

    @property
    def prediction(self) -> torch.Tensor:
        """``(N,)`` the class of the predictive mean."""
        return self.mean.argmax(1)

    @property
    def counts(self) -> torch.Tensor:
        """``(N, C)`` how many passes predict each class (sums to ``passes``)."""
        predicted = self.logits.argmax(2)
        return F.one_hot(predicted, self.logits.shape[2]).sum(0)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -torch.special.xlogy(p, p).sum(-1)


def _pass_chunks(
    passes: int, internal_batch_size: int | None, rows_per_pass: int, elements_per_row: int, desc: str, show_progress=None
) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges of passes run per forward, with a progress bar (``None``: interactive, many chunks)."""
    # Imported here: the plot and zoo modules import this package, and must not pull in every method.
    from ..core.batching import chunk_size, chunks
    from ..core.progress import progress

    size = internal_batch_size or max(1, chunk_size(elements_per_row) // rows_per_pass)
    ranges = [(block.start, block.stop) for block in chunks(passes, size)]
    if show_progress is None and len(ranges) < 8:
        show_progress = False
    return progress(ranges, desc, show_progress)


@renamed_arguments(batch_size="internal_batch_size")
def mc_dropout_predict(
    model: nn.Module,
    inputs: torch.Tensor,
    passes: int = 1000,
    internal_batch_size: int | None = None,
    functional_dropout: str = "raise",
    show_progress: bool | None = None,
    seed: int = 0,
) -> MCDropoutPrediction:
    """Run ``passes`` stochastic forward passes with only dropout switched on (Gal & Ghahramani 2016).

    The report's section 3.1 and Fig. 18: the spread of the passes' logits and softmax scores shows
    the model's uncertainty, which a single softmax hides. Passes run batched: ``internal_batch_size``
    passes per forward, each a copy of the whole input batch with its own masks (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        A classifier returning logits ``(N, C)`` with dropout modules (trained with dropout).
    inputs : Tensor
        Batch ``(N, ...)``; device and dtype are used as given.
    passes : int
        Stochastic forward passes ``T``.
    internal_batch_size : int, optional
        Passes per forward (``batch_size`` before 0.2); ``None`` keeps a forward around
        :data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS` input elements.
        The result does not depend on it.
    functional_dropout : {"raise", "sample", "ignore"}
        See :func:`fixed_dropout_masks`.
    show_progress : bool, optional
        A progress bar over the forwards; ``None`` shows it in a terminal or notebook only, when there
        are many.
    seed : int
        Seed of the masks: pass ``k`` is the same network in every call with this seed.

    Returns
    -------
    MCDropoutPrediction
    """
    inputs = check_inputs(inputs)
    passes = positive_int(passes, "passes")
    internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
    n = inputs.shape[0]
    logits = []
    with fixed_dropout_masks(model, functional_dropout, seed) as masks, torch.no_grad():
        for start, stop in _pass_chunks(passes, internal_batch_size, n, inputs.numel() // n, "MC dropout", show_progress):
            masks.select(torch.arange(start, stop).repeat_interleave(n))
            # Copy k of the batch sits at rows k * N ... k * N + N - 1.
            output = forward_scores(model, inputs.repeat(stop - start, *[1] * (inputs.dim() - 1)))
            masks.require_dropout()
            logits.append(output.view(stop - start, n, -1))
    logits = torch.cat(logits)
    probabilities = logits.softmax(-1)
    mean = probabilities.mean(0)
    predictive_entropy = _entropy(mean)
    expected_entropy = _entropy(probabilities).mean(0)
    return MCDropoutPrediction(
        logits=logits,
        probabilities=probabilities,
        mean=mean,
        predictive_entropy=predictive_entropy,
        expected_entropy=expected_entropy,
        # Rounding can push H[mean] a hair below the mean entropy when all passes agree.
        mutual_information=(predictive_entropy - expected_entropy).clamp(min=0),
    )
