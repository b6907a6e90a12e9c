"""`benchmark nested`: one row per number of types and the one-pass-per-type peer."""
import json

import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app

CONFIG = """
[nlp]
lang = "zh"
pipeline = ["nested"]

[nlp.tokenizer]
@tokenizers = "spacy.zh.ChineseTokenizer"
segmenter = "char"

[components]

[components.nested]
factory = "medlink_nested_recognizer"

[components.nested.queries]
dis = "在文本中找出疾病"
bod = "在文本中找出身体部位"
sym = "在文本中找出临床表现"

[components.nested.model]
@architectures = "medlink.NestedRecognizer.v1"
hidden_width = 16
lstm_depth = 1
type_width = 4
aux_lstm_width = 8
biaffine_width = 8
max_span_length = 4
dropout = 0.0

[components.nested.model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[components.nested.model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 16
attrs = ["NORM"]
rows = [100]
include_static_vectors = false

[components.nested.model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 16
depth = 1
window_size = 1
maxout_pieces = 2
"""


def test_benchmark_nested(tmp_path):
    nlp = spacy.blank("zh")
    docs = []
    for text, spans in [("肺癌患者发热", [(0, 2, "dis"), (0, 1, "bod"), (4, 6, "sym")])] * 30:
        doc = nlp.make_doc(text)
        doc.spans["nested"] = [doc.char_span(s, e, label=label) for s, e, label in spans]
        docs.append(doc)
    DocBin(docs=docs).to_disk(tmp_path / "d.spacy")
    (tmp_path / "c.cfg").write_text(CONFIG, encoding="utf8")
    out = tmp_path / "b.json"
    result = CliRunner().invoke(app, ["benchmark", "nested", str(tmp_path / "c.cfg"), "--data", str(tmp_path / "d.spacy"),
                                      "--types", "2,3", "--limit", "30", "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]
    assert [r["types"] for r in rows] == [1, 2, 3]
    assert rows[2]["labels"] == ["bod", "dis", "sym"]
    assert rows[0]["speedup_vs_one_pass_per_type"] == 1.0
    assert all(r["sentences_per_second"] > 0 for r in rows)
