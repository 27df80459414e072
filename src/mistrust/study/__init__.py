"""``mistrust run``: data, training, reference models, repeats and the plan check of a study."""
