"""The NumPy attack-model trainer must compute what the PyTorch recipe computes."""

from __future__ import annotations

import numpy as np
import torch

from mistrust.attacks._mlp import init_params, mlp_logits, train_mlp, unpack


def torch_training(
    flat: np.ndarray, x: np.ndarray, y: np.ndarray, perms: list[np.ndarray], *, k: int, hidden: int
) -> tuple[np.ndarray, list[float]]:
    """nn.Sequential + BCEWithLogitsLoss + Adam(lr=0.01), batches of 16, one epoch per permutation."""
    w1, b1, w2, b2 = unpack(flat, k, hidden)
    model = torch.nn.Sequential(
        torch.nn.Linear(k, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
    ).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w1.T))
        model[0].bias.copy_(torch.from_numpy(b1))
        model[2].weight.copy_(torch.from_numpy(w2.T))
        model[2].bias.copy_(torch.from_numpy(b2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    lossf = torch.nn.BCEWithLogitsLoss()
    losses = []
    for perm in perms:
        xt, yt = torch.from_numpy(x[perm]), torch.from_numpy(y[perm])
        total = 0.0
        for a in range(0, len(x), 16):
            out = model(xt[a : a + 16]).squeeze(1)
            loss = lossf(out, yt[a : a + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(out)
        losses.append(total / len(x))
    with torch.no_grad():
        parts = [model[0].weight.T, model[0].bias, model[2].weight.T, model[2].bias]
        return np.concatenate([p.numpy().ravel() for p in parts]), losses


def test_numpy_training_equals_torch_adam_bce() -> None:
    k, hidden, n = 3, 64, 40  # 2 full batches + one of 8
    rng = np.random.default_rng(0)
    x = rng.random((n, k))
    y = (rng.random(n) < 0.5).astype(np.float64)
    init = init_params(k, hidden, np.random.default_rng(1))
    kwargs = dict(hidden=hidden, lr=0.01, batch_size=16, patience=100, min_delta=0.0)
    flat, losses = train_mlp(x, y, max_epochs=2, rng=np.random.default_rng(7), init=init, **kwargs)
    perm_rng = np.random.default_rng(7)
    perms = [perm_rng.permutation(n) for _ in range(2)]
    ref, ref_losses = torch_training(init, x, y, perms, k=k, hidden=hidden)
    # two Adam epochs chain 6 steps, so allow a little float drift
    np.testing.assert_allclose(flat, ref, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-12)
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(
        mlp_logits(flat, x, hidden=hidden), _forward(flat, xt, k, hidden), rtol=1e-12
    )


def _forward(flat: np.ndarray, x: torch.Tensor, k: int, hidden: int) -> np.ndarray:
    w1, b1, w2, b2 = (torch.from_numpy(a) for a in unpack(flat, k, hidden))
    return (torch.relu(x @ w1 + b1) @ w2 + b2).squeeze(1).numpy()


def test_init_matches_torch_linear_bounds() -> None:
    flat = init_params(3, 64, np.random.default_rng(0))
    w1, b1, w2, b2 = unpack(flat, 3, 64)
    assert np.abs(w1).max() <= 1 / np.sqrt(3) and np.abs(b1).max() <= 1 / np.sqrt(3)
    assert np.abs(w2).max() <= 1 / 8 and np.abs(b2).max() <= 1 / 8


def test_early_stopping_and_max_epochs() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 3)), (rng.random(64) < 0.5).astype(float)
    kw = dict(hidden=8, lr=0.01, batch_size=16, rng=np.random.default_rng(0))
    _, losses = train_mlp(x, y, patience=3, min_delta=10.0, max_epochs=100, **kw)
    assert len(losses) == 4  # first epoch improves on inf, then 3 epochs without a 10.0 gain
    _, losses = train_mlp(x, y, patience=100, min_delta=0.0, max_epochs=5, **kw)
    assert len(losses) == 5
