"""mistrust: audit score-based membership inference attacks and how far to trust them."""

from mistrust._version import __version__

__all__ = ["__version__"]
