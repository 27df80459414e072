"""The one path after the models exist, shared by ``mistrust run`` and ``mistrust audit``."""
