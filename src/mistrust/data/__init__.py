"""Dataset sources, splits and evaluation sets."""

from mistrust.data import folders, vision  # noqa: F401  (register their sources)
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.sources import DataError, get_source, load_source, source_names

__all__ = ["DataError", "ImageSet", "Preprocess", "get_source", "load_source", "source_names"]
