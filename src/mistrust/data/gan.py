"""A small DCGAN that produces fake in-distribution images ("GAN fakes").

The paper uses class-conditional StyleGAN2-ADA CIFAR-10 fakes; this module
trains a compact stand-in on whatever images the caller passes (keep them
disjoint from the target's members, e.g. the shadow split). It is
class-conditional when ``labels`` are given (projection discriminator, one-hot
class input to the generator) and unconditional otherwise.

Generator interface (shared by the built-in generator and user-supplied ones,
see ``load_generator_module``): a ``torch.nn.Module`` with an ``int``
attribute ``z_dim`` whose ``forward(z)`` maps latents ``(N, z_dim)`` to images
``(N, C, H, W)`` in ``[-1, 1]``. If it also has an attribute ``c_dim`` (the
StyleGAN2-ADA convention) it is called as ``forward(z, c)``: ``c`` is a one-hot
class matrix ``(N, c_dim)`` when ``c_dim > 0`` (classes drawn uniformly unless
the caller picks them) and None when ``c_dim == 0``. Other options, such as
StyleGAN's truncation ``psi``, belong in a small wrapper module.

Native sizes are 28x28 and 32x32. Images of any other size are resized to
32x32 for training; the generator remembers the original size in ``out_size``
and ``sample_gan`` resizes its outputs back to it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import pickle
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mistrust.io import atomic_torch_save

log = logging.getLogger(__name__)

# 2: trained with one torch thread on a CPU, so the bytes no longer depend on the core
# count; a generator cached by format 1 (trained with all threads) is trained again
CACHE_FORMAT = 2
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 32
DEFAULT_LR = 5e-4
NATIVE_SIZES = {28: (7, 2), 32: (4, 3)}  # size -> (start size, number of 2x upsamplings)
FALLBACK_SIZE = 32


def _plan(size: int) -> tuple[int, int]:
    if size not in NATIVE_SIZES:
        raise ValueError(f"native GAN sizes are {sorted(NATIVE_SIZES)}, got {size}")
    return NATIVE_SIZES[size]


class Generator(nn.Module):
    """DCGAN generator: ``z (N, z_dim)`` [+ one-hot ``c (N, c_dim)``] -> ``(N, C, S, S)`` in [-1, 1]."""

    def __init__(
        self,
        *,
        z_dim: int,
        channels: int,
        size: int,
        c_dim: int = 0,
        width: int = 16,
        out_size: int | None = None,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.channels, self.size = z_dim, c_dim, channels, size
        self.out_size = out_size or size
        start, n_up = _plan(size)
        chans = [width * 2 ** (n_up - i) for i in range(n_up)]  # e.g. 28: [4w, 2w]
        self.start, self.chans0 = start, chans[0]
        self.fc = nn.Sequential(
            nn.Linear(z_dim + c_dim, chans[0] * start * start, bias=False),
            nn.BatchNorm1d(chans[0] * start * start),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for cin, cout in pairwise(chans):  # nearest 2x + 3x3 conv: no checkerboard
            layers += [
                nn.Upsample(scale_factor=2),
                nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.Upsample(scale_factor=2), nn.Conv2d(chans[-1], channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.c_dim:
            if c is None:
                raise ValueError("class-conditional generator needs one-hot c (N, c_dim)")
            z = torch.cat([z, c.to(z.dtype)], dim=1)
        h = self.fc(z).view(-1, self.chans0, self.start, self.start)
        if self.net[1].weight.is_contiguous(memory_format=torch.channels_last):
            # as train_gan runs it: convert the small map, not the upsampled one the first
            # convolution would convert (1.10x a training step, the same bits: BENCHMARKS.md)
            h = h.contiguous(memory_format=torch.channels_last)
        return self.net(h)


class Discriminator(nn.Module):
    """DCGAN discriminator with a class projection: ``(N, C, S, S)`` -> logits ``(N,)``."""

    def __init__(self, *, channels: int, size: int, c_dim: int = 0, width: int = 16) -> None:
        super().__init__()
        start, n_down = _plan(size)
        chans = [width * 2**i for i in range(n_down)]  # e.g. 28: [w, 2w]
        layers: list[nn.Module] = [
            nn.Conv2d(channels, chans[0], 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for cin, cout in pairwise(chans):
            layers += [
                nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        self.net = nn.Sequential(*layers, nn.Flatten())
        features = chans[-1] * start * start
        self.out = nn.Linear(features, 1)
        self.embed = nn.Linear(c_dim, features, bias=False) if c_dim else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.net(x)
        logit = self.out(h).squeeze(1)
        if self.embed is not None and c is not None:
            logit = logit + (self.embed(c) * h).sum(1)
        return logit


def _prepare(images: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """uint8 ``(N, C, H, W)`` -> float in [-1, 1] at a native size, native size, original size."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(
            f"images must be square uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    size = images.shape[-1]
    x = images.float().div_(127.5).sub_(1.0)
    native = size if size in NATIVE_SIZES else FALLBACK_SIZE
    if native != size:
        x = F.interpolate(
            x, size=(native, native), mode="bilinear", align_corners=False, antialias=True
        ).clamp_(-1, 1)
    return x, native, size


