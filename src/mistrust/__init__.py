"""mistrust: audit score-based membership inference attacks and how far to trust them."""

__version__ = "0.1.0"
