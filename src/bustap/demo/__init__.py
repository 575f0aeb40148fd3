"""The simulated network behind ``bustap demo``."""
