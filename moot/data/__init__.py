"""Datasets shipped with moot (original passages written for it)."""
