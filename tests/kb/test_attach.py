"""`kb attach`: a trained recognizer linking to a vocabulary of the user's, typed by a
type map and ranked by a trained ranker valid for it or by a similarity calibrated on
the KB's own synonyms; the calibration itself."""
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
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli.kb_attach import HEAD_OFF, choose_ranker, parse_type_map, retype_kb
from spacy_medlink.kb.calibration import (ALL, PERTURBATIONS, ScoreCalibration, fit_calibration, fit_monotone,
                                          perturb, pseudo_mentions, reliability)
from spacy_medlink.kb.candidates import RANKER_DIR, CandidateGenerator
from spacy_medlink.kb.concept_kb import Concept, ConceptKB
from spacy_medlink.kb.mention_stats import MentionStats
from spacy_medlink.kb.ranker import CandidateRanker
from spacy_medlink.kb.span_lookup import span_candidates

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


def _vocabulary(n: int = 120) -> ConceptKB:
    """A KB of `n` invented concepts of two types, each with a few names that share words,
    so that held-out names are sometimes found and sometimes not."""
    rng = numpy.random.default_rng(0)
    stems = ["cardi", "hepat", "neur", "nephr", "gastr", "derm", "oste", "arthr", "my", "encephal", "pneum", "col"]
    kinds = ["itis", "opathy", "algia", "oma", "osis", "ectasia"]
    kb = ConceptKB()
    for i in range(n):
        stem, kind = stems[i % len(stems)], kinds[(i // len(stems)) % len(kinds)]
        extra = ["acute", "chronic", "familial", "juvenile", "type 1", "type 2", "primary", "secondary"]
        a, b = rng.choice(len(extra), size=2, replace=False)
        name = f"{stem}{kind} {i}"
        synonyms = (f"{extra[a]} {stem}{kind} {i}", f"{stem}{kind} {extra[b]} {i}", f"{stem}{kind} disease {i}")
        kb.add(Concept(f"X:{i:04d}", name, synonyms, ("Disease" if i % 3 else "Chemical",)))
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


# -- calibration -----------------------------------------------------------------------------
def test_perturbations_change_the_name():
    import random

    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        text, kind = perturb("chronic kidney disease", rng)
        seen.add(kind)
        assert kind in PERTURBATIONS and text != "chronic kidney disease"
    assert seen == set(PERTURBATIONS)
    assert perturb("X", rng) == ("X", "")  # nothing applies


def test_fit_monotone_is_monotone_and_bounded():
    x, y = fit_monotone([0.1, 0.2, 0.3, 0.5, 0.9, 1.0, 1.0], [0, 1, 0, 1, 1, 1, 1])
    assert all(a <= b for a, b in zip(x, x[1:])) and all(a <= b for a, b in zip(y, y[1:]))
    assert min(y) >= 1 / 8 and max(y) <= 7 / 8  # never certain on 7 examples


def test_calibration_from_the_kb_is_monotone_in_unit_interval_and_round_trips(tmp_path):
    generator = CandidateGenerator(_vocabulary())
    mentions = pseudo_mentions(generator, n=120, seed=0)
    assert {m.type_ for m in mentions} == {"Chemical", "Disease"}
    # 60 a type; Disease has 80 concepts, so its 30% exact share is exact (Chemical has 40)
    assert sum(m.type_ == "Disease" for m in mentions) == 60
    assert sum(m.type_ == "Disease" and m.held_key is None for m in mentions) == 18
    calibration = fit_calibration(generator, n_mentions=120, min_per_type=20, seed=0)
    assert set(calibration.maps) == {ALL, "Chemical", "Disease"}
    grid = numpy.linspace(0, 1, 101)
    for key in calibration.maps:
        values = calibration(grid, key)
        assert numpy.all(numpy.diff(values) >= 0) and values.min() > 0.0 and values.max() < 1.0
    info = calibration.info
    assert info["pseudo_mentions"] == len(mentions) and 0.0 < info["accuracy@1"] < 1.0
    assert set(info["held_out"]) == {"raw_similarity", "calibrated"}
    assert info["held_out"]["calibrated"]["n"] == len(mentions)
    # saved as JSON, no pickle; the same map after a round trip
    calibration.to_disk(tmp_path / "calibration.json")
    again = ScoreCalibration.from_disk(tmp_path / "calibration.json")
    json.loads((tmp_path / "calibration.json").read_text())
    for key in calibration.maps:
        numpy.testing.assert_array_equal(again(grid, key), calibration(grid, key))
    assert again(grid, "no such label").tolist() == calibration(grid).tolist()  # the map over all mentions
    with pytest.raises(ValueError, match="not monotone"):
        ScoreCalibration({ALL: ([0.0, 1.0], [0.9, 0.1])})


def test_reliability_measures_calibration_error():
    assert reliability([0.9, 0.9, 0.1, 0.1], [1, 1, 0, 0])["ece"] == pytest.approx(0.1)
    assert reliability([0.5, 0.5], [1, 0])["ece"] == 0.0


def test_calibrated_ranker_keeps_the_generator_order_and_travels_with_the_kb(tmp_path):
    generator = CandidateGenerator(_vocabulary())
    ranker = CandidateRanker.calibrated(fit_calibration(generator, n_mentions=120, min_per_type=20))
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Chronic cardiitis 0 and hepatopathy 13 then hepatopathy disease 13")
    doc.ents = [doc.char_span(0, 19, label="Disease"), doc.char_span(24, 38, label="Disease"),
                doc.char_span(44, 66, label="Disease")]
    raw = span_candidates(generator, list(doc.ents), k=5)
    generator.ranker = ranker
    calibrated = span_candidates(generator, list(doc.ents), k=5)
    for before, after in zip(raw, calibrated):
        assert [c.concept_id for c in after] == [c.concept_id for c in before]
        expected = ranker.calibration([c.score for c in before], "Disease")
        assert [c.score for c in after] == pytest.approx(expected.tolist())
        assert all(0.0 <= c.score <= 1.0 for c in after)
    generator.to_disk(tmp_path / "kb")
    loaded = CandidateGenerator.from_disk(tmp_path / "kb")
    assert loaded.ranker is not None and loaded.ranker.cfg["learner"] == "calibrated"
    assert loaded.ranker.calibration.to_dict() == ranker.calibration.to_dict()
    again = CandidateGenerator.from_bytes(generator.to_bytes())
    assert [[(c.concept_id, c.score) for c in cs] for cs in span_candidates(again, list(doc.ents), k=5)] == \
        [[(c.concept_id, c.score) for c in cs] for cs in calibrated]
    with pytest.raises(ValueError, match="fit on the KB"):
        ranker.fit(numpy.zeros((2, 1)), numpy.zeros(2))


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
    with pytest.raises(typer.BadParameter, match="another KB"):
        choose_ranker(generator, foreign, "trained", 0.7)
    with pytest.raises(typer.BadParameter, match="no trained ranker"):
        choose_ranker(generator, None, "trained", 0.7)
    assert choose_ranker(generator, own, "none", 0.7)[0] is None


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


def test_kb_calibrate_reports_on_a_corpus_and_saves_the_calibrated_ranking(tmp_path):
    from spacy.tokens import DocBin

    from ..pipeline.helpers import make_examples

    CandidateGenerator(_vocabulary()).to_disk(tmp_path / "kb")
    data = [("cardiitis 0 and acute hepatopathy 13.", [(0, 11, "Disease", "X:0001"), (16, 36, "Disease", "X:0013")]),
            ("neuritis 2 then nephritis disease 3.", [(0, 10, "Disease", "X:0002"), (16, 35, "Chemical", "X:0003")])]
    DocBin(docs=[eg.reference for eg in make_examples(spacy.blank("en"), data)]).to_disk(tmp_path / "dev.spacy")
    result = CliRunner().invoke(app, ["kb", "calibrate", str(tmp_path / "kb"), "--output", str(tmp_path / "c.json"),
                                      "--eval", str(tmp_path / "dev.spacy"), "--calibration-mentions", "120",
                                      "--save"])
    assert result.exit_code == 0, result.output
    report = srsly.read_json(tmp_path / "c.json")
    evaluated = report["eval"]["by_label"]
    assert set(evaluated) == {"all", "Chemical", "Disease"} and evaluated["all"]["mentions"] == 4
    assert set(evaluated["all"]["calibrated_thresholds"]) == {"0.5", "0.7", "0.9"}
    assert ScoreCalibration.from_dict(report["calibration"]).maps.keys() >= {ALL}
    loaded = CandidateGenerator.from_disk(tmp_path / "kb")
    assert loaded.ranker.cfg["learner"] == "calibrated"
    # a KB with a trained ranker keeps it
    generator = CandidateGenerator(_vocabulary())
    generator.ranker = _ranker_with_stats(["X:0001"])
    generator.to_disk(tmp_path / "trained")
    result = CliRunner().invoke(app, ["kb", "calibrate", str(tmp_path / "trained"), "--output",
                                      str(tmp_path / "c2.json"), "--calibration-mentions", "60", "--save"])
    assert result.exit_code == 2
    assert CandidateRanker.from_disk(tmp_path / "trained" / RANKER_DIR).cfg["learner"] == "logistic"
