"""The name encoder (`kb.encoder`), its fine-tuning on KB synonyms and the ranker's cosine features."""
import json

import numpy
import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from spacy_medlink.kb.candidates import CandidateGenerator  # noqa: E402
from spacy_medlink.kb.concept_kb import Concept, ConceptKB  # noqa: E402
from spacy_medlink.kb.encoder import NameEncoder, cosines, rank_within  # noqa: E402
from spacy_medlink.kb.encoder_fit import (  # noqa: E402
    concept_batches, fit_encoder, hard_negatives, negative_mask, synonym_groups,
)

SYNONYMS = {
    "D009203": ("Myocardial Infarction", "heart attack", "cardiac infarction"),
    "D006333": ("Heart Failure", "cardiac failure", "heart decompensation"),
    "D001943": ("Breast Neoplasms", "breast cancer", "mammary carcinoma"),
    "D010051": ("Ovarian Neoplasms", "ovarian cancer", "ovary carcinoma"),
    "D008103": ("Liver Cirrhosis", "cirrhosis", "hepatic fibrosis"),
    "D003920": ("Diabetes Mellitus", "diabetes", "sugar disease"),
}


def tiny_encoder(seed: int = 0) -> NameEncoder:
    """A one-layer BERT of width 32 over a word-level vocabulary of SYNONYMS' words (no hub)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    words = sorted({w for names in SYNONYMS.values() for n in names for w in n.lower().split()} | {"failure", "cold"})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    return NameEncoder(BertModel(config).eval(), tok, max_length=16, batch_size=4)


def _kb() -> ConceptKB:
    kb = ConceptKB()
    for cid, (name, *syns) in SYNONYMS.items():
        kb.add(Concept(cid, name, tuple(syns), ("Disease",)))
    return kb


def test_embed_gives_unit_vectors_and_caches():
    enc = tiny_encoder()
    vecs = enc.embed(["heart attack", "", "Heart Attack", "heart attack"])
    assert vecs.shape == (4, 32) and vecs.dtype == numpy.float32
    numpy.testing.assert_allclose(numpy.linalg.norm(vecs[[0, 2, 3]], axis=1), 1.0, rtol=1e-5)
    assert not vecs[1].any()  # no text, no vector
    numpy.testing.assert_allclose(vecs[0], vecs[2], rtol=1e-5)  # the tokenizer lower-cases
    numpy.testing.assert_array_equal(vecs[0], vecs[3])
    assert "heart attack" in enc._cache and "" not in enc._cache
    # batches of 4 and one at a time agree (padding does not leak into the mean)
    texts = ["heart attack", "breast cancer", "diabetes", "hepatic fibrosis", "cirrhosis"]
    together = enc.embed(texts)
    enc.clear_cache()
    alone = numpy.stack([enc.embed([t])[0] for t in texts])
    numpy.testing.assert_allclose(together, alone, atol=1e-5)
    numpy.testing.assert_allclose(cosines(enc, texts[:2], texts[:2]), 1.0, rtol=1e-5)


def test_cache_is_bounded_and_least_recently_used_goes_first():
    enc = tiny_encoder()
    enc.cfg["cache_size"] = 3
    texts = ["heart attack", "breast cancer", "diabetes", "hepatic fibrosis", "cirrhosis"]
    enc.embed(texts)
    assert list(enc._cache) == texts[-3:]
    enc.embed(["diabetes"])  # a hit moves to the end
    enc.embed(["heart attack"])
    assert list(enc._cache) == ["cirrhosis", "diabetes", "heart attack"]
    assert all(vec.base is None for vec in enc._cache.values())  # own rows, not views of a batch


def test_concept_batches_never_repeat_a_concept():
    import random

    batches = concept_batches(6, 4, random.Random(0))
    seen = []
    for _ in range(30):
        batch = next(batches)
        assert len(batch) == len(set(batch)) == 4
        seen.extend(batch)
    counts = [seen.count(g) for g in range(6)]  # after each refill the queue holds every concept once
    assert sum(counts) == 120 and max(counts) - min(counts) <= 2


def test_negative_mask():
    rows, names = ["A", "B"], [["heart attack", "mi"], ["cold"]]
    cols = ["A", "B", "C", "A", "B"]
    texts = ["mi", "cold", "heart attack", "myocardial infarction", "chill"]
    assert negative_mask(rows, names, cols, texts) == [
        [False, False, True, True, False],  # C's "heart attack" is A's own text; a name of A is no negative of A
        [False, False, False, False, True],
    ]


def test_rank_within_groups():
    got = rank_within(numpy.asarray([0.1, 0.9, 0.5, 0.3, 0.3], dtype=numpy.float32), [3, 2])
    numpy.testing.assert_allclose(got, [1 / 3, 1.0, 0.5, 1.0, 0.5])


def test_round_trip_without_pickle(tmp_path):
    enc = tiny_encoder()
    texts = ["heart attack", "ovary carcinoma", "sugar disease"]
    want = enc.embed(texts)
    again = NameEncoder.from_bytes(enc.to_bytes())
    numpy.testing.assert_allclose(again.embed(texts), want, atol=2e-3)  # weights travel as float16
    enc.to_disk(tmp_path / "enc")
    from_disk = NameEncoder.from_disk(tmp_path / "enc")
    numpy.testing.assert_array_equal(from_disk.embed(texts), again.embed(texts))
    data = enc.to_dict()
    assert isinstance(data["weights"], bytes)
    json.dumps({k: v for k, v in data.items() if k != "weights"})  # the rest is JSON: no pickled objects
    with pytest.raises(FileNotFoundError, match="kb encoder"):
        NameEncoder.from_disk(tmp_path / "nothing")


def test_synonym_groups_and_hard_negatives():
    kb = _kb()
    kb.add(Concept("D000001", "Lonely", (), ("Disease",)))  # one name: no pair
    generator = CandidateGenerator(kb)
    from collections import Counter

    left_out = Counter()
    ids, groups = synonym_groups(generator, max_names=2, left_out=left_out)
    assert left_out == {"concepts_with_one_name": 1, "names_past_cap": len(SYNONYMS)}  # three names each, two kept
    ids, groups = synonym_groups(generator)
    assert "D000001" not in ids and len(ids) == len(SYNONYMS)
    assert groups[ids.index("D009203")] == ["myocardial infarction", "heart attack", "cardiac infarction"]
    negatives = hard_negatives(generator, ids, groups)
    for cid, negs in zip(ids, negatives):
        assert all(n_id != cid for _, n_id in negs)
    # "cardiac infarction" looks like "cardiac failure": the confusion the encoder is trained on
    assert ("cardiac failure", "D006333") in negatives[ids.index("D009203")]


def test_fine_tuning_pulls_synonyms_together():
    """Overfit the six concepts: every name's nearest other name becomes a synonym."""
    generator = CandidateGenerator(_kb())
    enc = tiny_encoder()
    ids, groups = synonym_groups(generator)
    names = [n for g in groups for n in g]
    owner = [cid for cid, g in zip(ids, groups) for _ in g]

    def nearest_is_synonym() -> float:
        vecs = enc.embed(names)
        sims = vecs @ vecs.T
        numpy.fill_diagonal(sims, -2)
        return float(numpy.mean([owner[j] == owner[i] for i, j in enumerate(sims.argmax(1))]))

    before = nearest_is_synonym()
    report = fit_encoder(enc, generator, steps=60, batch_size=6, learn_rate=3e-3, temperature=0.1)
    assert report["concepts"] == 6 and report["names"] == 18 and report["log"][-1]["step"] == 60
    assert report["left_out"] == {}
    assert report["log"][-1]["loss"] < report["log"][0]["loss"]
    assert nearest_is_synonym() == 1.0 > before
    assert not enc.model.training


