"""The template ``attribute`` (the contract suite checks the rest): clear errors for dtypes, the BatchNorm warning, half
precision, deprecated argument names, progress defaults and ``with_model``."""
import warnings

import pytest
import torch
from torch import nn

import nn_interpretability as nni
from nn_interpretability.core import progress as progress_module
from nn_interpretability.core.base import BatchCoupledWarning
from nn_interpretability.core.inference import inference_copy, worth_a_copy
from nn_interpretability.core.vocabulary import renamed_arguments
from toy_models import mnist_cnn, mnist_like_batch, residual_bn_net

def test_no_grad_around_a_gradient_method_is_fine():
    model = mnist_cnn()
    with torch.no_grad():
        maps = nni.Saliency(model).attribute(mnist_like_batch(2), target=1)
    assert maps.abs().sum() > 0


def test_dtype_mismatch_names_both_dtypes():
    with pytest.raises(TypeError, match=r"inputs are torch.float32 but the model's parameters are torch.float64"):
        nni.Saliency(mnist_cnn()).attribute(mnist_like_batch(2, dtype=torch.float32), target=0)


def test_batchnorm_in_training_mode_warns():
    model = residual_bn_net().train()
    with pytest.warns(BatchCoupledWarning, match=r"BatchNorm in training mode \(bn1, bn2\).*model.eval\(\)"):
        nni.Saliency(model).attribute(mnist_like_batch(2), target=0)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchCoupledWarning)
        nni.Saliency(model).attribute(mnist_like_batch(2), target=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("method", ["integrated-gradients", "smoothgrad"])
def test_half_precision_returns_the_input_dtype_and_accumulates_in_float32(method, dtype):
    reference_model = mnist_cnn().float()
    half_model = mnist_cnn().to(dtype)
    x = mnist_like_batch(2, dtype=torch.float32)
    build = {
        "integrated-gradients": lambda m: (nni.IntegratedGradients(m), {"n_steps": 8}),
        "smoothgrad": lambda m: (nni.SmoothGrad(nni.Saliency(m), nt_samples=4, stdevs=0.0), {}),
    }[method]
    (ours, kwargs), (reference, _) = build(half_model), build(reference_model)
    maps = ours.attribute(x.to(dtype), target=3, **kwargs)
    expected = reference.attribute(x, target=3, **kwargs)
    assert maps.dtype == dtype
    # Half-precision forwards carry about 3 significant digits; the accumulation adds no error of its own.
    assert torch.corrcoef(torch.stack([maps.float().flatten(), expected.flatten()]))[0, 1] > 0.98


def test_renamed_arguments_warn_and_still_work():
    @renamed_arguments(old="new")
    def f(new=1):
        return new

    with pytest.warns(DeprecationWarning, match="'old' is deprecated.*use 'new'"):
        assert f(old=5) == 5
    with pytest.raises(TypeError, match="both 'old' and its new name 'new'"):
        f(old=1, new=2)


def test_old_method_argument_names_warn_and_give_the_same_maps():
    model, x = mnist_cnn(), mnist_like_batch(2)
    with pytest.warns(DeprecationWarning, match="'nt_samples_batch_size' is deprecated"):
        old = nni.SmoothGrad(nni.Saliency(model), nt_samples=3, nt_samples_batch_size=1)
    assert old.internal_batch_size == 1
    torch.testing.assert_close(old.attribute(x), nni.SmoothGrad(nni.Saliency(model), nt_samples=3).attribute(x))
    with pytest.warns(DeprecationWarning, match="'root' is deprecated"):
        taylor = nni.SimpleTaylor(model, root=0.5)
    torch.testing.assert_close(taylor.attribute(x), nni.SimpleTaylor(model, baselines=0.5).attribute(x))
    lime = nni.Lime(model, segmentation="grid", n_samples=8, cell_size=7)
    with pytest.warns(DeprecationWarning, match="Lime.attribute: 'batch_size' is deprecated"):
        old_maps = lime.attribute(x, batch_size=3)
    torch.testing.assert_close(old_maps, lime.attribute(x, perturbations_per_eval=3))


def test_progress_defaults_to_off_in_report_builds_and_when_nobody_watches(monkeypatch):
    monkeypatch.setenv(progress_module.REPORT_BUILD_VARIABLE, "1")
    assert not progress_module.interactive()
    monkeypatch.delenv(progress_module.REPORT_BUILD_VARIABLE)
    monkeypatch.setattr(progress_module.sys, "stderr", open("/dev/null", "w"))
    assert not progress_module.interactive()  # pytest imports ipykernel (nbval) but runs no kernel
    assert progress_module.progress(range(3), "x", show_progress=None).disable == (not progress_module.interactive())
    assert not progress_module.progress(range(3), "x", show_progress=True).disable


class _Scaled(nn.Module):
    def __init__(self, model, factor):
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, x):
        return self.model(x) * self.factor


