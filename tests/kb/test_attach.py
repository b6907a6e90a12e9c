"""`kb.attach` and `kb attach`: a trained recognizer linking to a vocabulary of the user's,
typed by a type map, ranked by a trained ranker valid for it or by a similarity calibrated
on the KB's own synonyms, with a concept head of another vocabulary switched off."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
import typer
from spacy.language import Language
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli.kb_attach import parse_type_map
from spacy_medlink.kb.attach import (HEAD_MIN_SHARE, HEAD_OFF, AttachError, attach_kb, attach_ranker,
                                     check_ranker_mode, choose_ranker, primary_share, retype_kb)
from spacy_medlink.kb.calibration import ALL, ScoreCalibration
from spacy_medlink.kb.candidates import RANKER_DIR, CandidateGenerator
from spacy_medlink.kb.concept_kb import Concept, ConceptKB
from spacy_medlink.kb.mention_stats import MentionStats
from spacy_medlink.kb.ranker import CandidateRanker

from ..pipeline.test_joint_tagger import _examples, _model_config, _train

DATA = Path(__file__).parent / "data" / "attach"
OBO = DATA / "disease_sample.obo"
TEXT = "Aspirin can cause gastric ulcer in elderly patients."


def _obo_kb(types=("Disease",)) -> ConceptKB:
    from spacy_medlink.kb.sources.obo import read_obo

    kb, _ = read_obo(OBO, types=types)
    return kb


def _umls_like_kb() -> ConceptKB:
    """Concepts typed by UMLS semantic types, several names each."""
    kb = ConceptKB()
    kb.add(Concept("C0017168", "gastric ulcer", ("stomach ulcer", "ulcer of stomach"), ("T047",), ("D013276",)))
    kb.add(Concept("C0011849", "diabetes mellitus", ("diabetes", "DM"), ("T047",)))
    kb.add(Concept("C0030193", "pain", ("ache", "pain sensation"), ("T184",)))
    kb.add(Concept("C0004057", "aspirin", ("acetylsalicylic acid", "ASA"), ("T109", "T121")))
    kb.add(Concept("C0020740", "ibuprofen", ("advil",), ("T109", "T121")))
    kb.add(Concept("C0000001", "blue colour", (), ("T080",)))
    kb.add(Concept("C0000002", "untyped thing", (), ()))
    return kb


# -- type map --------------------------------------------------------------------------------
def test_parse_type_map(tmp_path):
    assert parse_type_map("T047=Disease, T191=Disease,T121=Chemical,T121=Drug") == {
        "T047": ["Disease"], "T191": ["Disease"], "T121": ["Chemical", "Drug"]}
    assert parse_type_map("*=Disease") == {"*": ["Disease"]}
    assert parse_type_map("") == {}
    path = tmp_path / "map.json"
    srsly.write_json(path, {"T047": "Disease", "T121": ["Chemical"]})
    assert parse_type_map(str(path)) == {"T047": ["Disease"], "T121": ["Chemical"]}
    with pytest.raises(typer.BadParameter, match="not KB_TYPE=LABEL"):
        parse_type_map("T047:Disease")


def test_retype_kb_maps_types_and_counts_what_it_leaves_out():
    kb, counts = retype_kb(_umls_like_kb(), {"T047": ["Disease"], "T184": ["Disease"], "T121": ["Chemical"]})
    assert {c.concept_id: c.types for c in kb} == {
        "C0017168": ("Disease",), "C0011849": ("Disease",), "C0030193": ("Disease",),
        "C0004057": ("Chemical",), "C0020740": ("Chemical",)}
    assert counts["kept"] == 5 and counts["kept: Disease"] == 3 and counts["kept: Chemical"] == 2
    assert counts["left out"] == 2 and counts["left out: T080"] == 1 and counts["left out: (untyped)"] == 1
    assert kb.resolve("D013276") == "C0017168"  # alternative IDs kept
    assert kb["C0004057"].synonyms == ("acetylsalicylic acid", "ASA")
    everything, counts = retype_kb(_umls_like_kb(), {"*": ["Disease"]})
    assert len(everything) == 7 and counts["left out"] == 0

# -- which ranker ----------------------------------------------------------------------------
def _ranker_with_stats(ids):
    ranker = CandidateRanker(learner="logistic")
    ranker.stats = MentionStats()
    for cid in ids:
        ranker.stats.add(cid.lower(), cid)
    ranker._linear = {"mean": numpy.zeros(len(ranker.cfg["features"])), "scale": numpy.ones(len(ranker.cfg["features"])),
                      "coef": numpy.ones(len(ranker.cfg["features"])), "intercept": numpy.zeros(1)}
    return ranker


def test_a_ranker_trained_against_another_kb_is_not_used():
    generator = CandidateGenerator(retype_kb(_umls_like_kb(), {"T047": ["Disease"], "T121": ["Chemical"]})[0])
    own = _ranker_with_stats(["C0017168", "C0011849", "C0004057", "C9999999"])
    foreign = _ranker_with_stats(["D013276", "D003920", "D001241"])  # MeSH IDs: alternative IDs at most here
    assert own.kb_coverage(generator.kb) == 0.75
    assert foreign.kb_coverage(generator.kb) == 0.0
    assert CandidateRanker.calibrated(ScoreCalibration({ALL: ([0.0], [0.5])})).kb_coverage(generator.kb) is None
    ranker, info = choose_ranker(generator, own, "auto", 0.7, calibration_mentions=50)
    assert ranker is own and info["kind"] == "trained"
    logged = []
    ranker, info = choose_ranker(generator, foreign, "auto", 0.7, calibration_mentions=50, log=logged.append)
    assert ranker.cfg["learner"] == "calibrated" and info["kind"] == "calibrated" and "another KB" in logged[0]
    with pytest.raises(AttachError, match="another KB"):
        choose_ranker(generator, foreign, "trained", 0.7)
    with pytest.raises(AttachError, match="no trained ranker"):
        choose_ranker(generator, None, "trained", 0.7)
    assert choose_ranker(generator, own, "none", 0.7)[0] is None


def test_a_trained_ranker_is_used_from_min_coverage_on():
    generator = CandidateGenerator(retype_kb(_umls_like_kb(), {"T047": ["Disease"], "T121": ["Chemical"]})[0])
    half = _ranker_with_stats(["C0017168", "C0004057", "D013276", "D003920"])  # 2 of 4 concepts of this KB
    ranker, info = choose_ranker(generator, half, "auto", 0.5)
    assert ranker is half and info == {"mode": "auto", "trained_coverage": 0.5, "kind": "trained"}
    logged = []
    ranker, info = choose_ranker(generator, half, "auto", 0.51, calibration_mentions=50, log=logged.append)
    assert ranker.cfg["learner"] == "calibrated" and info["reason"] == "trained ranker not valid for this KB"
    assert "50.0% of its training mentions' concepts" in logged[0]
    ranker, info = choose_ranker(generator, half, "calibrated", 0.5, calibration_mentions=50)
    assert ranker.cfg["learner"] == "calibrated" and "reason" not in info  # asked for, no warning


def test_check_ranker_mode():
    check_ranker_mode("auto", Path("train.spacy"))
    with pytest.raises(AttachError, match="expected one of auto, trained, calibrated, none, not 'best'"):
        check_ranker_mode("best")
    with pytest.raises(AttachError, match="--ranker none asks for none"):
        check_ranker_mode("none", "train.spacy")


# -- the library: the concept head, attach_kb, attach_ranker -----------------------------------
class _HeadPipe:
    """A recognizer of Disease and Chemical with a KB and a concept head over `concepts`."""

    def __init__(self, cfg):
        self.generator = None
        self.labels = ("Chemical", "Disease")
        self.cfg = dict(cfg, concepts={})

    def __call__(self, doc):
        return doc


@Language.factory("test_attach_head_pipe", assigns=["doc.ents"],
                  default_config={"men_threshold": 0.3, "rerank_weight": 0.5, "kb_threshold": 0.2,
                                  "restrict_concepts": False})
def _make_head_pipe(nlp, name, men_threshold, rerank_weight, kb_threshold, restrict_concepts):
    return _HeadPipe({"men_threshold": men_threshold, "rerank_weight": rerank_weight, "kb_threshold": kb_threshold,
                      "restrict_concepts": restrict_concepts})


def _head_pipeline(*heads):
    """A pipeline of a `_HeadPipe` per list of head concept IDs, each with a KB of its own (`_umls_like_kb`)."""
    nlp = spacy.blank("en")
    for i, concepts in enumerate(heads):
        pipe = nlp.add_pipe("test_attach_head_pipe", name=f"head{i}")
        pipe.generator = CandidateGenerator(_umls_like_kb())
        pipe.cfg["concepts"] = {cid: ["Disease"] for cid in concepts}
    return nlp


def test_primary_share_counts_primary_ids_of_the_kb():
    kb = _umls_like_kb()
    assert primary_share(["C0017168", "C0011849"], kb) == 1.0
    assert primary_share(["C0017168", "D013276"], kb) == 0.5  # an alternative ID is not the concept's own
    assert primary_share(["C0017168|D999999", "D000001"], kb) == pytest.approx(1 / 3)  # composites split
    assert primary_share([], kb) == 1.0


def test_attach_kb_retypes_and_switches_off_a_head_of_another_vocabulary(tmp_path):
    CandidateGenerator(_umls_like_kb()).to_disk(tmp_path / "umls")
    # head0: 2 of 4 IDs are the KB's (the share HEAD_MIN_SHARE keeps); head1: 1 of 3
    nlp = _head_pipeline(["C0017168", "C0011849", "D013276", "D001241"], ["C0004057", "D001241", "D014456"])
    logged = []
    info = attach_kb(nlp, tmp_path / "umls", type_map={"T047": ["Disease"], "T121": ["Chemical"]}, ranker="none",
                     threshold=0.4, log=logged.append)
    assert info["labels"] == ["Chemical", "Disease"]
    assert info["concepts"] == {"kept": 4, "kept: Chemical": 2, "kept: Disease": 2, "left out": 3,
                                "left out: (untyped)": 1, "left out: T080": 1, "left out: T184": 1}
    assert info["ranker"] == {"mode": "none", "trained_coverage": None, "kind": "none"}
    assert logged[0] == "Types mapped: 4 concepts kept, 3 left out; kept: Chemical 2, kept: Disease 2"
    kept, off = info["components"]["head0"], info["components"]["head1"]
    assert kept["head_concepts_in_kb"] == HEAD_MIN_SHARE and "head" not in kept and kept["men_threshold"] == 0.3
    assert off["head_concepts_in_kb"] == 0.3333 and off["head"] == "off"
    assert off["men_threshold"] == HEAD_OFF and off["rerank_weight"] == 0.0
    head0, head1 = nlp.get_pipe("head0"), nlp.get_pipe("head1")
    assert head1.cfg["concepts"] == {"C0004057": [], "D001241": [], "D014456": []}  # allowed for no label
    assert head0.cfg["concepts"]["C0017168"] == ["Disease"]
    assert nlp.get_pipe_config("head1")["men_threshold"] == HEAD_OFF  # config.cfg says it too
    assert nlp.get_pipe_config("head1")["restrict_concepts"] is True
    assert head0.cfg["kb_threshold"] == nlp.get_pipe_config("head0")["kb_threshold"] == 0.4
    assert head0.generator is head1.generator and len(head0.generator.kb) == 4
    assert head0.generator.types == ["Chemical", "Disease"] and head0.generator.ranker is None
    with pytest.raises(AttachError, match="Disorder not among the recognizer's labels"):
        attach_kb(_head_pipeline([]), tmp_path / "umls", type_map={"T047": ["Disorder"]}, ranker="none")
    with pytest.raises(AttachError, match="give --type-map"):
        attach_kb(_head_pipeline([]), tmp_path / "umls", ranker="none")


def test_attach_ranker_changes_nothing_where_a_component_is_not_covered(tmp_path):
    generator = CandidateGenerator(_umls_like_kb())
    generator.ranker = _ranker_with_stats(["C0017168", "C0004057"])
    generator.to_disk(tmp_path / "umls")
    nlp = _head_pipeline([], [])
    assert attach_ranker(nlp, tmp_path / "umls") == ["head0", "head1"]
    assert nlp.get_pipe("head1").generator.ranker.cfg["learner"] == "logistic"
    nlp = _head_pipeline([], [])
    mesh = ConceptKB()
    mesh.add(Concept("D013276", "stomach ulcer", (), ("Disease",)))
    nlp.get_pipe("head1").generator = CandidateGenerator(mesh)
    with pytest.raises(AttachError, match="0.0% of its training mentions' concepts are concepts of head1's KB"):
        attach_ranker(nlp, tmp_path / "umls")
    assert nlp.get_pipe("head0").generator.ranker is None  # not half attached
    with pytest.raises(AttachError, match="has no trained ranker"):
        attach_ranker(nlp, tmp_path / "nothing")


# -- the command, end to end -------------------------------------------------------------------
@pytest.fixture(scope="module")
def recognizer(kb_dir, tmp_path_factory):
    """A tiny joint tagger (Chemical, Disease) trained on MeSH IDs, whose MEN head decides."""
    path = tmp_path_factory.mktemp("recognizer") / "model"
    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_joint_tagger", name="joint_tagger",
                 config={"model": _model_config(), "use_abbreviations": False})
    nlp.config["initialize"]["components"]["joint_tagger"] = {"kb_path": str(kb_dir)}
    _train(nlp, _examples(nlp))
    nlp.get_pipe("joint_tagger").cfg["men_threshold"] = 0.0
    nlp.get_pipe_config("joint_tagger")["men_threshold"] = 0.0
    nlp.to_disk(path)
    return path


def _attach(*args):
    """The command's result, its output with rich's box and line breaks taken out."""
    result = CliRunner().invoke(app, ["kb", "attach", *map(str, args)])
    result.message = " ".join(w for w in result.output.replace("│", " ").split() if w.strip("╭╮╰╯─"))
    return result


def test_attach_needs_types_the_recognizer_knows(recognizer, tmp_path):
    CandidateGenerator(_umls_like_kb()).to_disk(tmp_path / "umls")
    result = _attach(recognizer, tmp_path / "umls", tmp_path / "out", "--whole")
    assert result.exit_code == 2 and "give --type-map" in result.message
    result = _attach(recognizer, tmp_path / "umls", tmp_path / "out", "--type-map", "T047=Disorder")
    assert result.exit_code == 2 and "Disorder not among the recognizer's labels" in result.message
    result = _attach(recognizer, tmp_path / "umls", tmp_path / "out", "--type-map",
                     "T047=Disease,T184=Disease,T121=Chemical", "--ranker", "none", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = srsly.read_json(tmp_path / "r.json")
    assert report["concepts"]["kept"] == 5 and report["concepts"]["left out"] == 2
    assert report["ranker"]["kind"] == "none"
    assert report["components"]["joint_tagger"]["head"] == "off"
    nlp = spacy.load(tmp_path / "out")
    pipe = nlp.get_pipe("joint_tagger")
    assert pipe.cfg["men_threshold"] == HEAD_OFF and pipe.cfg["type_map"] == {}
    assert pipe.generator.types == ["Chemical", "Disease"] and pipe.generator.ranker is None
    doc = nlp(TEXT)
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("Aspirin", "Chemical", "C0004057"), ("gastric ulcer", "Disease", "C0017168")]
    assert [e._.medlink_score for e in doc.ents] == [1.0, 1.0]  # --ranker none: the raw similarity


def test_attach_of_the_same_vocabulary_keeps_the_concept_head(recognizer, kb_dir, tmp_path):
    result = _attach(recognizer, kb_dir, tmp_path / "out", "--whole", "--ranker", "none", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    settings = srsly.read_json(tmp_path / "r.json")["components"]["joint_tagger"]
    assert settings["head_concepts_in_kb"] == 1.0 and "head" not in settings and settings["men_threshold"] == 0.0
    doc = spacy.load(tmp_path / "out")(TEXT)
    assert [e.kb_id_ for e in doc.ents] == ["D001241", "D014456"]  # the head's, as trained


def test_attach_with_a_trained_ranker_of_this_kb_keeps_it(recognizer, tmp_path):
    generator = CandidateGenerator(_umls_like_kb())
    generator.ranker = _ranker_with_stats(["C0017168", "C0004057"])
    generator.to_disk(tmp_path / "umls")
    result = _attach(recognizer, tmp_path / "umls", tmp_path / "out", "--type-map", "T047=Disease,T121=Chemical",
                     "--threshold", "0.4", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = srsly.read_json(tmp_path / "r.json")
    assert report["ranker"] == {"mode": "auto", "trained_coverage": 1.0, "kind": "trained"}
    pipe = spacy.load(tmp_path / "out").get_pipe("joint_tagger")
    assert pipe.generator.ranker.cfg["learner"] == "logistic" and pipe.cfg["kb_threshold"] == 0.4


def test_attach_fits_a_ranker_on_a_corpus_of_the_kb(recognizer, tmp_path):
    from spacy.tokens import DocBin

    from ..pipeline.helpers import make_examples

    CandidateGenerator(_umls_like_kb()).to_disk(tmp_path / "umls")
    data = [("Aspirin can cause gastric ulcer.", [(0, 7, "Chemical", "C0004057"), (18, 31, "Disease", "C0017168")]),
            ("ASA and stomach ulcers.", [(0, 3, "Chemical", "C0004057"), (8, 22, "Disease", "C0017168")]),
            ("Diabetes after ibuprofen.", [(0, 8, "Disease", "C0011849"), (15, 24, "Chemical", "C0020740")]),
            ("DM and advil.", [(0, 2, "Disease", "C0011849"), (7, 12, "Chemical", "C0020740")])]
    DocBin(docs=[eg.reference for eg in make_examples(spacy.blank("en"), data)]).to_disk(tmp_path / "train.spacy")
    result = _attach(recognizer, tmp_path / "umls", tmp_path / "out", "--type-map", "T047=Disease,T121=Chemical",
                     "--train", tmp_path / "train.spacy", "--folds", "2", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = srsly.read_json(tmp_path / "r.json")
    assert report["ranker"]["kind"] == "trained" and report["ranker"]["trained_coverage"] == 1.0
    assert report["ranker_fit"]["mentions"] == 8 and report["ranker_fit"]["synonyms_added"] == 8
    generator = spacy.load(tmp_path / "out").get_pipe("joint_tagger").generator
    assert generator.ranker.cfg["learner"] == "lightgbm"
    assert "stomach ulcers" in generator.kb["C0017168"].synonyms  # the corpus's mentions joined the KB
    result = _attach(recognizer, tmp_path / "umls", tmp_path / "out2", "--train", tmp_path / "train.spacy",
                     "--ranker", "calibrated")
    assert result.exit_code == 2


def test_attached_obo_kb_links_to_its_ids_in_a_fresh_process_once_packaged(recognizer, tmp_path):
    generator = CandidateGenerator(_obo_kb(types=("Disease",)))
    generator.to_disk(tmp_path / "sample_kb")
    result = _attach(recognizer, tmp_path / "sample_kb", tmp_path / "attached", "--whole",
                     "--report", tmp_path / "attach.json")
    assert result.exit_code == 0, result.output
    report = srsly.read_json(tmp_path / "attach.json")
    assert report["ranker"]["kind"] == "calibrated" and report["components"]["joint_tagger"]["head"] == "off"
    packages = tmp_path / "packages"
    packages.mkdir()
    subprocess.run([sys.executable, "-m", "spacy", "package", str(tmp_path / "attached"), str(packages),
                    "--name", "medlink_sample_kb", "--version", "0.0.1", "--build", "wheel", "--force"],
                   check=True, capture_output=True)
    wheel = next(packages.glob("*/dist/*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        assert any(n.endswith("joint_tagger/kb/ranker/ranker.msgpack") for n in zf.namelist())
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True)
    script = ("import json, spacy\n"
              "nlp = spacy.load('en_medlink_sample_kb')\n"
              f"doc = nlp({TEXT!r})\n"
              "print(json.dumps([(e.text, e.label_, e.kb_id_, e._.medlink_score, e._.medlink_candidates)"
              " for e in doc.ents]))\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ents = json.loads(out.stdout.strip().splitlines()[-1])
    # the ontology's ID for the disease; nothing for the chemical, which the KB lacks (not the head's MeSH ID)
    assert [e[:3] for e in ents] == [["Aspirin", "Chemical", ""], ["gastric ulcer", "Disease", "MONDO:9000001"]]
    score, candidates = ents[1][3], ents[1][4]
    assert 0.0 < score < 1.0 and candidates[0] == ["MONDO:9000001", score]
    assert all(c[0].startswith("MONDO:") for c in candidates)
    assert ents[0][4] == []


def test_attach_types_an_untyped_ontology_with_a_star(recognizer, tmp_path):
    CandidateGenerator(_obo_kb(types=())).to_disk(tmp_path / "untyped")
    result = _attach(recognizer, tmp_path / "untyped", tmp_path / "out", "--whole")
    assert result.exit_code == 2 and "give --type-map" in result.message
    result = _attach(recognizer, tmp_path / "untyped", tmp_path / "out", "--type-map", "*=Disease",
                     "--calibration-mentions", "50")
    assert result.exit_code == 0, result.output
    doc = spacy.load(tmp_path / "out")(TEXT)
    assert [(e.text, e.kb_id_) for e in doc.ents] == [("Aspirin", ""), ("gastric ulcer", "MONDO:9000001")]


def test_attach_ranker_only_refuses_a_ranker_of_another_kb(recognizer, tmp_path):
    generator = CandidateGenerator(_umls_like_kb())
    generator.ranker = _ranker_with_stats(["C0017168", "C0004057"])
    generator.to_disk(tmp_path / "umls")
    result = _attach(recognizer, tmp_path / "umls", tmp_path / "out")
    assert result.exit_code == 2 and "trained against another KB" in result.message
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "umls" / RANKER_DIR / "ranker.msgpack").exists()