def test_fine_tuning_needs_synonyms():
    kb = ConceptKB()
    kb.add(Concept("D000001", "Lonely", (), ("Disease",)))
    with pytest.raises(ValueError, match="two or more names"):
        fit_encoder(tiny_encoder(), CandidateGenerator(kb), steps=1)


def test_encoder_and_ranker_commands(tmp_path):
    """`kb encoder` fine-tunes from a transformers folder; `kb ranker --encoder` uses and carries it."""
    import spacy
    from spacy.tokens import DocBin
    from typer.testing import CliRunner

    from spacy_medlink.cli import app

    start = tiny_encoder()
    start.model.save_pretrained(str(tmp_path / "start"), safe_serialization=True)
    start.tokenizer.save(str(tmp_path / "start" / "tokenizer.json"))
    base = tmp_path / "base"
    CandidateGenerator(_kb()).to_disk(base)
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "encoder", str(base), str(tmp_path / "enc"), "--model", str(tmp_path / "start"),
                                 "--steps", "3", "--batch-size", "4", "--output", str(tmp_path / "enc.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "enc.json").read_text())
    assert report["concepts"] == 6 and report["log"][-1]["step"] == 3
    assert NameEncoder.from_disk(tmp_path / "enc").width == 32
    nlp = spacy.blank("en")
    docs = []
    for text, cid in (("A heart attack.", "D009203"), ("Breast cancer and diabetes.", "D001943")):
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(2 if text[0] == "A" else 0, 14 if text[0] == "A" else 13, label="Disease", kb_id=cid)]
        docs.append(doc)
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    result = runner.invoke(app, ["kb", "ranker", str(base), "--train", str(tmp_path / "train.spacy"), "--fit",
                                 str(tmp_path / "train.spacy"), "--folds", "1", "--learner", "logistic",
                                 "--encoder", str(tmp_path / "enc"), "--output", str(tmp_path / "ranker.json")])
    assert result.exit_code == 0, result.output
    ranker = CandidateGenerator.from_disk(base).ranker
    assert ranker.encoder is not None and "dense_cos" in ranker.cfg["features"]
    result = runner.invoke(app, ["kb", "ranker", str(base), "--train", str(tmp_path / "train.spacy"), "--fit",
                                 str(tmp_path / "train.spacy"), "--encoder", str(tmp_path / "enc"),
                                 "--without", "dense_cos,dense_rank", "--output", str(tmp_path / "r2.json")])
    assert result.exit_code == 2 and "never uses" in result.output
