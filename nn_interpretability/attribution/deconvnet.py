"""DeconvNet: reconstruct the input from one layer's response through a mirrored network (section 2.2.2)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.base import check_inputs
from ..core.hooks import borrowed
from ..core.layers import find_layer

KEEP = ("all", "max")
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)
_IDENTITIES = (nn.Dropout, nn.Dropout2d, nn.Identity)


@dataclass
class _Step:
    name: str
    module: nn.Module
    inputs: torch.Tensor
    output: torch.Tensor


class DeconvNetReconstruction:
    """Zeiler & Fergus 2014: map a layer's response back to input space with a mirrored network.

    The report's section 2.2.2 and Fig. 8. The forward pass records, for every module between the input
    and ``layer``, its input and output, and for max-pooling the switches (where each maximum came
    from). The mirrored pass then runs the modules in reverse order: max-unpooling puts each value back
    at its switch, a ReLU rectifies the signal, a convolution or linear layer is replaced by its
    transpose with the model's own weights (biases are not added back: the mirror maps signals, not
    activations), Flatten is undone and dropout in eval mode is the identity.

    The path from the input to ``layer`` must be a chain of modules (each consuming the previous one's
    output) of the kinds above; anything else — a residual addition, a functional call between modules,
    BatchNorm, another layer type — raises an error naming the module.

    Parameters
    ----------
    model : nn.Module
        The network; left unchanged.
    layer : nn.Module or str
        The layer whose response is reconstructed, as a module of ``model`` or its dotted name
        (e.g. ``"features.4"``).
    """

    def __init__(self, model: nn.Module, layer):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.layer_name, self.layer = find_layer(model, layer)

    def _record(self, inputs: torch.Tensor) -> list[_Step]:
        steps: list[_Step] = []
        names = {module: name for name, module in self.model.named_modules()}

        class _Reached(Exception):
            pass

        def record(module, args, output):
            steps.append(_Step(names[module], module, args[0], output))
            if module is self.layer:
                raise _Reached

        leaves = [m for m in self.model.modules() if not list(m.children()) or m is self.layer]
        with borrowed(self.model):
            self.model.eval()  # the mirror treats dropout as the identity and BatchNorm is rejected anyway
            for module in leaves:
                module.register_forward_hook(record)
            try:
                with torch.no_grad():
                    self.model(inputs)
            except _Reached:
                pass
            else:
                raise ValueError(f"the forward pass never reached layer {self.layer_name!r}")
        if steps[0].inputs is not inputs:
            raise ValueError(
                f"{steps[0].name!r} is not applied to the model's input: the path to the layer must be a chain of modules"
            )
        for previous, step in zip(steps, steps[1:]):
            if step.inputs is not previous.output:
                raise ValueError(
                    f"module {step.name!r} does not consume the output of {previous.name!r} (a functional call or a "
                    "branch lies between them): DeconvNetReconstruction needs a chain of modules up to the layer"
                )
        return steps

    @staticmethod
    def _mirror(step: _Step, signal: torch.Tensor) -> torch.Tensor:
        module = step.module
        if isinstance(module, _ACTIVATIONS):
            return signal.clamp(min=0)
        if isinstance(module, _IDENTITIES):
            return signal
        if isinstance(module, nn.Flatten):
            return signal.reshape(step.inputs.shape)
        if isinstance(module, nn.MaxPool2d):
            _, switches = F.max_pool2d(
                step.inputs, module.kernel_size, module.stride, module.padding, module.dilation,
                ceil_mode=module.ceil_mode, return_indices=True,
            )
            return F.max_unpool2d(
                signal, switches, module.kernel_size, module.stride, module.padding, output_size=step.inputs.shape[-2:]
            )
        if isinstance(module, nn.Conv2d):
            if module.padding_mode != "zeros" or isinstance(module.padding, str) and module.padding != "valid":
                raise ValueError(f"module {step.name!r}: only zero padding given as numbers is supported")
            return torch.nn.grad.conv2d_input(
                step.inputs.shape, module.weight, signal, module.stride, module.padding, module.dilation, module.groups
            )
        if isinstance(module, nn.Linear):
            return signal @ module.weight
        raise ValueError(
            f"DeconvNetReconstruction cannot mirror module {step.name!r} ({type(module).__name__}); supported: Conv2d, "
            "Linear, MaxPool2d, ReLU, ReLU6, LeakyReLU, Flatten, Dropout in eval mode"
        )

    def reconstruct(self, inputs: torch.Tensor, filter: int | None = None, keep: str = "all") -> torch.Tensor:
        """Project the layer's response (or one filter of it) back to the input space.

        Parameters
        ----------
        inputs : Tensor
            Batch ``(N, ...)``.
        filter : int or sequence of int, optional
            Keep only this channel (feature map or unit) of the layer's response, one for all samples or
            one per sample: the partial reconstruction of one filter (report Fig. 8, right), or of the
            predicted class's unit at the output layer. ``None`` keeps every channel.
        keep : str
            ``"all"`` keeps the whole response (of ``filter`` if given); ``"max"`` keeps only its
            strongest activation per sample, Zeiler & Fergus's projection of a single activation.

        Returns
        -------
        Tensor with the shape of ``inputs``
        """
        inputs = check_inputs(inputs)
        if keep not in KEEP:
            raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
        steps = self._record(inputs)
        response = steps[-1].output
        signal = response.clone()
        if filter is not None:
            channels, n = response.shape[1], response.shape[0]
            filters = torch.as_tensor(filter, device=response.device).reshape(-1)
            if filters.is_floating_point() or filters.dtype == torch.bool or filters.numel() not in (1, n):
                raise ValueError(f"filter must be an int or one int per sample (N = {n}), got {filter!r}")
            if ((filters < 0) | (filters >= channels)).any():
                raise ValueError(f"filter must be a channel index in 0..{channels - 1} of layer {self.layer_name!r}, got {filter!r}")
            rows = torch.arange(n, device=response.device)
            filters = filters.expand(n)
            signal = torch.zeros_like(response)
            signal[rows, filters] = response[rows, filters]
        if keep == "max":
            flat = signal.flatten(1)
            strongest = flat.argmax(1, keepdim=True)
            signal = torch.zeros_like(flat).scatter_(1, strongest, flat.gather(1, strongest)).view_as(signal)
        with torch.no_grad():
            for step in reversed(steps):
                signal = self._mirror(step, signal)
        return signal

    def __repr__(self) -> str:
        return f"DeconvNetReconstruction({type(self.model).__name__}, layer={self.layer_name!r})"
