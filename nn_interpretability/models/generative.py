"""Generative models of MNIST for activation maximization in code space and with an expert (section 2.1.1).

A variational autoencoder's decoder and a DCGAN (Kingma & Welling 2014; Radford et al. 2016) provide
the generators ``g(z)`` of AM in code space (report eq. 2, Fig. 3); probabilistic PCA (Tipping & Bishop
1999) provides the density ``p(x)`` of AM with an expert (eq. 3). All are trained or fitted by this package, so the
zoo needs no downloaded weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.progress import progress

LATENT_DIM = 32


class VAE(nn.Module):
    """A small variational autoencoder (Kingma & Welling 2014); its decoder is the first generator of Fig. 3.

    A fully connected GAN trained on the 4,000 embedded digits collapses onto one or two digit classes;
    the VAE's decoder is the stable simple generator in its place. ``decode(z)`` maps ``z ∈ R^d`` to a
    28×28 image in [0, 1]; ``forward`` is the decoder, so the module can be handed to
    :class:`~nn_interpretability.feature_visualization.CodeSpaceActivationMaximization` directly.
    """

    def __init__(self, latent_dim: int = LATENT_DIM):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 400), nn.ReLU(), nn.Linear(400, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 400), nn.ReLU(), nn.Linear(400, 28 * 28))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z | x)``."""
        return self.encoder(x).chunk(2, dim=1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(-1, 1, 28, 28)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The evidence lower bound per image (Bernoulli likelihood, one sample of z), in nats."""
        mean, log_var = self.encode(x)
        noise = torch.randn(mean.shape, generator=generator).to(mean)
        z = mean + noise * (0.5 * log_var).exp()
        likelihood = -F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        return likelihood - kl


def train_vae(vae: VAE, images: torch.Tensor, epochs: int, seed: int = 0, lr: float = 1e-3, batch_size: int = 64) -> VAE:
    """Maximise the ELBO with Adam; reproducible for a given ``seed``; returns the VAE in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
        vae.train()
        steps = epochs * math.ceil(len(images) / batch_size)
        with progress(None, "VAE", total=steps, unit="batch") as bar:
            for _ in range(epochs):
                order = torch.randperm(len(images), generator=generator)
                for start in range(0, len(images), batch_size):
                    loss = -vae.elbo(images[order[start : start + batch_size]], generator).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    bar.update()
                bar.set_postfix(elbo=f"{-loss.item():.1f}")
    return vae.eval()


class DCGANGenerator(nn.Module):
    """``z -> 7×7×64 -> 14×14×32 -> 28×28`` with transposed convolutions and BatchNorm (Radford et al.)."""

    def __init__(self, latent_dim: int = LATENT_DIM):
        super().__init__()
        self.latent_dim = latent_dim
        self.project = nn.Sequential(nn.Linear(latent_dim, 64 * 7 * 7), nn.BatchNorm1d(64 * 7 * 7), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid(),
        )

    def forward(self, z):
        return self.net(self.project(z).view(-1, 64, 7, 7))


class DCGANDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(1)


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    images: torch.Tensor,
    epochs: int,
    seed: int = 0,
    lr: float = 2e-4,
    batch_size: int = 64,
    desc: str = "GAN",
) -> nn.Module:
    """Adversarial training with the non-saturating loss and Adam(β₁ = 0.5); returns the generator in eval mode.

    Real labels are smoothed to 0.9 (Salimans et al. 2016), which keeps the small discriminator from
    overpowering the generator on the 4,000-image training split. Reproducible for a given ``seed``.
    """
    generator_rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        optimizer_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
        optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
        generator.train(), discriminator.train()
        steps = epochs * math.ceil(len(images) / batch_size)
        with progress(None, desc, total=steps, unit="batch") as bar:
            for _ in range(epochs):
                order = torch.randperm(len(images), generator=generator_rng)
                for start in range(0, len(images), batch_size):
                    real = images[order[start : start + batch_size]]
                    z = torch.randn(len(real), generator.latent_dim, generator=generator_rng)
                    fake = generator(z)
                    loss_d = F.binary_cross_entropy_with_logits(
                        discriminator(real), torch.full((len(real),), 0.9)
                    ) + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), torch.zeros(len(real)))
                    optimizer_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    optimizer_d.step()
                    loss_g = F.binary_cross_entropy_with_logits(discriminator(fake), torch.ones(len(real)))
                    optimizer_g.zero_grad(set_to_none=True)
                    loss_g.backward()
                    optimizer_g.step()
                    bar.update()
                bar.set_postfix(d=f"{loss_d.item():.2f}", g=f"{loss_g.item():.2f}")
    return generator.eval()


class PPCA(nn.Module):
    """Probabilistic PCA: ``x ~ N(μ, W Wᵀ + σ² I)`` (Tipping & Bishop 1999), a density for AM with an expert.

    :meth:`fit` is the closed-form maximum-likelihood solution: ``W = U_k (Λ_k − σ² I)^{1/2}`` from the
    top ``k`` eigenpairs of the sample covariance and ``σ²`` the mean of the remaining eigenvalues.
    :meth:`log_prob` is differentiable in ``x`` (Woodbury identity and the matrix determinant lemma).
    """

    def __init__(self, dim: int = 28 * 28, n_components: int = 40):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("components", torch.zeros(dim, n_components))
        self.register_buffer("noise_variance", torch.ones(()))

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> "PPCA":
        x = images.flatten(1).double()
        mean = x.mean(0)
        _, singular, vectors = torch.linalg.svd(x - mean, full_matrices=False)
        eigenvalues = singular**2 / (len(x) - 1)
        k, dim = self.components.shape[1], x.shape[1]
        noise = eigenvalues[k:].sum() / (dim - k)
        self.mean.copy_(mean)
        self.components.copy_(vectors[:k].T * (eigenvalues[:k] - noise).clamp(min=0).sqrt())
        self.noise_variance.copy_(noise)
        return self

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log N(x; μ, W Wᵀ + σ² I)`` per image of a batch ``(N, ...)``, in nats."""
        centred = x.flatten(1).to(self.mean.dtype) - self.mean
        w, s2 = self.components, self.noise_variance
        dim, k = w.shape
        inner = torch.eye(k, dtype=w.dtype, device=w.device) * s2 + w.T @ w  # M = σ²I + WᵀW
        projected = centred @ w
        mahalanobis = (centred.pow(2).sum(1) - (projected * torch.linalg.solve(inner, projected.T).T).sum(1)) / s2
        log_det = torch.logdet(inner) + (dim - k) * torch.log(s2)
        return -0.5 * (mahalanobis + log_det + dim * math.log(2 * math.pi))

    def forward(self, x):
        return self.log_prob(x)
