"""MedMentions' KB (experiments/hier's `kb-medmentions`): UMLS typed by st21pv where a
META folder is given, else the training mentions' names."""
import subprocess
import sys
from pathlib import Path

import spacy
from spacy.tokens import DocBin

from spacy_medlink.kb.candidates import CandidateGenerator

from ..pipeline.helpers import make_examples

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "experiments" / "hier" / "scripts" / "kb_medmentions.py"
META = Path(__file__).parent / "data" / "umls" / "META"
TRAIN = [("Diabetes mellitus and pain.", [(0, 17, "T038", "UMLS:C0011849"), (22, 26, "T033", "UMLS:C0030193")]),
         ("Sugar diabetes again.", [(0, 14, "T038", "UMLS:C0011849")])]


def _build(tmp_path: Path, *args: str) -> CandidateGenerator:
    DocBin(docs=[eg.reference for eg in make_examples(spacy.blank("en"), TRAIN)]).to_disk(tmp_path / "train.spacy")
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "kb"), str(tmp_path / "train.spacy"), *args],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    return CandidateGenerator.from_disk(tmp_path / "kb")


def test_without_umls_the_kb_is_the_training_mentions(tmp_path):
    generator = _build(tmp_path, "", "")
    assert sorted(generator.kb.concept_ids) == ["UMLS:C0011849", "UMLS:C0030193"]
    assert set(generator.types) == {"T033", "T038"}


def test_with_umls_the_kb_is_typed_with_the_corpus_labels(tmp_path):
    generator = _build(tmp_path, str(META), "")
    kb = generator.kb
    assert "UMLS:C0011849" in kb and "UMLS:C0011860" in kb
    assert kb["UMLS:C0011849"].types == ("T038",)  # Disease or Syndrome under Biologic Function
    assert "Sugar diabetes" in kb["UMLS:C0011849"].synonyms  # a training mention, joined as a synonym
    assert set(generator.types) <= {"T005", "T007", "T017", "T022", "T031", "T033", "T037", "T038", "T058", "T062",
                                    "T074", "T082", "T091", "T092", "T097", "T098", "T103", "T168", "T170", "T201",
                                    "T204"}
    top = generator(["type 2 diabetes mellitus"], k=1, types=["T038"])[0][0]
    assert top.concept_id == "UMLS:C0011860"
