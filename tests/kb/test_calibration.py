"""The calibrated similarity a KB without a trained ranker is given (`kb.calibration`):
pseudo-mentions from the KB's own synonyms, the monotone map, its reliability, the
calibrated ranking it makes, and `kb calibrate`."""
import json

import numpy
import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.kb.calibration import (ALL, PERTURBATIONS, ScoreCalibration, fit_calibration,
                                          fit_monotone, perturb, pseudo_mentions, reliability)
from spacy_medlink.kb.calibration_eval import evaluate_calibration
from spacy_medlink.kb.candidates import RANKER_DIR, CandidateGenerator
from spacy_medlink.kb.concept_kb import Concept, ConceptKB
from spacy_medlink.kb.ranker import CandidateRanker
from spacy_medlink.kb.span_lookup import span_candidates

from .test_attach import _ranker_with_stats


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


def _dev_corpus(path):
    """Four gold mentions of `_vocabulary()` concepts (three Disease, one Chemical) saved as a .spacy corpus."""
    from spacy.tokens import DocBin

    from ..pipeline.helpers import make_examples

    data = [("cardiitis 0 and acute hepatopathy 13.", [(0, 11, "Disease", "X:0001"), (16, 36, "Disease", "X:0013")]),
            ("neuritis 2 then nephritis disease 3.", [(0, 10, "Disease", "X:0002"), (16, 35, "Chemical", "X:0003")])]
    DocBin(docs=[eg.reference for eg in make_examples(spacy.blank("en"), data)]).to_disk(path)
    return path


def test_evaluate_calibration_scores_gold_mentions_and_restores_the_ranker(tmp_path):
    generator = CandidateGenerator(_vocabulary())
    ranker = CandidateRanker.calibrated(fit_calibration(generator, n_mentions=120, min_per_type=20))
    own = _ranker_with_stats(["X:0001"])
    generator.ranker = own
    result = evaluate_calibration(generator, ranker, _dev_corpus(tmp_path / "dev.spacy"), thresholds=(0.0, 1.0))
    assert generator.ranker is own  # the calibrated ranking only for the lookup
    by_label = result["by_label"]
    assert list(by_label) == ["all", "Chemical", "Disease"]
    assert [by_label[k]["mentions"] for k in by_label] == [4, 1, 3]
    for part in by_label.values():
        assert part["no_candidates"] == 0 and part["calibrated"]["n"] == part["raw_similarity"]["n"] == part["mentions"]
        # every mention is linked at 0.0, with the precision of top-1; a calibrated score never reaches 1.0
        assert part["calibrated_thresholds"]["0.0"] == {"linked": 1.0, "precision": part["accuracy@1"]}
        assert part["calibrated_thresholds"]["1.0"] == {"linked": 0.0, "precision": None}
    assert [by_label[k]["accuracy@1"] for k in by_label] == [0.75, 1.0, 0.6667]  # one Disease mention missed


def test_kb_calibrate_reports_on_a_corpus_and_saves_the_calibrated_ranking(tmp_path):
    CandidateGenerator(_vocabulary()).to_disk(tmp_path / "kb")
    _dev_corpus(tmp_path / "dev.spacy")
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
