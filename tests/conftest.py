import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# The real corpora live beside the checkout (../shared/data); users point
# MEDLINK_DATA elsewhere. Tests that need them skip loudly when they are absent.
DATA_DIR = Path(os.environ.get("MEDLINK_DATA", Path(__file__).parents[1].parent / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: needs --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.exists():
        pytest.skip(f"real corpora not found at {DATA_DIR} (set MEDLINK_DATA)")
    return DATA_DIR