def _rng_devices(device: str) -> list[int]:
    dev = torch.device(device)
    return [dev.index or 0] if dev.type == "cuda" else []


@contextmanager
def _one_cpu_thread(device: str) -> Iterator[None]:
    """One torch thread inside (on a CPU), the caller's count again after."""
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_gan(
    images: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    latent_dim: int = 64,
    width: int = 16,
    lr: float = DEFAULT_LR,
    seed: int = 42,
    device: str = "cpu",
    progress: bool = False,
) -> Generator:
    """Train a DCGAN on ``images`` (uint8 ``(N, C, H, W)``); return the generator in eval mode.

    labels: ``(N,)`` int64 class indices to train a class-conditional GAN, or
    None. width: channels of the narrowest layer (generator ``4w -> 2w`` at
    28x28, ``8w -> 4w -> 2w`` at 32x32; discriminator mirrored). Adam with
    betas (0.5, 0.999), non-saturating loss, one-sided label smoothing (real
    target 0.9). The defaults (20 epochs, batch 32, lr 5e-4) give recognisable
    Fashion-MNIST clothing from 4,000 images in a few CPU minutes; the DCGAN
    default lr 2e-4 at batch 64 was still blurry after 20 epochs. The global RNG
    is left untouched. On a CPU it trains with one torch thread whatever the
    machine, so the same seed gives the same weights everywhere (on CPUs of one
    kind) and a run can train it beside the models, one core each (BENCHMARKS.md).
    """
    if epochs < 0 or batch_size < 2:
        raise ValueError(f"need epochs >= 0 and batch_size >= 2, got {epochs} and {batch_size}")
    x, native, orig = _prepare(images)
    n = len(x)
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    if n < 2:
        raise ValueError(f"need at least 2 images to train a GAN, got {n}")
    c_all = None
    c_dim = 0
    if labels is not None:
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.min() < 0:
            raise ValueError("labels must be non-negative class indices")
        c_dim = int(labels.max()) + 1
        c_all = F.one_hot(labels, c_dim).float()
    with _one_cpu_thread(device), torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        g_net = Generator(
            z_dim=latent_dim,
            channels=x.shape[1],
            size=native,
            c_dim=c_dim,
            width=width,
            out_size=orig,
        ).to(device)
        d_net = Discriminator(channels=x.shape[1], size=native, c_dim=c_dim, width=width).to(device)
        # channels-last convolutions and fused Adam: 1.96x on CPU (BENCHMARKS.md); the
        # generator goes back to the contiguous layout below, as a cached one loads
        g_net.to(memory_format=torch.channels_last)
        d_net.to(memory_format=torch.channels_last)
        fused = {"fused": True} if torch.device(device).type in ("cpu", "cuda") else {}
        opt_g = torch.optim.Adam(g_net.parameters(), lr=lr, betas=(0.5, 0.999), **fused)
        opt_d = torch.optim.Adam(d_net.parameters(), lr=lr, betas=(0.5, 0.999), **fused)
        bce = nn.BCEWithLogitsLoss()
        steps = range(epochs)
        if progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc="GAN", unit="epoch")
        start = time.perf_counter()
        for epoch in steps:
            order = torch.randperm(n, generator=gen)
            for i in range(0, n - 1, batch_size):
                idx = order[i : i + batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                real = x[idx].to(device).contiguous(memory_format=torch.channels_last)
                c = c_all[idx].to(device) if c_all is not None else None
                z = torch.randn(len(idx), latent_dim, generator=gen).to(device)
                fake = g_net(z, c)
                ones = torch.ones(len(idx), device=device)
                loss_d = bce(d_net(real, c), 0.9 * ones) + bce(d_net(fake.detach(), c), 0 * ones)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                loss_g = bce(d_net(fake, c), ones)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
            d, g = loss_d.item(), loss_g.item()
            log.debug("GAN: epoch %d/%d loss_d %.3f loss_g %.3f", epoch + 1, epochs, d, g)
            if progress:
                steps.set_postfix(loss_d=f"{d:.3f}", loss_g=f"{g:.3f}")
    log.debug(
        "trained GAN in %.1f s (%d images, %d epochs, %s)",
        time.perf_counter() - start,
        n,
        epochs,
        "conditional" if c_dim else "unconditional",
    )
    return g_net.to(memory_format=torch.contiguous_format).eval()


def sample_gan(
    generator: nn.Module,
    n: int,
    *,
    seed: int,
    size: int | None = None,
    classes: torch.Tensor | None = None,
    batch_size: int = 512,
) -> torch.Tensor:
    """Draw ``n`` fakes: uint8 ``(n, C, size, size)``, deterministic for ``seed``.

    size: output side length; None uses the generator's ``out_size`` if it has
    one, else its native output. classes: ``(n,)`` int64 class of each fake for
    a class-conditional generator (``c_dim > 0``); None draws them uniformly
    from the seed. Runs in eval mode under ``torch.inference_mode``.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    z_dim = getattr(generator, "z_dim", None)
    if not isinstance(z_dim, int):
        raise ValueError("generator must have an int attribute z_dim (see module docstring)")
    has_c = hasattr(generator, "c_dim")
    c_dim = int(getattr(generator, "c_dim", 0) or 0)
    if classes is not None and not c_dim:
        raise ValueError("classes given but the generator is unconditional (c_dim = 0)")
    if classes is not None and len(classes) != n:
        raise ValueError(f"n = {n} but {len(classes)} classes")
    size = size or getattr(generator, "out_size", None)
    gen = torch.Generator().manual_seed(seed)
    z_all = torch.randn(n, z_dim, generator=gen)
    c_all = None
    if c_dim:
        if classes is None:
            classes = torch.randint(0, c_dim, (n,), generator=gen)
        c_all = F.one_hot(torch.as_tensor(classes, dtype=torch.long), c_dim).float()
    device = next(generator.parameters(), torch.empty(0)).device
    was_training = generator.training
    generator.eval()
    out = []
    try:
        with torch.inference_mode():
            for i in range(0, n, batch_size):
                z = z_all[i : i + batch_size].to(device)
                if has_c:
                    c = None if c_all is None else c_all[i : i + batch_size].to(device)
                    x = generator(z, c)
                else:
                    x = generator(z)
                x = x.float().cpu()  # (B, C, S, S) in [-1, 1]
                if size and x.shape[-1] != size:
                    x = F.interpolate(
                        x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
                    )
                out.append(x.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8))
    finally:
        generator.train(was_training)
    return torch.cat(out)


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def gan_cache_path(
    images: torch.Tensor,
    *,
    cache_dir: Path,
    labels: torch.Tensor | None = None,
    **hyper: Any,
) -> Path:
    """Where :func:`load_or_train_gan` caches the GAN of the same arguments:
    ``cache_dir/gan-<key16>.pt`` (``hyper``: its hyper-parameters, defaults as there).

    The key hashes the images, the labels, the hyper-parameters and the cache
    format (not the device: a GAN trained on a GPU is reused on a CPU).
    """
    key_src = json.dumps(
        {
            "format": CACHE_FORMAT,
            "hyper": _hyper(**hyper),
            "images": [_sha(images), str(images.dtype), list(images.shape)],
            "labels": None if labels is None else _sha(torch.as_tensor(labels, dtype=torch.long)),
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"gan-{key}.pt"


#: the hyper-parameters of :func:`train_gan` that the cache key covers, at its defaults
_KEYED = {
    k: p.default
    for k, p in inspect.signature(train_gan).parameters.items()
    if k in ("epochs", "batch_size", "latent_dim", "width", "lr", "seed")
}


def _hyper(**given: Any) -> dict[str, Any]:
    """Every hyper-parameter of :data:`_KEYED`: as ``given``, else :func:`train_gan`'s default."""
    unknown = sorted(set(given) - set(_KEYED))
    if unknown:
        raise TypeError(f"not a hyper-parameter of train_gan: {', '.join(unknown)}")
    return _KEYED | given


def load_or_train_gan(
    images: torch.Tensor,
    *,
    cache_dir: Path,
    labels: torch.Tensor | None = None,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    latent_dim: int = 64,
    width: int = 16,
    lr: float = DEFAULT_LR,
    seed: int = 42,
    device: str = "cpu",
    progress: bool = False,
) -> Generator:
    """``train_gan`` with an on-disk cache at :func:`gan_cache_path`."""
    hyper = _hyper(
        epochs=epochs, batch_size=batch_size, latent_dim=latent_dim, width=width, lr=lr, seed=seed
    )
    path = gan_cache_path(images, cache_dir=cache_dir, labels=labels, **hyper)
    if path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            g_net = Generator(**blob["kwargs"])
            g_net.load_state_dict(blob["state_dict"])
        except (OSError, RuntimeError, KeyError, TypeError, EOFError) as exc:
            log.warning("retraining: cached GAN %s is unreadable (%s)", path, exc)
        else:
            log.debug("loaded cached GAN %s", path)
            return g_net.to(device).eval()
    g_net = train_gan(images, labels=labels, device=device, progress=progress, **hyper)
    kwargs = dict(
        z_dim=g_net.z_dim,
        channels=g_net.channels,
        size=g_net.size,
        c_dim=g_net.c_dim,
        width=width,
        out_size=g_net.out_size,
    )
    state = {k: v.cpu() for k, v in g_net.state_dict().items()}
    atomic_torch_save(path, {"format": CACHE_FORMAT, "kwargs": kwargs, "state_dict": state})
    log.debug("saved GAN to %s", path)
    return g_net


def load_generator_module(
    path: Path,
    *,
    allow_pickle: bool = False,
    latent_dim: int | None = None,
) -> nn.Module:
    """Load a user-supplied pickled generator (a whole module, e.g. StyleGAN2-ADA ``.pkl``).

    Unpickling runs arbitrary code from the file, so it needs ``allow_pickle=True``.
    The file holds a module (``torch.save(module)`` or ``pickle.dump``), or a dict
    with ``"G_ema"`` as StyleGAN2-ADA writes (its ``dnnlib`` / ``torch_utils``
    packages must then be importable). The module must follow the interface in
    the module docstring: ``z (N, z_dim) -> images in [-1, 1]``; ``z_dim`` comes
    from the module's attribute or else from ``latent_dim``.
    """
    path = Path(path)
    if not allow_pickle:
        raise ValueError(
            f"refusing to unpickle {path}: loading a pickled generator executes code stored "
            "in the file. Only do this for files you trust, and pass allow_pickle=True."
        )
    log.warning("unpickling generator %s (allow_pickle=True): this runs code from the file", path)
    if zipfile.is_zipfile(path):
        obj: Any = torch.load(path, map_location="cpu", weights_only=False)
    else:
        with open(path, "rb") as fh:
            obj = pickle.load(fh)  # noqa: S301 - explicit opt-in above
    if isinstance(obj, dict) and "G_ema" in obj:
        obj = obj["G_ema"]
    if not isinstance(obj, nn.Module):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a torch.nn.Module")
    if not isinstance(getattr(obj, "z_dim", None), int):
        if latent_dim is None:
            raise ValueError(f"{path}: module has no int attribute z_dim; pass latent_dim")
        obj.z_dim = latent_dim
    return obj.eval()
