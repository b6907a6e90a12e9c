import json

import spacy
from spacy.tokens import DocBin, Span
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli.evaluate import score_tables


def test_tables_for_every_score_family():
    scores = {"ents_p": 0.9, "ents_r": 0.8, "ents_f": 0.85, "ents_per_type": {"Disease": {"p": 0.9, "r": 0.8, "f": 0.85}},
              "nen_p": 0.7, "nen_r": 0.6, "nen_f": 0.65, "nen_per_type": {"Disease": {"p": 0.7, "r": 0.6, "f": 0.65}},
              "nen_doc_p": None, "nen_doc_r": None, "nen_doc_f": None, "nen_doc_per_type": {}}
    blocks = score_tables(scores)
    assert [b.split("\n")[0] for b in blocks] == ["NER", "Normalization, mention level"]
    assert "65.00" in blocks[1] and "Disease" in blocks[1]


def test_cli_prints_and_writes_the_json(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "Chemical", "pattern": "cisplatin"}])
    nlp.to_disk(tmp_path / "model")
    doc = nlp.make_doc("cisplatin and lithium")
    doc.ents = [Span(doc, 0, 1, label="Chemical"), Span(doc, 2, 3, label="Chemical")]
    DocBin(docs=[doc]).to_disk(tmp_path / "gold.spacy")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "model"), str(tmp_path / "gold.spacy"),
                                      "-o", str(tmp_path / "out" / "scores.json")])
    assert result.exit_code == 0, result.output
    assert "NER" in result.output and "100.00" in result.output and "50.00" in result.output
    assert abs(json.loads((tmp_path / "out" / "scores.json").read_text())["ents_f"] - 2 / 3) < 1e-6
