"""Knowledge-base layer shared by every component: concepts, names, candidates.

spaCy imports every entry-point factory module whenever it creates a Language,
and those modules import this package, so the heavy parts (scipy, scikit-learn,
scispacy) load on first use (PEP 562), not on import.
"""
from importlib import import_module
from typing import Any

_LAZY = {
    "Concept": ".concept_kb",
    "ConceptKB": ".concept_kb",
    "Candidate": ".names",
    "CandidateGenerator": ".candidates",
    "normalize_name": ".names",
    "abbreviation_map": ".abbreviations",
    "add_train_mentions": ".builders",
    "build_kb": ".builders",
    "read_medic": ".builders",
    "read_mesh_descriptors": ".builders",
    "read_mesh_supplementary": ".builders",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
