"""MedMentions (st21pv) through the PubTator reader, on a hand-made sample.

tests/data/medmentions/st21pv_sample.txt is four made-up abstracts in the
format of the official ``st21pv/data/corpus_pubtator.txt.gz`` (semantic type
IDs as types, ``UMLS:`` CUIs), and pmids_{trng,dev,test}.txt split it like the
official ``corpus_pubtator_pmids_*.txt`` lists (2/1/1 documents).
"""
import gzip
import shutil
import warnings
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.corpora.pubtator import (
    LISTED_MISSING,
    MULTI_TYPE_NOTE,
    NOT_LISTED,
    NOT_LISTED_MENTION,
    read_pmid_list,
    read_pubtator,
)
from spacy_medlink.corpora.report import ConversionReport, CorpusFormatError
from spacy_medlink.tokenizer import biomed_nlp

DATA = Path(__file__).parents[1] / "data" / "medmentions"
SAMPLE = DATA / "st21pv_sample.txt"
SPLITS = {"trng": ["31000001", "31000002"], "dev": ["31000003"], "test": ["31000004"]}
# mentions per document of the sample
N_MENTIONS = {"31000001": 9, "31000002": 8, "31000003": 6, "31000004": 5}


@pytest.fixture(scope="module")
def nlp():
    return biomed_nlp()


