"""The contract every decision-based method follows: one template ``attribute`` and declared capabilities.

``Attribution.attribute`` validates the inputs, borrows the model, and hands the method a :class:`Run`
that runs forwards and resolves the target once; the method implements ``_attribute(run, **per_call)``.
What a method is (takes baselines, has a convergence delta, ...) is declared as class attributes, as
Captum does, so that wrappers and evaluation helpers never inspect signatures.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping

import torch
from torch import nn

from .batching import chunk_size, chunks, repeat_per_sample
from .hooks import Borrow, borrowed
from .inference import inference_copy, same_outputs, worth_a_copy
from .targets import ClassScore, Selector, Target, as_selector, every_class, resolve_target, select_target
from .validation import check_batch, check_dtype, check_inputs
from .vocabulary import translate

__all__ = ["Attribution", "BatchCoupledWarning", "Run", "Target", "check_inputs", "forward_scores", "resolve_target", "select_target"]


class BatchCoupledWarning(UserWarning):
    """The model normalises with batch statistics, so a sample's map depends on the rest of the batch."""


def forward_output(model: nn.Module, inputs, n: int | None = None, extra: tuple = ()) -> torch.Tensor:
    """Run ``model`` on a batch and check that it returns a tensor with one row per input row.

    A model that cannot run on the inputs raises a ``ValueError`` naming the input shape (or a
    ``TypeError`` naming the dtypes when those differ), since the usual cause is a missing batch
    dimension, a wrong input size or a model in another precision. ``n`` is the user's batch size when
    ``inputs`` stacks copies of it; error messages then speak of the user's batch. ``extra`` are further
    positional arguments of the model (``additional_forward_args``, already one row per input row).
    ``inputs`` is one tensor or a tuple of them (the model's first positional arguments).
    """
    xs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    rows = xs[0].shape[0]
    n = rows if n is None else n
    try:
        output = model(*xs, *extra)
    except NotImplementedError:  # a method meeting an operation it cannot treat: its own message says why
        raise
    except RuntimeError as error:
        for x in xs:
            check_dtype(model, x)
        shapes = ", ".join(str((n, *x.shape[1:])) for x in xs)
        raise ValueError(
            f"the model could not run on inputs of shape {shapes}: {error}. Inputs must be "
            "batch-first (N, ...) with the size the model expects; for a single sample use inputs.unsqueeze(0)"
        ) from error
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"the model must return a tensor, got {type(output).__name__}")
    if output.dim() == 0 or output.shape[0] != rows:
        raise ValueError(
            f"the model must return one output row per sample, (N, ...) = ({n}, ...), got {tuple(output.shape)}"
        )
    return output


