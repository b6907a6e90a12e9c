import gzip
from pathlib import Path
import random

import numpy
import pytest
import spacy
import srsly
from spacy.attrs import LOWER
from spacy.vectors import Mode, Vectors
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli.vectors import nearest_neighbours, read_vocab, unmask

NATURAL = [
    "Cisplatin-induced nephrotoxicity (CIN) in 12 patients, p<0.05.",
    "Ca2+ channels in the U.S. were blocked.",
]
LOWERCASED = [
    "the dose was <dig> mg/kg <cit> . serum na+ rose <dig> <dig> <cit>",
    "<cit>",
]


def _invoke(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.fixture
def unlabeled(tmp_path):
    natural = tmp_path / "natural.txt.gz"
    with gzip.open(natural, "wt", encoding="utf8") as fh:
        fh.write("\n".join(NATURAL) + "\n")
    lowercased = tmp_path / "sumpubmed_lc.txt"  # plain text is read too
    lowercased.write_text("\n".join(LOWERCASED) + "\n", encoding="utf8")
    return natural, lowercased


def test_unmask():
    assert unmask("p < <dig> <cit> .") == ("p < 0 .", 1, 1)
    assert unmask("<dig> <dig>") == ("0 0", 2, 0)
    assert unmask("a <b> c") == ("a <b> c", 0, 0)


def test_text_tokenizes_lowercases_and_unmasks(tmp_path, unlabeled):
    output = tmp_path / "out" / "text.txt"
    result = _invoke("vectors", "text", output, *unlabeled)
    assert result.exit_code == 0, result.output
    lines = output.read_text(encoding="utf8").split("\n")
    assert lines == [
        "cisplatin - induced nephrotoxicity ( cin ) in 12 patients , p < 0.05 .",
        "ca 2+ channels in the u.s. were blocked .",
        "the dose was 0 mg / kg . serum na + rose 0 0",
        "",  # a line that held only a citation stays, as an empty line
        "",
    ]
    stats = srsly.read_json(tmp_path / "out" / "text.stats.json")
    assert stats["total"] == {
        "lines": 4,
        "tokens_in": 7 + 7 + 13 + 1,
        "tokens_out": 15 + 9 + 14 + 0,
        "digit_masks": 3,
        "citations_dropped": 3,
    }
    assert stats["inputs"][str(unlabeled[1])]["citations_dropped"] == 3


def test_text_keeps_case_and_limits_lines(tmp_path, unlabeled):
    output = tmp_path / "text.txt"
    result = _invoke("vectors", "text", output, *unlabeled, "--no-lowercase", "--limit-lines", 1)
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf8").splitlines() == [
        "Cisplatin - induced nephrotoxicity ( CIN ) in 12 patients , p < 0.05 .",
        "the dose was 0 mg / kg . serum na + rose 0 0",
    ]


def test_text_zh_gives_one_token_per_character_as_the_chinese_pipelines(tmp_path):
    src = tmp_path / "zh.txt"
    src.write_text("患者肺癌三年，CT示占位。\n", encoding="utf8")
    output = tmp_path / "text.txt"
    result = _invoke("vectors", "text", output, src, "--lang", "zh", "--no-lowercase")
    assert result.exit_code == 0, result.output
    tokens = output.read_text(encoding="utf8").split()
    nlp = spacy.util.load_model_from_config(spacy.util.load_config(Path(__file__).parents[1] / "configs" / "nested_zh_vectors.cfg"), auto_fill=True)
    assert tokens == [t.text for t in nlp.make_doc("患者肺癌三年，CT示占位。")]
    assert tokens[:6] == ["患", "者", "肺", "癌", "三", "年"]
    assert _invoke("vectors", "text", output, src, "--lang", "xx").exit_code != 0


