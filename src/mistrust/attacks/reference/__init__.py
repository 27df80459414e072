"""Reference-model attacks (LiRA, RMIA): one family per module, registered by name."""
