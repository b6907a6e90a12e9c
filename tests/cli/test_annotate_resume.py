"""A resumed `annotate` run: its summary counts the entities of the whole output, the chunks
an earlier run wrote included."""
import json

import pytest
import spacy

from spacy_medlink.annotate.records import read_records
from spacy_medlink.annotate.run import annotate

from .test_annotate import _jsonl, model  # noqa: F401  (the ruler pipeline fixture)


@pytest.mark.parametrize("fmt", ["jsonl", "pubtator", "bioc-xml"])
def test_resumed_summary_counts_the_whole_output(model, tmp_path, fmt):  # noqa: F811
    src = _jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": "cisplatin and renal failure. " * (i % 3) + "Cisplatin."}
                                         for i in range(8)])
    nlp = spacy.load(model)
    whole = annotate(nlp, read_records([src]), tmp_path / "whole", fmt=fmt, chunk_size=3)
    assert whole["entities_per_type"] == {"Chemical": 15, "Disease": 7}
    out = tmp_path / "out"
    annotate(nlp, read_records([src]), out, fmt=fmt, chunk_size=3)
    (out / "part-00002.json").unlink()  # the last chunk is written again
    manifest = json.loads((out / "part-00000.json").read_text())
    assert manifest["entities_per_type"] == {"Chemical": 6, "Disease": 3}
    del manifest["entities_per_type"]  # as an earlier version wrote it: counted from its chunk
    (out / "part-00000.json").write_text(json.dumps(manifest))
    resumed = annotate(nlp, read_records([src]), out, fmt=fmt, chunk_size=3)
    assert resumed["resumed"] == 6 and resumed["annotated"] == 2 and resumed["chunks"] == 3
    assert resumed["entities_per_type"] == whole["entities_per_type"]
    assert json.loads((out / "summary.json").read_text())["entities_per_type"] == whole["entities_per_type"]
