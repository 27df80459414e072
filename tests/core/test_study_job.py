"""The study's model task carries the sections it reads, not the whole config."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

from mistrust.config import Config, load_config
from mistrust.study.models import trained_variants


@pytest.mark.parametrize(
    ("names", "reference", "trained"),
    [
        (["base"], False, ["base"]),
        (["label-smoothing"], False, ["label-smoothing"]),
        (["label-smoothing"], True, ["base", "label-smoothing"]),  # reference attacks need base
        (["label-smoothing", "temperature"], False, ["base", "label-smoothing"]),  # post-hoc too
        (["weight-decay", "base", "laplace"], False, ["weight-decay", "base"]),  # order kept
    ],
)
def test_trained_variants(names, reference, trained) -> None:
    assert trained_variants(names, reference=reference) == trained


def test_study_job_holds_each_variants_training_settings_and_pickles(tmp_path) -> None:
    from mistrust.study.data import load_data
    from mistrust.study.run import _study_job

    cfg = load_config(
        "smoke",
        [
            "variants.names=[label-smoothing, weight-decay, temperature]",
            "variants.label_smoothing=0.3",
            "variants.weight_decay=0.01",
            "train.eval_batch_size=77",
            "seed=5",
        ],
    )
    job = _study_job(
        cfg, load_data(cfg.data, seed=cfg.seed), {}, tmp_path, torch.device("cpu"), True
    )
    assert list(job.train) == ["base", "label-smoothing", "weight-decay"]
    assert job.train["base"] == cfg.train
    assert job.train["label-smoothing"] == dataclasses.replace(cfg.train, label_smoothing=0.3)
    assert job.train["weight-decay"] == dataclasses.replace(cfg.train, weight_decay=0.01)
    assert (job.data, job.model, job.seed, job.eval_batch_size) == (cfg.data, cfg.model, 5, 77)
    assert not any(isinstance(v, Config) for v in vars(job).values())
    back = pickle.loads(pickle.dumps(job))  # Ray ships it to the workers
    assert back.train == job.train and back.data == job.data
    assert torch.equal(back.splits["shadow_train"].images, job.splits["shadow_train"].images)
