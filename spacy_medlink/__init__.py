"""Trainable spaCy components for biomedical NER and concept normalization.

Everything spaCy needs is registered through entry points (setup.cfg), so a
packaged pipeline loads without importing this package by hand.
"""
from .about import __version__  # noqa: F401