def forward_scores(model: nn.Module, inputs: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """:func:`forward_output`, checked to be class scores ``(N, C)`` (for helpers defined on classifiers)."""
    output = forward_output(model, inputs, n)
    if output.dim() != 2:
        n = output.shape[0] if n is None else n
        raise ValueError(f"the model must return class scores of shape (N, C) = ({n}, C), got {(n, *output.shape[1:])}")
    return output


def _channels_last(x):
    """``x`` (a tensor or tuple) with its CPU image batches ``(N, C > 1, H, W)`` in channels-last layout; None if it has none."""
    xs = x if isinstance(x, tuple) else (x,)
    eligible = [
        isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[1] > 1 and t.is_floating_point() and t.device.type == "cpu"
        for t in xs
    ]
    if not any(eligible):
        return None
    laid_out = tuple(t.contiguous(memory_format=torch.channels_last) if ok else t for t, ok in zip(xs, eligible))
    return laid_out if isinstance(x, tuple) else laid_out[0]


class Run:
    """One call of ``attribute``: the validated batch, the borrowed model and the target, resolved once.

    Attributes
    ----------
    model : nn.Module
    inputs : Tensor
        The validated, detached batch ``(N, ...)``.
    borrow : Borrow
        Handle for changes the restore must know about.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        target: Target,
        borrow: Borrow,
        method: str = "the method",
        additional_forward_args: tuple = (),
        fold: bool = False,
    ):
        self.model = model
        self.inputs = inputs
        self.additional_forward_args = additional_forward_args
        self.borrow = borrow
        self.method = method
        self._spec = target
        self._selector: Selector | None = None
        self._classes: torch.Tensor | None = None
        self._channels_last: bool | None = None  # whether the model takes channels-last images; None: not yet tried
        self._fold = fold  # a folded, channels-last copy is still to be tried at the next forward without autograd
        self._folded: nn.Module | None = None

    @property
    def n(self) -> int:
        return self.inputs_tuple[0].shape[0]

    @property
    def multiple(self) -> bool:
        """Whether the model takes several attributed inputs (``inputs`` is a tuple)."""
        return isinstance(self.inputs, tuple)

    @property
    def inputs_tuple(self) -> tuple[torch.Tensor, ...]:
        """The attributed inputs as a tuple (of one tensor for a single input)."""
        return self.inputs if self.multiple else (self.inputs,)

    def like(self, values):
        """``values`` (one per input) shaped as the inputs were given: the tuple, or its only element."""
        values = tuple(values)
        return values if self.multiple else values[0]

    def forward(self, x, sample: torch.Tensor | None = None) -> torch.Tensor:
        """The model's output on ``x`` (the batch or copies of it; a tuple for several inputs), one row per input row.

        ``sample[r]`` is the sample row ``r`` of ``x`` belongs to (default copy-major, ``r mod N``): the
        ``additional_forward_args`` with a batch dimension follow their samples.

        Forwards without autograd (the perturbation methods' masked, ablated and sampled copies) give image
        batches on the CPU to the model in channels-last layout, where oneDNN's convolutions run 6–22 % faster
        (torchvision's resnet18, vgg11, densenet121, mobilenet_v3_small, efficientnet_b0, convnext_tiny and
        vit_b_16, 8 × 224², one thread); a model that cannot take that layout (a ``view`` of its input) gets
        them as they are, from the first such forward on. Gradients are left to the layout given. For the
        methods with :attr:`~Attribution.perturbation_forwards` these forwards run a copy of the model with its
        BatchNorm folded into the convolutions and its weights in the layout of the images
        (:func:`~.inference.inference_copy`), made at the first of them at which the model has no hooks and
        checked against the model on that batch's first rows.
        """
        rows = (x[0] if isinstance(x, tuple) else x).shape[0]
        extra = self.additional_for(rows, sample)
        if torch.is_grad_enabled():
            return forward_output(self.model, x, self.n, extra)
        if self._channels_last is not False:
            laid_out = _channels_last(x)
            if laid_out is not None:
                try:
                    output = self._forward_without_autograd(laid_out, extra)
                except ValueError:
                    if self._channels_last:
                        raise
                    self._channels_last = False
                else:
                    self._channels_last = True
                    return output
        return self._forward_without_autograd(x, extra)

    def _forward_without_autograd(self, x, extra: tuple) -> torch.Tensor:
        """:func:`forward_output` of the folded copy, once made; at the first forward it may be, the model's, and the copy made."""
        if self._folded is not None:
            return forward_output(self._folded, x, self.n, extra)
        if not self._fold:
            return forward_output(self.model, x, self.n, extra)
        xs = x if isinstance(x, tuple) else (x,)
        images = [t for t in xs if isinstance(t, torch.Tensor) and t.dim() == 4]
        layout = bool(images) and all(t.is_contiguous(memory_format=torch.channels_last) for t in images)
        # Channels-last weights alone (no BatchNorm to fold) were measured on the CPU's oneDNN only.
        if not worth_a_copy(self.model, channels_last=layout and all(t.device.type == "cpu" for t in images)):
            return forward_output(self.model, x, self.n, extra)
        rows = xs[0].shape[0]
        # The check runs the model on the first rows only (an eval-mode model treats rows independently).
        head = lambda values: tuple(v[:2] if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == rows else v for v in values)  # noqa: E731
        expected = forward_output(self.model, head(xs) if isinstance(x, tuple) else head(xs)[0], self.n, head(extra))
        self._fold = False  # tried once (after the model ran: a channels-last failure retries in the given layout)
        folded = inference_copy(self.model, channels_last=layout)
        if folded is not None:
            try:
                copied = forward_output(folded, x, self.n, extra)
            except Exception:  # noqa: BLE001 - a copy that cannot run the batch is not used
                copied = None
            if copied is not None and same_outputs(expected, copied[: len(expected)]):
                self._folded = folded
                return copied  # every forward from here on comes from the copy
        return forward_output(self.model, x, self.n, extra)

    def additional_copies(self, copies: int) -> tuple:
        """``additional_forward_args`` for ``copies`` copy-major copies of the batch (for inner methods)."""
        return _repeat_rows(self.additional_forward_args, self.n, copies)

    def additional_for(self, rows: int, sample: torch.Tensor | None = None) -> tuple:
        """``additional_forward_args`` for ``rows`` rows: per-sample tensors ``(N, ...)`` indexed by ``sample``."""
        if not self.additional_forward_args or (rows == self.n and sample is None):
            return self.additional_forward_args
        if sample is None:
            sample = torch.arange(rows, device=self.inputs_tuple[0].device) % self.n
        return tuple(
            arg[sample.to(arg.device)] if isinstance(arg, torch.Tensor) and arg.dim() and arg.shape[0] == self.n else arg
            for arg in self.additional_forward_args
        )

    @property
    def classes(self) -> torch.Tensor | None:
        """For ``target="all"`` or an ``(N, K)`` tensor, the classes per sample ``(N, K)`` (else ``None``).

        Only methods with ``explains_every_class`` see such targets; they return maps ``(N, K, ...)``.
        """
        if not self.every_class:
            return None
        if self._classes is None:
            with torch.no_grad():
                self.classes_of(self.forward(self.inputs))
        return self._classes

    @property
    def every_class(self) -> bool:
        """Whether the target asks for every class (``"all"`` or an ``(N, K)`` tensor); no forward runs."""
        return _is_every_class(self._spec)

    def classes_of(self, output: torch.Tensor) -> torch.Tensor:
        """:attr:`classes`, chosen once from ``output``'s first ``N`` rows (the batch's output)."""
        if self._classes is None:
            self._classes = every_class(self._spec, output[: self.n].detach())
        return self._classes

    def bind(self, output: torch.Tensor) -> Selector:
        """What is explained, chosen once from ``output``'s first ``N`` rows (the batch's output)."""
        if self._selector is None:
            self._selector = as_selector(self._spec, output[: self.n].detach())
        return self._selector

    @property
    def selector(self) -> Selector:
        """What is explained; the first access without a forward runs one on the batch."""
        if self._selector is None:
            with torch.no_grad():
                self.bind(self.forward(self.inputs))
        return self._selector

    def select(self, output: torch.Tensor, sample: torch.Tensor | None = None) -> torch.Tensor:
        """The explained scalar of every row of ``output``; ``sample[r]`` is row ``r``'s sample (default copy-major)."""
        return self.bind(output)(output, sample)

    def resolve(self, output: torch.Tensor) -> torch.Tensor:
        """The target classes ``(N,)`` of a classifier, chosen once from ``output`` (see :meth:`bind`)."""
        return _classes(self.bind(output), self.method)

    @property
    def target(self) -> torch.Tensor:
        """The target classes ``(N,)`` of a classifier, for methods defined on class scores only."""
        return _classes(self.selector, self.method)


def _additional_forward_args(value, n: int) -> tuple:
    """``additional_forward_args`` as a tuple (one value is one argument), checked for its batch sizes."""
    if value is None:
        return ()
    args = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    for arg in args:
        if isinstance(arg, torch.Tensor) and arg.dim() and arg.shape[0] != n and arg.shape[0] != 1:
            raise ValueError(
                f"an additional_forward_args tensor has {arg.shape[0]} rows but the batch has N = {n}: give one "
                "row per sample, or a tensor without a batch dimension"
            )
    return args


def _repeat_rows(args: tuple, n: int, copies: int) -> tuple:
    """Per-sample tensors of ``args`` repeated for ``copies`` copy-major copies of the batch."""
    return tuple(
        arg.repeat(copies, *(1,) * (arg.dim() - 1)) if isinstance(arg, torch.Tensor) and arg.dim() and arg.shape[0] == n else arg
        for arg in args
    )


def _is_every_class(target) -> bool:
    return isinstance(target, str) or (isinstance(target, torch.Tensor) and target.dim() == 2)


def _classes(selector: Selector, method: str) -> torch.Tensor:
    classes = selector.class_indices()
    if classes is None:
        raise TypeError(f"{method} explains one class score per sample; it cannot explain {selector!r}")
    return classes


def _warn_batch_coupled(model: nn.Module) -> None:
    if not any(module.training and isinstance(module, _BATCH_NORMS) for module in model.modules()):
        return
    training = [name for name, module in model.named_modules() if module.training and isinstance(module, _BATCH_NORMS)]
    if training:
        warnings.warn(
            f"{type(model).__name__} has BatchNorm in training mode ({', '.join(training[:3])}"
            f"{', ...' if len(training) > 3 else ''}): each sample's map depends on the rest of the batch. "
            "Call model.eval() to explain the model as it predicts",
            BatchCoupledWarning,
            stacklevel=4,  # the caller of attribute()
        )


_BATCH_NORMS = (nn.modules.batchnorm._BatchNorm,)


def _rebound(value, old: nn.Module, new: nn.Module):
    """``value`` with every method rebound to ``new`` and every reference to ``old`` replaced by it."""
    if isinstance(value, Attribution):
        return value.with_model(new)
    if value is old:
        return new
    if isinstance(value, (list, tuple)) and any(isinstance(v, Attribution) or v is old for v in value):
        return type(value)(_rebound(v, old, new) for v in value)
    if isinstance(value, Mapping) and any(isinstance(v, Attribution) or v is old for v in value.values()):
        return type(value)((k, _rebound(v, old, new)) for k, v in value.items())
    return value


class Attribution:
    """Base class of every decision-based method: configure in ``__init__``, explain with ``attribute``.

    Subclasses implement ``_attribute(run, **per_call) -> Tensor`` (maps, or ``(maps, delta)`` when
    asked for the convergence delta) and declare their capabilities below.

    Attributes
    ----------
    takes_baselines : bool
        ``attribute`` accepts ``baselines`` (the reference input).
    has_convergence_delta : bool
        ``attribute(..., return_convergence_delta=True)`` also returns the per-sample delta.
    multiplies_by_inputs : bool
        The map is a global attribution (multiplied by ``x − x'``), not a local sensitivity.
    needs_gradients : bool
        The method backpropagates (so it cannot run under ``torch.inference_mode()``).
    stochastic : bool
        The map depends on random draws (seeded: equal calls give equal maps).
    multiple_inputs : bool
        ``attribute`` takes a tuple of inputs (the model's first positional arguments) and returns a
        tuple of maps of the same shapes; ``baselines`` is then a matching tuple (or one number).
    maps_like_inputs : bool
        The maps have the inputs' shape (``False`` for layer attribution: the explained layer's shape).
    explains_every_class : bool
        ``_attribute`` handles ``target="all"`` / ``(N, K)`` itself (``run.classes``); otherwise the
        template repeats the batch once per class.
    renamed_arguments : dict
        Old per-call argument names, still accepted with a ``DeprecationWarning``: ``{old: new}``.
    perturbation_forwards : bool
        ``attribute`` runs the model without autograd on many perturbed copies of the batch, so that
        :meth:`Run.forward` gives them to a BatchNorm-folded copy of it (:mod:`~.inference`).
    """

    takes_baselines: bool = False
    has_convergence_delta: bool = False
    multiplies_by_inputs: bool = False
    needs_gradients: bool = True
    stochastic: bool = False
    min_input_dim: int = 2
    explains_every_class: bool = False
    multiple_inputs: bool = False
    maps_like_inputs: bool = True
    renamed_arguments: Mapping[str, str] = {}
    perturbation_forwards: bool = False

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model

    def attribute(self, inputs: torch.Tensor, target: Target = None, **kwargs):
        """Explain ``target`` for every sample of the batch ``inputs``; see the method's ``_attribute``."""
        name = type(self).__name__
        if kwargs.get("return_convergence_delta") and not self.has_convergence_delta:
            raise TypeError(f"{name} has no convergence delta; call attribute without return_convergence_delta")
        if not self.has_convergence_delta:
            kwargs.pop("return_convergence_delta", None)
        if _is_every_class(target) and not self.explains_every_class:
            return self._every_class(inputs, target, kwargs)
        return self._call(self._attribute, inputs, target, kwargs)

    def _every_class(self, inputs, target, kwargs: dict):
        """Maps ``(N, K, ...)`` for ``target="all"`` or an ``(N, K)`` tensor of classes, in batched calls.

        The batch is repeated once per column (copy-major), as many columns per call as fit the memory
        budget (:data:`~nn_interpretability.core.batching.CHUNK_ELEMENTS`), and each copy explains its
        column's class; per-sample arguments (baselines) repeat with the copies.
        """
        inputs = check_batch(inputs, self.min_input_dim)
        xs = inputs if isinstance(inputs, tuple) else (inputs,)
        n = xs[0].shape[0]
        extra = _additional_forward_args(kwargs.get("additional_forward_args"), n)
        with borrowed(self.model), torch.no_grad():
            output = forward_output(self.model, inputs, extra=extra)
        classes = every_class(target, output)
        k = classes.shape[1]
        wants_delta = bool(kwargs.get("return_convergence_delta"))
        maps, deltas = [], []
        for columns in chunks(k, chunk_size(sum(x.numel() for x in xs))):
            copies = len(columns)
            selector = ClassScore(classes[:, columns.start : columns.stop].T.reshape(-1)).bind(output.repeat(copies, 1))
            per_copy = repeat_per_sample(kwargs, n, copies, xs[0])
            per_copy["additional_forward_args"] = _repeat_rows(extra, n, copies)
            repeated = _repeat_rows(xs, n, copies)
            result = self._call(self._attribute, repeated if isinstance(inputs, tuple) else repeated[0], selector, per_copy)
            result, delta = result if wants_delta else (result, None)
            parts = result if isinstance(inputs, tuple) else (result,)
            maps.append([part.reshape(copies, n, *part.shape[1:]) for part in parts])
            if delta is not None:
                deltas.append(delta.reshape(copies, n))
        maps = tuple(torch.cat(column).movedim(0, 1) for column in zip(*maps))
        maps = maps if isinstance(inputs, tuple) else maps[0]
        return (maps, torch.cat(deltas).T) if wants_delta else maps

    def _call(self, body, inputs, target: Target, kwargs: dict):
        """The template: translate old argument names, validate, borrow the model, run ``body(run, **kwargs)``."""
        name = type(self).__name__
        kwargs = translate(kwargs, self.renamed_arguments, f"{name}.{body.__name__.lstrip('_')}", stacklevel=3)
        if isinstance(inputs, (tuple, list)) and not self.multiple_inputs:
            raise TypeError(
                f"{name} explains one input tensor, got a {type(inputs).__name__} of {len(inputs)}; pass the other "
                "arguments of the model as additional_forward_args"
            )
        inputs = check_batch(inputs, self.min_input_dim)
        n = (inputs[0] if isinstance(inputs, tuple) else inputs).shape[0]
        additional = _additional_forward_args(kwargs.pop("additional_forward_args", None), n)
        if self.needs_gradients and torch.is_inference_mode_enabled():
            raise RuntimeError(
                f"{name} backpropagates through the model, which torch.inference_mode() forbids: call attribute "
                "outside the inference_mode block (torch.no_grad() around it is fine)"
            )
        _warn_batch_coupled(self.model)
        wants_delta = bool(kwargs.get("return_convergence_delta"))
        with borrowed(self.model) as borrow:
            run = Run(self.model, inputs, target, borrow, name, additional, fold=self.perturbation_forwards)
            result = body(run, **kwargs)
        maps, delta = result if wants_delta else (result, None)
        if isinstance(inputs, tuple):
            maps = tuple(_as_input_dtype(m, x) for m, x in zip(maps, inputs))
        else:
            maps = _as_input_dtype(maps, inputs)
        return (maps, delta) if wants_delta else maps

    def _attribute(self, run: Run, **kwargs):
        raise NotImplementedError

    def with_model(self, model: nn.Module) -> "Attribution":
        """A copy of this method explaining ``model``; inner methods are rebound too, recursively."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        clone = copy.copy(self)
        clone.__dict__ = {key: _rebound(value, self.model, model) for key, value in self.__dict__.items()}
        clone._rebind(model)
        return clone

    def _rebind(self, model: nn.Module) -> None:
        """Adjust references into the model other than the model itself (e.g. a layer) after :meth:`with_model`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"


def _as_input_dtype(maps, inputs: torch.Tensor):
    if isinstance(maps, torch.Tensor) and maps.is_floating_point() and maps.dtype != inputs.dtype:
        return maps.to(inputs.dtype)
    return maps
