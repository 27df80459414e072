"""``mistrust audit``: a model trained elsewhere, or its saved outputs, into a run directory."""
