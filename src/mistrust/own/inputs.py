"""What ``mistrust audit`` reads from outside: a model, images, and the transform between.

A model is a ``torch.export`` program or a factory plus a state dict
(:mod:`mistrust.models.external`); images come from a labelled folder, an ``.npz`` or a
registry dataset (:mod:`mistrust.data.external`); the preprocessing is the config's, with
the size and channels the program fixes when the config leaves them out.
docs/ARCHITECTURE.md places this among the stages of ``mistrust audit``.
"""

from __future__ import annotations

from typing import Any

from mistrust.config.own import DataSpec, ModelSpec, PreprocessConfig, ShadowConfig, TargetConfig
from mistrust.data.images import ImageSet, Preprocess
from mistrust.errors import InputError

__all__ = ["load_model", "preprocess_of", "read_images", "role_images"]


def preprocess_of(p: PreprocessConfig, shape: tuple[int, ...] | None) -> Preprocess:
    """The ``preprocess`` section's transform; size and channels from ``shape`` (the model's
    fixed ``(C, H, W)`` input, if any) where the section leaves them out."""
    channels = p.channels or (shape[0] if shape else None)
    size = p.size or (shape[-1] if shape else None)
    if channels is None or size is None:
        raise InputError(
            "preprocess.size and preprocess.channels: not set, and the model does not fix its "
            "input shape; give the size and channel count the model was trained on"
        )
    mean = tuple(p.mean) or (0.0,) * channels
    std = tuple(p.std) or (1.0,) * channels
    if len(mean) != channels or len(std) != channels:
        raise InputError(
            f"preprocess.mean / std need {channels} values (one per channel), got "
            f"{len(mean)} / {len(std)}"
        )
    return Preprocess(channels, size, mean, std)


def load_model(spec: ModelSpec, fallback: ModelSpec | None = None) -> Any:
    """The model ``spec`` names, as an :class:`~mistrust.models.external` wrapper;
    ``fallback`` (the target) gives the factory a shadow checkpoint leaves out."""
    from mistrust.models.external import load_exported, load_factory_model

    if spec.model is not None:
        return load_exported(spec.model, last_layer=spec.last_layer)
    factory = spec.factory or (fallback.factory if fallback else None)
    kwargs = spec.factory_args or (fallback.factory_args if fallback else {})
    assert factory is not None and spec.weights is not None  # validate_audit
    return load_factory_model(factory, spec.weights, kwargs=kwargs, last_layer=spec.last_layer)


def read_images(
    spec: DataSpec, pre: Preprocess, what: str, *, root: str | None, fit: str
) -> ImageSet:
    """The images of ``spec`` at the model's size and channels; ``what`` names them in
    messages (e.g. ``"shadow.members"``); ``root``: where registry datasets are
    (``data_root``); ``fit``: how folder images become square (``preprocess.fit``)."""
    from mistrust.data.external import (
        load_dataset_subset,
        load_image_arrays,
        load_labelled_folder,
    )

    if spec.folder is not None:
        return load_labelled_folder(
            spec.folder,
            size=pre.size,
            channels=pre.channels,
            labels=spec.labels,
            name=what,
            fit=fit,
        )
    if spec.npz is not None:
        return load_image_arrays(spec.npz, name=what)
    assert spec.dataset is not None
    images, _ = load_dataset_subset(
        spec.dataset,
        split=spec.split,
        index=spec.index,
        root=root,
        size=pre.size,
        channels=pre.channels,
    )
    return ImageSet(images.images, images.labels, images.classes, what)


def role_images(
    sec: TargetConfig | ShadowConfig, role: str, pre: Preprocess, *, root: str | None, fit: str
) -> dict[str, ImageSet]:
    """``members``, ``nonmembers`` and (if given) ``calibration`` images of ``role``, whose
    section (``target`` or ``shadow``) is ``sec``."""
    parts = {"members": sec.members, "nonmembers": sec.nonmembers}
    if sec.calibration.given():
        parts["calibration"] = sec.calibration
    return {
        k: read_images(spec, pre, f"{role}.{k}", root=root, fit=fit) for k, spec in parts.items()
    }