def test_with_model_rebinds_inner_methods_and_layers():
    model = mnist_cnn()
    wrapped = _Scaled(model, 3.0)
    x = mnist_like_batch(2)
    smooth = nni.SmoothGrad(nni.IntegratedGradients(model), nt_samples=2)
    rebound = smooth.with_model(wrapped)
    assert rebound.model is wrapped and rebound.method.model is wrapped and smooth.method.model is model
    torch.testing.assert_close(rebound.attribute(x, target=1, n_steps=4), 3 * smooth.attribute(x, target=1, n_steps=4))
    guided = nni.GuidedGradCAM(model, "features.3").with_model(wrapped)
    assert guided.grad_cam.model is wrapped and guided.guided.model is wrapped
    assert guided.grad_cam.layer is model.features[3] and guided.grad_cam.layer_name == "model.features.3"
    torch.testing.assert_close(guided.attribute(x, target=1), nni.GuidedGradCAM(wrapped, "model.features.3").attribute(x, target=1))


class _LayoutProbe(nn.Module):
    """A small RGB CNN that records the memory layout of every input it gets; ``flat_view`` makes it ``view`` its input."""

    def __init__(self, flat_view: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.linear = nn.Linear(4 * 8 * 8, 3)
        self.flat_view = flat_view
        self.layouts = []

    def forward(self, x):
        self.layouts.append("channels_last" if x.is_contiguous(memory_format=torch.channels_last) else "contiguous")
        if self.flat_view:
            x = x.view(x.shape[0], -1).view(x.shape)  # a view needs the contiguous layout
        return self.linear(self.conv(x).relu().flatten(1))


def _rgb_batch():
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("method", ["occlusion", "score-cam"])
def test_perturbation_forwards_take_channels_last_images_and_gradients_keep_the_layout(method):
    model = _LayoutProbe().double()
    init = {"layer": "conv"} if method == "score-cam" else {}
    options = {"sliding_window_shapes": (3, 2, 2)} if method == "occlusion" else {}
    maps = nni.get_method(method)(model, **init).attribute(_rgb_batch(), target=1, **options)
    assert maps.is_contiguous() and "channels_last" in model.layouts
    model.layouts.clear()
    gradients = nni.Saliency(model).attribute(_rgb_batch(), target=1)
    assert model.layouts == ["contiguous"] and gradients.is_contiguous()


def test_a_model_that_views_its_input_gets_its_perturbed_copies_contiguous_with_the_same_maps():
    viewing, plain = _LayoutProbe(flat_view=True).double(), _LayoutProbe().double()
    options = {"sliding_window_shapes": (3, 2, 2), "perturbations_per_eval": 4}
    maps = nni.Occlusion(viewing).attribute(_rgb_batch(), target=1, **options)
    # The first forward is tried channels-last, fails in the view, and runs again as given, as do all after it.
    assert viewing.layouts[0] == "channels_last" and set(viewing.layouts[1:]) == {"contiguous"}
    torch.testing.assert_close(maps, nni.Occlusion(plain).attribute(_rgb_batch(), target=1, **options), rtol=1e-12, atol=1e-12)


class _CountingBNNet(nn.Module):
    """An RGB CNN with BatchNorm (eval mode) that counts the calls of its Python forward."""

    def __init__(self, branch_on_data: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.linear = nn.Linear(4 * 8 * 8, 3)
        with torch.no_grad():  # statistics and an affine map that are not the identity
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.5, 0.5)
        self.branch_on_data = branch_on_data
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        h = self.bn(self.conv(x)).relu()
        if self.branch_on_data and h.sum() < 0:  # data-dependent control flow: torch.fx cannot trace it
            h = -h
        return self.linear(h.flatten(1))


@pytest.mark.parametrize("method", ["shapley-value-sampling", "occlusion", "score-cam"])
def test_perturbation_forwards_run_a_batch_norm_folded_copy_with_the_same_maps(method):
    folded, hooked = _CountingBNNet().double().eval(), _CountingBNNet().double().eval()
    hooked.register_forward_hook(lambda module, args, output: None)  # a hook keeps the forwards on the model
    init = {"score-cam": {"layer": "bn"}, "shapley-value-sampling": {"n_samples": 2}}.get(method, {})
    options = {
        "occlusion": {"sliding_window_shapes": (3, 2, 2), "perturbations_per_eval": 4},
        "shapley-value-sampling": {"perturbations_per_eval": 16},
        "score-cam": {"internal_batch_size": 2},
    }[method]
    maps = nni.get_method(method)(folded, **init).attribute(_rgb_batch(), target=1, **options)
    reference = nni.get_method(method)(hooked, **init).attribute(_rgb_batch(), target=1, **options)
    torch.testing.assert_close(maps, reference, rtol=1e-10, atol=1e-12)
    # The model's own forward ran for the first batch (the copy is checked against it) and for the trace.
    assert folded.calls <= 3 < hooked.calls
    assert not folded.bn.training and folded._forward_hooks == {}  # the model comes back as it was


class _CountingGreyCNN(nn.Module):
    """A one-channel CNN without BatchNorm (the MNIST CNN's kind) that counts the calls of its Python forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.pool, self.linear = nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Linear(4 * 4 * 4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.linear(self.pool(self.conv(x).relu()).flatten(1))


def test_a_one_channel_cnn_without_batch_norm_runs_its_perturbation_forwards_in_a_channels_last_copy():
    grey = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model, hooked = _CountingGreyCNN().double().eval(), _CountingGreyCNN().double().eval()
    hooked.register_forward_hook(lambda module, args, output: None)
    options = {"sliding_window_shapes": (1, 2, 2), "perturbations_per_eval": 4}
    maps = nni.Occlusion(model).attribute(grey, target=1, **options)
    torch.testing.assert_close(maps, nni.Occlusion(hooked).attribute(grey, target=1, **options), rtol=1e-10, atol=1e-12)
    assert model.calls <= 3 < hooked.calls  # the check, the trace; then the copy ran every forward
    assert model.conv.weight.is_contiguous()  # the model's own weights are untouched
    # A one-channel batch is in both layouts; the copy's weights make its activations channels-last.
    activation = inference_copy(model, channels_last=True).conv(grey)
    assert activation.is_contiguous(memory_format=torch.channels_last) and not activation.is_contiguous()
    assert model.conv(grey).is_contiguous()


def test_a_copy_is_made_only_where_it_can_help():
    cnn, mlp = _CountingGreyCNN().eval(), nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    assert worth_a_copy(cnn, channels_last=True) and not worth_a_copy(cnn, channels_last=False)
    assert not worth_a_copy(mlp, channels_last=True)  # nothing to fold, no weight to lay out
    assert worth_a_copy(_CountingBNNet().eval(), channels_last=False)  # a BatchNorm to fold
    assert not worth_a_copy(_CountingBNNet().train(), channels_last=False)


def test_a_model_torch_fx_cannot_trace_keeps_its_perturbation_forwards():
    model = _CountingBNNet(branch_on_data=True).double().eval()
    options = {"sliding_window_shapes": (3, 2, 2), "perturbations_per_eval": 4}
    maps = nni.Occlusion(model).attribute(_rgb_batch(), target=1, **options)
    passes = model.calls
    assert passes > 3
    hooked = _CountingBNNet(branch_on_data=True).double().eval()
    hooked.register_forward_hook(lambda module, args, output: None)
    torch.testing.assert_close(maps, nni.Occlusion(hooked).attribute(_rgb_batch(), target=1, **options), rtol=0, atol=0)


def test_gradient_methods_and_train_mode_models_run_the_model_itself():
    model = _CountingBNNet().double().eval()
    nni.Saliency(model).attribute(_rgb_batch(), target=1)
    assert model.calls == 1
    model.train()
    with pytest.warns(BatchCoupledWarning):
        nni.Occlusion(model).attribute(_rgb_batch(), target=1, sliding_window_shapes=(3, 2, 2), perturbations_per_eval=4)
    assert model.calls > 4 and model.training
