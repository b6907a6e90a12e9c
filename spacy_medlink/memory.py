"""Keep glibc's heap from growing without bound under variable-shape tensors.

Every update and predict batch of the gated normalizer allocates tensors of
new shapes (docs × tokens × concepts), tens of MB each. glibc serves blocks
that size from its heap once a freed one has raised its adaptive mmap
threshold, and a heap fragmented by them is never given back: training
`configs/gated_minilm.cfg` on NCBI grew to 17.6 GB and was OOM-killed within
~100 steps, while live memory stayed near 1 GB. Serving large blocks from
mmap (fixed threshold) returns them on free: the same run held 1.3 GB.
`MALLOC_MMAP_THRESHOLD_` in the environment does the same, before start-up.
"""
import ctypes
import ctypes.util
import warnings
from typing import Callable, Type, TypeVar

from spacy.util import registry

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
L = TypeVar("L")


def set_malloc_mmap_threshold(threshold: int) -> bool:
    """Serve allocations of `threshold` bytes or more by mmap (so free returns
    them to the OS) and trim the heap top above it. Process-wide; glibc only.
    Returns whether it was applied; elsewhere it warns and does nothing."""
    if threshold <= 0:
        raise ValueError(f"threshold must be a positive number of bytes, not {threshold}")
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt is None or not (mallopt(M_MMAP_THRESHOLD, threshold) and mallopt(M_TRIM_THRESHOLD, threshold)):
        warnings.warn(f"medlink: mallopt is not available here ({name or 'no C library found'}); "
                      "the malloc mmap threshold is left as it is")
        return False
    return True


@registry.callbacks("medlink.malloc_mmap_threshold.v1")
def create_malloc_mmap_threshold(threshold: int = 4 * 2**20) -> Callable[[Type[L]], Type[L]]:
    """For ``[nlp.before_creation]``: set the malloc mmap threshold whenever
    the pipeline is created, in training, `spacy evaluate` and `spacy.load`."""

    def apply(lang_cls: Type[L]) -> Type[L]:
        set_malloc_mmap_threshold(threshold)
        return lang_cls

    return apply