@pytest.fixture
def gz_sample(tmp_path) -> Path:
    """The sample as the official file is: gzipped, named corpus_pubtator.txt.gz."""
    path = tmp_path / "corpus_pubtator.txt.gz"
    with SAMPLE.open("rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def read(path, nlp, **kwargs):
    report = ConversionReport()
    docs = list(read_pubtator(path, nlp, report, **kwargs))
    assert report.is_balanced()
    return docs, report


def write(tmp_path, content, name="pmids.txt"):
    path = tmp_path / name
    path.write_text(content, encoding="utf8")
    return path


def test_st21pv_sample_types_and_umls_ids(nlp, gz_sample):
    docs, report = read(gz_sample, nlp)
    assert [d.user_data["doc_id"] for d in docs] == list(N_MENTIONS)
    assert [len(d.spans["mentions"]) for d in docs] == list(N_MENTIONS.values())
    assert [(e.text, e.label_, e.kb_id_) for e in docs[0].ents][:3] == [
        ("Metformin", "T103", "UMLS:C0025598"),
        ("insulin", "T103", "UMLS:C0021641"),
        ("type 2 diabetes", "T038", "UMLS:C0011860"),
    ]
    assert [(e.text, e.label_, e.kb_id_) for e in docs[2].ents][2] == ("cells", "T017", "UMLS:C0007634")
    assert report.labels == {"T103": 10, "T038": 10, "T017": 2, "T204": 2, "T058": 1, "T007": 1, "T062": 1, "T031": 1}
    assert (report.documents_read, report.documents_kept) == (4, 4)
    assert report.mentions_read == report.mentions_kept == 28
    assert not report.dropped and not report.notes  # UMLS: IDs kept as they are, every mention aligned
    ids = {s.kb_id_ for d in docs for s in d.spans["mentions"]}
    assert all(i.startswith("UMLS:C") and len(i) == 13 for i in ids)


def test_gzip_is_read_by_content_not_name(nlp, gz_sample, tmp_path):
    renamed = tmp_path / "corpus_pubtator.txt"
    shutil.copyfile(gz_sample, renamed)
    docs, _ = read(renamed, nlp)
    assert len(docs) == 4


@pytest.mark.parametrize("split", list(SPLITS))
def test_pmids_filter_keeps_the_split(nlp, gz_sample, split):
    docs, report = read(gz_sample, nlp, pmids=DATA / f"pmids_{split}.txt")
    assert [d.user_data["doc_id"] for d in docs] == SPLITS[split]
    kept = sum(N_MENTIONS[p] for p in SPLITS[split])
    assert report.documents_read == 4 and report.documents_kept == len(SPLITS[split])
    assert report.mentions_read == 28 and report.mentions_kept == kept
    assert report.dropped == {NOT_LISTED: 4 - len(SPLITS[split]), NOT_LISTED_MENTION: 28 - kept}
    assert LISTED_MISSING not in report.dropped


def test_pmids_filter_counts_listed_but_missing(nlp, tmp_path):
    pmids = write(tmp_path, "31000003\n\n99999999\n31000001\n88888888\n")  # a blank line is fine
    docs, report = read(SAMPLE, nlp, pmids=pmids)
    assert [d.user_data["doc_id"] for d in docs] == ["31000001", "31000003"]  # corpus order
    assert report.dropped[LISTED_MISSING] == 2
    assert report.examples[LISTED_MISSING] == ["pmids.txt:3: 99999999", "pmids.txt:5: 88888888"]
    assert report.dropped[NOT_LISTED] == 2
    assert report.examples[NOT_LISTED] == ["st21pv_sample.txt:13", "st21pv_sample.txt:33"]
    assert "NOT KEPT (2): document: in the PMID list but not in the corpus file" in report.format()


BAD_PMID_LISTS = [
    ("31000001\npmid\n", 2, "expected one PMID \\(digits only\\) per line, got 'pmid'"),
    ("31000001\n31000002\tdev\n", 2, "expected one PMID"),
    ("PMID:31000001\n", 1, "expected one PMID"),
    ("31000001\n31000002\n31000001\n", 3, "PMID 31000001 listed twice \\(first on line 1\\)"),
]


@pytest.mark.parametrize("content,line,message", BAD_PMID_LISTS)
def test_bad_pmid_list(nlp, tmp_path, content, line, message):
    pmids = write(tmp_path, content, name="bad_pmids.txt")
    with pytest.raises(CorpusFormatError, match=rf"bad_pmids\.txt:{line}: {message}") as err:
        read(SAMPLE, nlp, pmids=pmids)
    assert err.value.line == line


def test_empty_pmid_list(nlp, tmp_path):
    with pytest.raises(ValueError, match="no PMIDs in the list"):
        read(SAMPLE, nlp, pmids=write(tmp_path, "\n\n"))


def test_official_split_lists(data_dir):
    lists = {s: read_pmid_list(data_dir / "medmentions" / f"corpus_pubtator_pmids_{s}.txt") for s in SPLITS}
    assert {s: len(p) for s, p in lists.items()} == {"trng": 2635, "dev": 878, "test": 879}
    assert not set(lists["trng"]) & set(lists["dev"]) and not set(lists["dev"]) & set(lists["test"])
    assert not set(lists["trng"]) & set(lists["test"])


# MedMentions full: a mention may have several types
FULL = (
    "1|t|Insulin therapy.\n1|a|\n"
    "1\t0\t7\tInsulin\tT116,T121\tUMLS:C0021641\n"
    "1\t8\t15\ttherapy\tT061\tUMLS:C0087111\n\n"
)


def test_several_types_fail_by_default(nlp, tmp_path):
    path = write(tmp_path, FULL, name="full.txt")
    for strict in (True, False):  # a policy, not a malformed line: --lenient does not drop it
        with pytest.raises(CorpusFormatError, match=r"full\.txt:3: several types 'T116,T121' in one mention"):
            read(path, nlp, strict=strict)


def test_several_types_keep_the_first(nlp, tmp_path):
    path = write(tmp_path, FULL, name="full.txt")
    docs, report = read(path, nlp, multi_type="first")
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Insulin", "T116"), ("therapy", "T061")]
    assert report.notes == {MULTI_TYPE_NOTE: 1}
    assert report.examples[MULTI_TYPE_NOTE] == ["full.txt:3: 'T116,T121' -> 'T116'"]
    docs, report = read(path, nlp, multi_type="first", label_map={"T116": "Chemical", "T061": ""})
    assert [e.label_ for e in docs[0].ents] == ["Chemical"]
    assert report.dropped == {"type 'T061' mapped to no label": 1}
    with pytest.raises(ValueError, match="multi_type"):
        read(path, nlp, multi_type="all")
    bad = write(tmp_path, FULL.replace("T116,T121", "T116,"), name="bad.txt")
    with pytest.raises(CorpusFormatError, match=r"bad\.txt:3: empty type"):
        read(bad, nlp, multi_type="first")


def test_registered_reader_v2(nlp, gz_sample):
    create = spacy.util.registry.readers.get("medlink.PubTatorCorpus.v2")
    with pytest.warns(UserWarning, match="3 document: not in the PMID list, 22 mention in a document not in"):
        examples = list(create(gz_sample, pmids=DATA / "pmids_dev.txt")(nlp))
    assert [eg.reference.user_data["doc_id"] for eg in examples] == ["31000003"]
    assert [e.label_ for e in examples[0].reference.ents][:2] == ["T038", "T038"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(create(gz_sample)(nlp))) == 4  # nothing dropped: no warning
    # v1 keeps its signature
    v1 = spacy.util.registry.readers.get("medlink.PubTatorCorpus.v1")
    with pytest.raises(TypeError):
        v1(gz_sample, pmids=DATA / "pmids_dev.txt")


def test_registered_reader_v2_checks_the_list_early(tmp_path):
    create = spacy.util.registry.readers.get("medlink.PubTatorCorpus.v2")
    with pytest.raises(CorpusFormatError, match=r"pmids\.txt:1: expected one PMID"):
        create(SAMPLE, pmids=write(tmp_path, "x\n"))


# --- convert CLI ---------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(app, ["convert", *map(str, args)])


@pytest.mark.parametrize("split,name", [("trng", "train"), ("dev", "dev"), ("test", "test")])
def test_convert_with_pmids(gz_sample, tmp_path, split, name):
    out = tmp_path / "corpus" / "medmentions"
    result = run(gz_sample, out, "--format", "pubtator", "--pmids", DATA / f"pmids_{split}.txt", "--name", name)
    assert result.exit_code == 0, result.output
    n_docs = len(SPLITS[split])
    assert f"documents read 4, kept {n_docs}" in result.output
    skipped = sum(N_MENTIONS.values()) - sum(N_MENTIONS[p] for p in SPLITS[split])
    assert f"{4 - n_docs} documents ({skipped} mentions) skipped: not in" in result.output
    assert "not found" not in result.output
    docs = list(DocBin().from_disk(out / f"{name}.spacy").get_docs(spacy.blank("en").vocab))
    assert [d.user_data["doc_id"] for d in docs] == SPLITS[split]
    assert all(s.kb_id_.startswith("UMLS:C") for d in docs for s in d.spans["mentions"])


def test_convert_warns_about_missing_pmids(gz_sample, tmp_path):
    pmids = write(tmp_path, "31000004\n12345678\n")
    result = run(gz_sample, tmp_path / "out", "-f", "pubtator", "--pmids", pmids, "--name", "test")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"1 PMIDs listed in {pmids} not found in {gz_sample}" in output
    assert "pmids.txt:2: 12345678" in output
    assert "mentions not kept" not in output  # the 23 skipped with their documents are not a loss
    assert len(DocBin().from_disk(tmp_path / "out" / "test.spacy")) == 1


def test_convert_pmids_errors(gz_sample, tmp_path):
    result = run(gz_sample, tmp_path, "-f", "pubtator", "--pmids", write(tmp_path, "31000001\nabc\n"))
    assert result.exit_code == 1
    assert "pmids.txt:2: expected one PMID" in " ".join(result.output.split())
    result = run(gz_sample, tmp_path, "-f", "genia", "--pmids", DATA / "pmids_dev.txt")
    assert result.exit_code == 1 and "--pmids only applies to --format pubtator" in result.output
    result = run(gz_sample, tmp_path, "-f", "cmeee", "--multi-type", "first")
    assert result.exit_code == 1 and "--multi-type only applies to --format pubtator" in result.output


def test_convert_multi_type(tmp_path):
    path = write(tmp_path, FULL, name="full.txt")
    result = run(path, tmp_path / "a", "-f", "pubtator")
    assert result.exit_code == 1
    assert "full.txt:3: several types 'T116,T121'" in " ".join(result.output.split())
    result = run(path, tmp_path / "b", "-f", "pubtator", "--multi-type", "first")
    assert result.exit_code == 0, result.output
    assert f"changed (1): {MULTI_TYPE_NOTE}" in result.output


# --- KB from the training mentions only (UMLS is licensed) ------------------------------


def test_kb_build_from_train_corpus_only(gz_sample, tmp_path):
    from spacy_medlink.kb.candidates import CandidateGenerator

    result = run(gz_sample, tmp_path / "corpus", "-f", "pubtator", "--pmids", DATA / "pmids_trng.txt", "--name", "train")
    assert result.exit_code == 0, result.output
    out = tmp_path / "kb"
    result = CliRunner().invoke(app, [
        "kb", "build", str(out), "--train-corpus", str(tmp_path / "corpus" / "train.spacy"), "--train-name", "medmentions",
    ])
    assert result.exit_code == 0, result.output
    assert "No dictionary (MEDIC, MeSH, UMLS, OBO, concept file)" in result.output
    # docs 1-2: 17 mentions of 11 CUIs (dev/test CUIs such as C0032285 pneumonia are not in it)
    assert "KB: 11 concepts" in result.output
    gen = CandidateGenerator.from_disk(out)
    kb = gen.kb
    assert "UMLS:C0032285" not in kb
    diabetes = kb["UMLS:C0011860"]
    assert diabetes.name == "type 2 diabetes" and diabetes.types == ("T038",)
    assert diabetes.sources == ("train:medmentions",)
    metformin = kb["UMLS:C0025598"]
    assert metformin.name == "Metformin" and metformin.synonyms == ("metformin",) and metformin.types == ("T103",)
    assert set(gen.types) == {"T103", "T038", "T058", "T017", "T204", "T007"}
    (cands,) = gen(["type 2 diabetes"], k=1, types=["T038"])
    assert cands[0].concept_id == "UMLS:C0011860" and cands[0].score == 1.0


def test_hier_linker_trains_on_the_sample(tmp_path):
    """The user's path, on the sample: convert with the split lists, build
    the KB of training mentions, train configs/hier_medmentions_tok2vec.cfg
    a few steps and load what it saved (21-type ET, UMLS CUIs)."""
    from spacy.cli.train import train

    runner = CliRunner()
    for split, name in (("trng", "train"), ("dev", "dev")):
        result = runner.invoke(app, ["convert", str(SAMPLE), str(tmp_path / "corpus"), "--format", "pubtator",
                                     "--pmids", str(DATA / f"pmids_{split}.txt"), "--name", name])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["kb", "build", str(tmp_path / "kb"), "--train-corpus",
                                 str(tmp_path / "corpus" / "train.spacy"), "--train-name", "medmentions"])
    assert result.exit_code == 0, result.output
    config = Path(__file__).parents[2] / "configs" / "hier_medmentions_tok2vec.cfg"
    overrides = {
        "paths.train": str(tmp_path / "corpus" / "train.spacy"),
        "paths.dev": str(tmp_path / "corpus" / "dev.spacy"),
        "paths.kb": str(tmp_path / "kb"),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
    }
    train(config, tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-last")
    hl = trained.get_pipe("hier_linker")
    assert all(label.startswith("T") for label in hl.labels)
    assert hl.concepts and all(c.startswith("UMLS:C") for c in hl.concepts)
    assert hl.generator is not None
