"""The array-only audit and the model outputs it reads."""
