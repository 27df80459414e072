"""The paper's K-FAC last-layer Laplace against direct dense computations on a toy head."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mistrust.calibration.paper_laplace import PaperLaplace, mc_fisher_factors

D, C = 5, 3
GEN = torch.Generator().manual_seed(11)
CENTERS = torch.randn(C, D, generator=GEN, dtype=torch.float64) * 2


def _head() -> torch.nn.Linear:
    head = torch.nn.Linear(D, C).double()
    with torch.no_grad():
        head.weight.copy_(CENTERS)
        head.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    return head


def _feats(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    return CENTERS[y] + torch.randn(n, D, generator=g, dtype=torch.float64), y


@pytest.fixture(scope="module")
def fitted() -> PaperLaplace:
    xt, _ = _feats(300, 1)
    xv, yv = _feats(60, 2)
    xo = torch.rand(60, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 6 - 3
    return PaperLaplace(_head(), grid=np.logspace(0, 3, 7), search_samples=10).fit(
        xt, val_feats=xv, val_labels=yv, ood_feats=xo
    )


def test_input_factor_running_average_by_hand() -> None:
    """21 batches of constant rows: the mean of the first 20, then weight 0.95 / 0.05."""
    rows = torch.arange(1.0, 22.0, dtype=torch.float64)[:, None] * torch.ones(
        1, D, dtype=torch.float64
    )
    feats = rows.repeat_interleave(4, dim=0)  # batch i: four copies of (i + 1) * ones
    head = _head()
    f = mc_fisher_factors(
        head.weight.detach(),
        head.bias.detach(),
        feats,
        batch_size=4,
        generator=torch.Generator().manual_seed(0),
    )
    ones = torch.ones(D, D, dtype=torch.float64)
    mean20 = sum((i + 1) ** 2 for i in range(20)) / 20
    torch.testing.assert_close(f.inp, (0.95 * mean20 + 0.05 * 21**2) * ones)
    assert f.n == 84


def test_output_factor_is_the_fisher_in_expectation() -> None:
    """Sampled labels: mean g g^T -> diag(p) - p p^T, the exact Fisher of the softmax."""
    phi = torch.tensor([[0.4, -0.3, 0.2, 0.1, 0.0]], dtype=torch.float64)
    feats = phi.repeat(40_000, 1)
    head = _head()
    p = torch.softmax(phi @ CENTERS.T + head.bias.detach(), dim=1)[0]
    f = mc_fisher_factors(
        head.weight.detach(),
        head.bias.detach(),
        feats,
        batch_size=40_000,
        generator=torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(f.out, torch.diag(p) - torch.outer(p, p), atol=5e-3, rtol=0)


def _dense_covariance(fit: PaperLaplace, phi: torch.Tensor, var: float) -> torch.Tensor:
    """(B, C, C) from the full (C*D)x(C*D) precision of vec(W) (row-major) and the bias."""
    tau, n = 1.0 / var, fit.factors_.n
    u = math.sqrt(n) * fit.factors_.out + math.sqrt(tau) * torch.eye(C, dtype=torch.float64)
    v = math.sqrt(n) * fit.factors_.inp + math.sqrt(tau) * torch.eye(D, dtype=torch.float64)
    sigma_w = torch.linalg.inv(torch.kron(u, v))  # vec(W)[c * D + d] = W[c, d]
    sigma_b = torch.linalg.inv(n * fit.factors_.out + tau * torch.eye(C, dtype=torch.float64))
    out = []
    for row in phi:
        jac = torch.kron(torch.eye(C, dtype=torch.float64), row[None, :])  # df/dvec(W): (C, C*D)
        out.append(jac @ sigma_w @ jac.T + sigma_b)
    return torch.stack(out)


@pytest.mark.parametrize("var", [1.0, 31.6, 1000.0])
def test_covariance_matches_dense_kronecker_posterior(fitted: PaperLaplace, var: float) -> None:
    phi, _ = _feats(7, 5)
    torch.testing.assert_close(
        fitted.covariance(phi, var), _dense_covariance(fitted, phi, var), rtol=1e-9, atol=1e-12
    )


def test_predictive_matches_dense_monte_carlo(fitted: PaperLaplace) -> None:
    phi, _ = _feats(6, 6)
    ours = np.exp(fitted.predict_logprobs(phi, n_samples=40_000))
    mean = phi @ CENTERS.T + _head().bias.detach()
    cov = _dense_covariance(fitted, phi, fitted.prior_variance_)
    dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    torch.manual_seed(0)
    ref = torch.softmax(dist.sample((40_000,)), dim=-1).mean(0)
    np.testing.assert_allclose(ours, ref.numpy(), atol=6e-3)
    assert np.allclose(ours.sum(1), 1.0, atol=1e-5)


def test_grid_search_picks_the_minimum_and_is_seeded(fitted: PaperLaplace) -> None:
    grid = fitted.grid_
    assert fitted.prior_variance_ == grid["variance"][np.argmin(grid["objective"])]
    assert np.isfinite(grid["objective"]).all()
    phi, _ = _feats(5, 8)
    again = fitted.predict_logprobs(phi)
    assert np.array_equal(fitted.predict_logprobs(phi), again)  # same seed, same output
    assert again.dtype == np.float32 and again.shape == (5, C)


def test_bad_settings_and_inputs() -> None:
    xt, _ = _feats(20, 1)
    xv, yv = _feats(10, 2)
    with pytest.raises(ValueError, match="ood_feats"):
        PaperLaplace(_head(), grid=[1.0]).fit(xt, val_feats=xv, val_labels=yv)
    with pytest.raises(ValueError, match="grid"):
        PaperLaplace(_head(), grid=[0.0]).fit(xt, val_feats=xv, val_labels=yv, ood_feats=xv)
    with pytest.raises(ValueError, match="val_labels"):
        PaperLaplace(_head(), grid=[1.0], ood_weight=0).fit(xt, val_feats=xv, val_labels=yv + 5)
    with pytest.raises(RuntimeError, match="not fitted"):
        PaperLaplace(_head(), grid=[1.0]).predict_logprobs(xt)


def test_features_sorted_by_class_are_shuffled_before_the_running_average() -> None:
    """6,000 rows, the first half one feature vector, the second another (an image folder's
    class order): in that order the average would weight the second vector about 0.7."""
    a = torch.zeros(D, dtype=torch.float64)
    a[0] = 1.0
    b = torch.zeros(D, dtype=torch.float64)
    b[1] = 1.0
    x = torch.cat([a.repeat(3000, 1), b.repeat(3000, 1)])
    xv, yv = _feats(10, 2)
    fit = PaperLaplace(_head(), grid=[1.0], ood_weight=0.0, search_samples=1)
    fit.fit(x, val_feats=xv, val_labels=yv)
    # a running average of ~20 shuffled batches: each share 1/2 up to sampling noise
    assert abs(float(fit.factors_.inp[0, 0]) - 0.5) < 0.1
    assert abs(float(fit.factors_.inp[1, 1]) - 0.5) < 0.1
