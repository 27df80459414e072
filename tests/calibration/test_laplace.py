import copy

import numpy as np
import pytest
import torch
from laplace import Laplace
from torch.utils.data import DataLoader, TensorDataset

from mistrust.calibration import LastLayerLaplace, fit_last_layer_laplace
from mistrust.calibration.laplace import logit_moments

D, C = 6, 3


CENTERS = torch.randn(C, D, generator=torch.Generator().manual_seed(99)) * 2


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    return CENTERS[y] + torch.randn(n, D, generator=g), y


@pytest.fixture(scope="module")
def toy() -> dict:
    # Gaussian clusters with identity covariance: the Bayes classifier is linear
    # (w_c = mu_c, b_c = -|mu_c|^2 / 2), so no training loop is needed.
    head = torch.nn.Linear(D, C)
    with torch.no_grad():
        head.weight.copy_(CENTERS)
        head.bias.copy_(-0.5 * CENTERS.square().sum(1))
    xt, yt = _data(128, 1)
    xv, yv = _data(64, 2)
    xo = torch.rand(64, D, generator=torch.Generator().manual_seed(3)) * 6 - 3
    return {"head": head, "xt": xt, "yt": yt, "xv": xv, "yv": yv, "xo": xo}


@pytest.fixture(scope="module")
def fitted(toy: dict) -> LastLayerLaplace:
    return fit_last_layer_laplace(
        toy["head"],
        toy["xt"].numpy(),
        toy["yt"].numpy(),
        val_feats=toy["xv"].numpy(),
        val_labels=toy["yv"].numpy(),
        ood_feats=toy["xo"].numpy(),
        grid_size=6,
        n_samples=50,
    )


def _reference_laplace(head: torch.nn.Module, x, y, prior_precision: float):
    la = Laplace(copy.deepcopy(head).double(), "classification", "all", "kron")
    la.fit(DataLoader(TensorDataset(x.double(), y), batch_size=32))
    la.prior_precision = prior_precision
    return la


@pytest.mark.parametrize("bias,prior_precision", [(True, 1e-2), (True, 30.0), (False, 1.0)])
def test_logit_moments_match_laplace_torch(toy: dict, bias: bool, prior_precision: float):
    head = torch.nn.Linear(D, C, bias=bias)
    with torch.no_grad():
        head.weight.copy_(toy["head"].weight)
    la = _reference_laplace(head, toy["xt"], toy["yt"], prior_precision)
    x = toy["xv"].double()
    ref_mu, ref_var = la._glm_predictive_distribution(x)
    f_mu, f_var = logit_moments(la.model, la.posterior_precision, x)
    torch.testing.assert_close(f_mu, ref_mu, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(f_var, ref_var, rtol=1e-8, atol=1e-12)


def test_predictive_matches_laplace_torch(toy: dict, fitted: LastLayerLaplace):
    la = _reference_laplace(toy["head"], toy["xt"], toy["yt"], fitted.prior_precision_)
    x = toy["xo"].double()
    gen = torch.Generator().manual_seed(7)
    ref_mc = la.predictive_samples(x, pred_type="glm", n_samples=50, generator=gen).mean(0)
    ours_mc = np.exp(fitted.predict_logprobs(x, n_samples=50, seed=7))
    np.testing.assert_allclose(ours_mc, ref_mc.numpy(), rtol=1e-5, atol=1e-7)
    ref_probit = la(x, pred_type="glm", link_approx="probit")
    ours_probit = np.exp(fitted.predict_logprobs(x, pred="probit"))
    np.testing.assert_allclose(ours_probit, ref_probit.numpy(), rtol=1e-5, atol=1e-7)


def test_fit_records_prior_and_grid(fitted: LastLayerLaplace):
    assert 1.0 <= fitted.prior_variance_ <= 1000.0
    assert fitted.prior_precision_ * fitted.prior_variance_ == pytest.approx(1.0)
    assert fitted.grid_["variance"].shape == fitted.grid_["objective"].shape == (6,)
    best = fitted.grid_["variance"][np.argmin(fitted.grid_["objective"])]
    assert fitted.prior_variance_ == pytest.approx(best)


def test_huge_prior_precision_gives_map(toy: dict, fitted: LastLayerLaplace):
    m = copy.copy(fitted)
    m.laplace_ = copy.deepcopy(fitted.laplace_)
    m.laplace_.prior_precision = 1e10
    x = toy["xv"]
    map_logp = torch.log_softmax(toy["head"](x).double(), dim=1).detach().numpy()
    for pred in ("mc", "probit"):
        out = m.predict_logprobs(x, pred=pred)
        np.testing.assert_allclose(out, np.maximum(map_logp, np.log(1e-12)), atol=1e-4)


def test_laplace_lowers_confidence_far_away(toy: dict, fitted: LastLayerLaplace):
    far = toy["xv"] * 100
    map_conf = torch.softmax(toy["head"](far), dim=1).max(1).values.mean().item()
    la_conf = np.exp(fitted.predict_logprobs(far)).max(1).mean()
    assert map_conf > 0.99
    assert la_conf < map_conf - 0.05


def test_output_contract_and_seeding(toy: dict, fitted: LastLayerLaplace):
    x = toy["xo"].numpy()
    state = torch.random.get_rng_state()
    a = fitted.predict_logprobs(x, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # caller's RNG untouched
    assert a.shape == (len(x), C) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_allclose(np.exp(a).sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, fitted.predict_logprobs(x, seed=3))
    np.testing.assert_array_equal(a, fitted.predict_logprobs(x, seed=3, batch_size=7))
    assert not np.array_equal(a, fitted.predict_logprobs(x, seed=4))


def test_head_not_modified(toy: dict, fitted: LastLayerLaplace):
    assert toy["head"].weight.dtype == torch.float32
    assert fitted.laplace_.model is not toy["head"]


def test_marglik(toy: dict):
    m = fit_last_layer_laplace(toy["head"], toy["xt"], toy["yt"], prior="marglik", pred="probit")
    assert np.isfinite(m.prior_precision_) and m.prior_precision_ > 0
    assert np.isfinite(m.predict_logprobs(toy["xv"])).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"prior": "bogus"}, "prior must be one of"),
        ({"pred": "bridge"}, "pred must be one of"),
        ({"grid_size": 0}, "grid_size"),
        ({"n_samples": 0}, "n_samples"),
    ],
)
def test_bad_settings(toy: dict, kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        LastLayerLaplace(toy["head"], **kwargs).fit(toy["xt"], toy["yt"])


def test_bad_inputs(toy: dict, fitted: LastLayerLaplace):
    head, xt, yt = toy["head"], toy["xt"], toy["yt"]
    with pytest.raises(ValueError, match="to match the head"):
        fit_last_layer_laplace(head, xt[:, :3], yt, prior="marglik")
    with pytest.raises(ValueError, match="to match the features"):
        fit_last_layer_laplace(head, xt, yt[:-1], prior="marglik")
    with pytest.raises(ValueError, match="val_feats"):
        fit_last_layer_laplace(head, xt, yt)
    with pytest.raises(ValueError, match="ood_feats"):
        fit_last_layer_laplace(head, xt, yt, val_feats=toy["xv"], val_labels=toy["yv"])
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict_logprobs(np.full((2, D), np.nan))
    with pytest.raises(ValueError, match="pred must be one of"):
        fitted.predict_logprobs(toy["xv"], pred="nn")
    with pytest.raises(RuntimeError, match="not fitted"):
        LastLayerLaplace(head).predict_logprobs(toy["xv"])
