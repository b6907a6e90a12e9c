import os
from pathlib import Path

import pytest

from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.kb.concept_kb import Concept, ConceptKB

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


@pytest.fixture(scope="session")
def kb_dir(tmp_path_factory) -> Path:
    """A tiny KB: the training concepts of both components' tests, plus ones
    no test trains on ("gastric ulcer" is its own concept, D013276, for the
    joint tagger's KB fallback)."""
    kb = ConceptKB()
    kb.add(Concept("D001241", "Aspirin", ("acetylsalicylic acid",), ("Chemical",)))
    kb.add(Concept("D007052", "Ibuprofen", (), ("Chemical",)))
    kb.add(Concept("D014456", "Ulcer", ("ulcers",), ("Disease",)))
    kb.add(Concept("D013276", "Stomach Ulcer", ("gastric ulcer",), ("Disease",)))
    kb.add(Concept("D003920", "Diabetes Mellitus", (), ("Disease",)))
    kb.add(Concept("D010146", "Pain", (), ("Disease",)))
    path = tmp_path_factory.mktemp("kb") / "kb"
    CandidateGenerator(kb).to_disk(path)
    return path
