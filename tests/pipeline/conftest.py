from pathlib import Path

import pytest

from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.kb.concept_kb import Concept, ConceptKB


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