def test_text_names_file_and_line_of_bad_utf8(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbad \xff byte\n")
    result = _invoke("vectors", "text", tmp_path / "out.txt", bad)
    assert result.exit_code == 1
    assert "bad.txt:2: not UTF-8" in result.output.replace("\n", " ")


def test_nearest_neighbours_default_mode():
    words = ["cisplatin", "carboplatin", "seizures", "epilepsy"]
    data = numpy.asarray([[1, 0.1, 0], [0.9, 0.2, 0], [0, 1, 0.2], [0, 0.8, 0.3]], dtype="float32")
    vectors = Vectors(data=data, keys=[spacy.strings.hash_string(w) for w in words], attr="LOWER")
    found = nearest_neighbours(vectors, ["cisplatin", "epilepsy", "unknown"], words, n=2)
    assert [w for w, _ in found["cisplatin"]] == ["carboplatin", "seizures"]
    cosine = data[0] @ data[1] / numpy.linalg.norm(data[0]) / numpy.linalg.norm(data[1])
    assert found["cisplatin"][0][1] == pytest.approx(float(cosine), abs=1e-6)
    assert [w for w, _ in found["epilepsy"]] == ["seizures", "carboplatin"]
    assert found["unknown"] == []


def _tiny_corpus(path, n_lines=400, seed=0):
    """Two topics, so that the tiny model has something to learn."""
    rng = random.Random(seed)
    drugs = ["cisplatin", "carboplatin", "oxaliplatin", "haloperidol", "lithium"]
    diseases = ["nephrotoxicity", "seizures", "epilepsy", "hepatitis", "psychosis"]
    frames = [
        "patients received {d} at a dose of 0 mg / kg daily .",
        "{d} was given intravenously and the dose of {d} was reduced .",
        "{x} was diagnosed in 0 patients with severe {x} .",
        "symptoms of {x} included fever , and {x} resolved .",
    ]
    with path.open("w", encoding="utf8") as fh:
        for _ in range(n_lines):
            frame = rng.choice(frames)
            fh.write(frame.format(d=rng.choice(drugs), x=rng.choice(diseases)) + "\n")


@pytest.fixture(scope="module")
def tiny_vectors(tmp_path_factory):
    root = tmp_path_factory.mktemp("floret")
    text = root / "text.txt"
    _tiny_corpus(text)
    prefix = root / "tiny"
    args = ["vectors", "train", text, prefix, "--dim", 10, "--epoch", 1, "--bucket", 1000]
    result = _invoke(*args, "--min-count", 1, "--threads", 1)
    assert result.exit_code == 0, result.output
    from spacy.cli import app as spacy_app

    model = root / "model"
    init = ["init", "vectors", "en", f"{prefix}.floret", str(model), "--mode", "floret", "--attr", "LOWER"]
    result = CliRunner().invoke(spacy_app, init)
    assert result.exit_code == 0, result.output
    return prefix, model


def test_train_writes_floret_table_vocab_and_info(tiny_vectors):
    prefix, _ = tiny_vectors
    header = open(f"{prefix}.floret", encoding="utf8").readline().split()
    assert header[:5] == ["1000", "10", "4", "5", "2"]  # bucket dim minn maxn hash_count
    info = srsly.read_json(f"{prefix}.train.json")
    assert info["params"]["dim"] == 10 and info["params"]["mode"] == "floret"
    assert info["train_seconds"] >= 0 and info["floret_bytes"] > 0
    counts = read_vocab(prefix.parent / "tiny.vocab.tsv")
    assert info["n_words"] == len(counts) and info["n_word_tokens"] == sum(counts.values())
    assert list(counts.values()) == sorted(counts.values(), reverse=True)
    assert "cisplatin" in counts and "." in counts


def test_floret_pipeline_gives_oov_words_a_vector(tiny_vectors):
    _, model = tiny_vectors
    nlp = spacy.load(model)
    vectors = nlp.vocab.vectors
    assert vectors.mode == Mode.floret and vectors.attr == LOWER
    assert vectors.shape == (1000, 10)
    doc = nlp("Cisplatin and XYZZYPLATIN")
    assert all(token.has_vector for token in doc)
    assert numpy.abs(doc[2].vector).sum() > 0  # never seen in training
    numpy.testing.assert_allclose(doc[0].vector, nlp.vocab["cisplatin"].vector)  # keyed on LOWER


def test_neighbours_cli(tiny_vectors, tmp_path):
    prefix, model = tiny_vectors
    output = tmp_path / "neighbours.txt"
    vocab = f"{prefix}.vocab.tsv"
    result = _invoke("vectors", "neighbours", model, "Cisplatin", "xyzzyplatin", "-n", 3, "--vocab", vocab, "-o", output)
    assert result.exit_code == 0, result.output
    lines = output.read_text(encoding="utf8").splitlines()
    assert lines[0].startswith(f"# {model}: mode floret, shape (1000, 10), attr LOWER")
    assert lines[1].startswith("cisplatin (") and "times in training" in lines[1]
    assert lines[5] == "xyzzyplatin (not a training word)"
    counts = read_vocab(prefix.parent / "tiny.vocab.tsv")
    for line in lines[2:5] + lines[6:9]:
        score, word = line.split()
        assert word in counts and word != "cisplatin" and -1 <= float(score) <= 1
    assert len(lines) == 9


def test_neighbours_needs_vocab_for_floret(tiny_vectors):
    _, model = tiny_vectors
    result = _invoke("vectors", "neighbours", model, "cisplatin")
    assert result.exit_code == 1
    assert "--vocab" in result.output


def test_jsonl_for_pretraining_keeps_case_and_skips_empty_lines(tmp_path, unlabeled):
    output = tmp_path / "raw.jsonl"
    result = _invoke("vectors", "jsonl", output, *unlabeled)
    assert result.exit_code == 0, result.output
    assert list(srsly.read_jsonl(output)) == [
        {"text": NATURAL[0]},
        {"text": NATURAL[1]},
        {"text": "the dose was 0 mg/kg . serum na+ rose 0 0"},
    ]
    assert "Wrote 3 of 4 lines" in result.output and "1 empty lines skipped" in result.output
