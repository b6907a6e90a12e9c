"""Corpus readers and converters: one module per format."""
from .report import ConversionReport, CorpusFormatError  # noqa: F401
