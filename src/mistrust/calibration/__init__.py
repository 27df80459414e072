"""Over-confidence reduction applied after training: temperature scaling and
last-layer Laplace. Both consume cached outputs (logits / penultimate features)
and end in logits-like arrays ``(N, C)``."""

from mistrust.calibration.laplace import LastLayerLaplace, fit_last_layer_laplace
from mistrust.calibration.temperature import TemperatureScaling, fit_temperature, scale_logits

__all__ = [
    "LastLayerLaplace",
    "TemperatureScaling",
    "fit_last_layer_laplace",
    "fit_temperature",
    "scale_logits",
]
