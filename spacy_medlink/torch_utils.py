"""PyTorch, imported where a model needs it, with the install command when it is missing.

torch is an optional dependency (the ``[torch]`` extra). spaCy imports every
module named by a registered factory whenever it creates a pipeline, so the
modules that register ours import nothing heavy at module level: installing
spacy-medlink without torch leaves every other spaCy pipeline working, and
building one of our trainable models there says what to install. The torch
modules (``ml/*_module.py``, ``ml/crf.py``, ``ml/layers.py``,
``ml/torch_wrapper.py``) are imported inside the functions that build or run
a model, after `require_torch`.

Forked workers run torch on one thread. `nlp.pipe(texts, n_process=N)` forks
N workers from a parent whose torch has already started its OpenMP thread
pool; in a forked child that pool cannot start again, and the worker's first
parallel torch op waits forever (the parent then waits forever on its
workers). Each worker is one process of the parallelism the user asked for,
so one torch thread each is also the right count.
"""
import os
from types import ModuleType

TORCH_MISSING = (
    "{what} needs PyTorch, which is not installed. spacy-medlink's trainable components "
    "(medlink_joint_tagger, medlink_gated_normalizer, medlink_nested_recognizer, medlink_hier_linker) "
    "run on torch, which comes with the [torch] extra: pip install 'spacy-medlink[torch]' "
    "(or install a torch wheel first, e.g. the CPU-only build, then spacy-medlink)."
)

_fork_hook_registered = False


def require_torch(what: str) -> ModuleType:
    """torch, or an ImportError that names `what` needs it and how to install it."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(TORCH_MISSING.format(what=what)) from err
    return torch


def one_torch_thread_in_forks() -> None:
    """Make every process forked from now on run torch on one thread (once per process)."""
    global _fork_hook_registered
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=_one_torch_thread)
        _fork_hook_registered = True


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)
