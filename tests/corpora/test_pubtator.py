import gzip
import warnings

import pytest
import spacy
from spacy.training import Example

from spacy_medlink.corpora.pubtator import LABEL_MAPS, read_pubtator, resolve_label_map
from spacy_medlink.corpora.report import ConversionReport, CorpusFormatError
from spacy_medlink.tokenizer import biomed_nlp

TITLE = "Naloxone reverses the antihypertensive effect of clonidine."
ABSTRACT = "In rats, clonidine and alpha-methyldopa lowered blood pressure."
# offsets into TITLE + " " + ABSTRACT
NALOXONE = (0, 8)
CLONIDINE = (49, 58)
CLONIDINE2 = (69, 78)
ALPHA_METHYLDOPA = (83, 99)


@pytest.fixture(scope="module")
def nlp():
    return biomed_nlp()


def block(pmid="227508", mentions=(), title=TITLE, abstract=ABSTRACT):
    lines = [f"{pmid}|t|{title}", f"{pmid}|a|{abstract}"]
    lines.extend(mentions)
    return "\n".join(lines) + "\n"


def mention(span, type_="Chemical", ids="D009270", pmid="227508", text=None, extra=()):
    start, end = span
    full = TITLE + " " + ABSTRACT
    fields = [pmid, str(start), str(end), full[start:end] if text is None else text, type_, ids, *extra]
    return "\t".join(fields)


def read(path, nlp, **kwargs):
    report = ConversionReport()
    docs = list(read_pubtator(path, nlp, report, **kwargs))
    assert report.is_balanced()
    return docs, report


def write(tmp_path, content, name="corpus.txt"):
    path = tmp_path / name
    path.write_text(content, encoding="utf8")
    return path


def test_offsets_fixture_is_right():
    full = TITLE + " " + ABSTRACT
    assert full[slice(*NALOXONE)] == "Naloxone"
    assert full[slice(*CLONIDINE)] == "clonidine"
    assert full[slice(*CLONIDINE2)] == "clonidine"
    assert full[slice(*ALPHA_METHYLDOPA)] == "alpha-methyldopa"


def test_basic_document(nlp, tmp_path):
    content = block(
        mentions=[
            mention(NALOXONE, ids="D009270"),
            mention(CLONIDINE, ids="D003000"),
            mention(ALPHA_METHYLDOPA, ids="D008750"),
        ]
    )
    docs, report = read(write(tmp_path, content), nlp)
    assert len(docs) == 1
    doc = docs[0]
    assert doc.text == TITLE + " " + ABSTRACT
    assert doc.user_data["doc_id"] == "227508"
    assert doc.user_data["medlink_relations"] == []
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("Naloxone", "Chemical", "D009270"),
        ("clonidine", "Chemical", "D003000"),
        ("alpha-methyldopa", "Chemical", "D008750"),
    ]
    assert [s.text for s in doc.spans["mentions"]] == [e.text for e in doc.ents]
    assert (report.documents_read, report.documents_kept) == (1, 1)
    assert (report.mentions_read, report.mentions_kept) == (3, 3)
    assert report.labels == {"Chemical": 3}
    assert not report.notes and not report.dropped


def test_id_quirks(nlp, tmp_path):
    ids = [
        "MESH:D009270",  # prefix
        "C000623891",  # 10-character supplementary concept
        "omim:106210 ",  # OMIM prefix spelling, trailing space
        " D001943|D010051",  # composite, leading space
        "D004829+D003294",  # conjunction
        "-1",  # no concept (BC5CDR)
    ]
    spans = [NALOXONE, CLONIDINE, CLONIDINE2, ALPHA_METHYLDOPA, (9, 17), (22, 38)]
    content = block(mentions=[mention(s, ids=i) for s, i in zip(spans, ids)])
    docs, report = read(write(tmp_path, content), nlp)
    assert [s.kb_id_ for s in docs[0].spans["mentions"]] == [
        "D009270",
        "C000623891",
        "OMIM:106210",
        "D001943|D010051",
        "D004829+D003294",
        "",
    ]
    assert report.notes["MESH: prefix stripped"] == 1
    assert report.notes["whitespace stripped from ID"] == 2
    assert report.notes["no concept"] == 1
    assert report.mentions_kept == 6


def test_more_id_quirks(nlp, tmp_path):
    content = block(
        mentions=[
            mention(NALOXONE, ids="-"),
            mention(CLONIDINE, ids="D002544|-1"),
            mention(CLONIDINE2, ids="D001943,D010051"),
            mention(ALPHA_METHYLDOPA, ids=""),
        ]
    )
    docs, report = read(write(tmp_path, content), nlp)
    assert [s.kb_id_ for s in docs[0].ents] == ["", "D002544", "D001943|D010051", ""]
    assert report.notes["no concept"] == 2
    assert report.notes["nil part of a composite ID dropped"] == 1
    assert report.notes["',' list separator read as '|'"] == 1
    assert report.examples["no concept"] == ["corpus.txt:3", "corpus.txt:6"]


def test_bc5cdr_seventh_column_and_relations(nlp, tmp_path):
    content = block(
        mentions=[
            mention(NALOXONE, extra=["naloxone"]),
            mention(CLONIDINE, ids="D003000", extra=[""]),  # empty 7th column, trailing TAB
            "227508\tCID\tD008750\tD007022",
            "227508\tCID\tD003000\tD007022",
        ]
    )
    docs, report = read(write(tmp_path, content), nlp)
    assert docs[0].user_data["medlink_relations"] == [["CID", "D008750", "D007022"], ["CID", "D003000", "D007022"]]
    assert report.mentions_read == 2
    assert report.notes["relation line kept in user_data['medlink_relations']"] == 2


def test_mention_with_trailing_spaces(nlp, tmp_path):
    content = block(mentions=[mention(CLONIDINE, text="clonidine  ")])
    docs, report = read(write(tmp_path, content), nlp)
    assert [e.text for e in docs[0].ents] == ["clonidine"]
    assert report.notes["whitespace stripped from mention string"] == 1


def test_duplicate_document(nlp, tmp_path):
    one = block(pmid="8528200", mentions=[mention(NALOXONE, pmid="8528200")])
    path = write(tmp_path, one + "\n" + block(pmid="1") + "\n" + one)
    docs, report = read(path, nlp)
    assert [d.user_data["doc_id"] for d in docs] == ["8528200", "1", "8528200"]
    assert report.notes["duplicate document"] == 1
    assert report.examples["duplicate document"] == ["corpus.txt:8"]
    assert report.mentions_kept == 2
    docs, report = read(path, nlp, duplicates="drop")
    assert [d.user_data["doc_id"] for d in docs] == ["8528200", "1"]
    assert (report.documents_read, report.documents_kept) == (3, 2)
    assert report.dropped == {"document: duplicate document": 1, "mention in a dropped duplicate document": 1}


def test_full_text_passages_and_gzip(nlp, tmp_path):
    content = "\n".join(
        [
            "42|t|Aspirin.",
            "42|a|We gave aspirin.",
            "42|x|Then heparin.",
            "42\t0\t7\tAspirin\tChemical\tD001241",
            "42\t31\t38\theparin\tChemical\tD006493",
            "",
        ]
    )
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wt", encoding="utf8") as f:
        f.write(content)
    docs, report = read(path, nlp)
    assert docs[0].text == "Aspirin. We gave aspirin. Then heparin."
    assert [e.text for e in docs[0].ents] == ["Aspirin", "heparin"]


def test_label_map(nlp, tmp_path):
    content = block(mentions=[mention(NALOXONE, type_="SpecificDisease"), mention(CLONIDINE, type_="Modifier")])
    path = write(tmp_path, content)
    docs, report = read(path, nlp, label_map="ncbi")
    assert [e.label_ for e in docs[0].ents] == ["Disease", "Disease"]
    assert report.labels == {"Disease": 2}
    docs, report = read(path, nlp, label_map={"SpecificDisease": "Disease", "Modifier": ""})
    assert [e.label_ for e in docs[0].ents] == ["Disease"]
    assert report.dropped == {"type 'Modifier' mapped to no label": 1}
    with pytest.raises(CorpusFormatError, match=r"corpus\.txt:4: type 'Modifier' is not in the label map"):
        read(path, nlp, label_map={"SpecificDisease": "Disease"})


def test_resolve_label_map(tmp_path):
    assert resolve_label_map(None) is None
    assert resolve_label_map("ncbi") == LABEL_MAPS["ncbi"]
    assert resolve_label_map('{"Chemical": "CHEM"}') == {"Chemical": "CHEM"}
    (tmp_path / "m.json").write_text('{"Disease": "DIS"}')
    assert resolve_label_map(str(tmp_path / "m.json")) == {"Disease": "DIS"}
    with pytest.raises(ValueError, match="not a preset"):
        resolve_label_map("nbci")


def test_overlapping_mentions(nlp, tmp_path):
    content = block(
        mentions=[
            mention((83, 88), ids="D1"),  # "alpha"
            mention(ALPHA_METHYLDOPA, ids="D2"),
            mention(ALPHA_METHYLDOPA, ids="D2"),  # exact duplicate
        ]
    )
    docs, report = read(write(tmp_path, content), nlp)
    doc = docs[0]
    assert [e.text for e in doc.ents] == ["alpha-methyldopa"]
    assert [s.text for s in doc.spans["mentions"]] == ["alpha", "alpha-methyldopa", "alpha-methyldopa"]
    assert report.mentions_kept == 3
    assert report.notes["overlapping mention kept in doc.spans only"] == 2


def test_misaligned_mentions(tmp_path):
    nlp = spacy.blank("en")  # keeps "(CYP)-induced" and "Na(+)/K(+)-ATPase" whole
    abstract = "Cyclophosphamide (CYP)-induced cystitis and Na(+)/K(+)-ATPase."
    full = TITLE + " " + abstract
    cyp = full.index("CYP")
    na = full.index("Na(")
    k = full.index("K(+)")
    lines = [f"1\t{cyp}\t{cyp + 3}\tCYP\tChemical\tD003520", f"1\t{na}\t{na + 2}\tNa\tChemical\tD012964"]
    lines.append(f"1\t{k}\t{k + 1}\tK\tChemical\tD011188")
    path = write(tmp_path, block(pmid="1", abstract=abstract, mentions=lines))
    docs, report = read(path, nlp)
    assert [e.text for e in docs[0].ents] == ["CYP)-induced", "Na(+)/K(+)-ATPase"]
    assert report.notes["expanded to token boundaries"] == 2
    assert report.dropped == {"expanded to token boundaries, then overlapped another mention": 1}
    docs, report = read(path, nlp, misaligned="drop")
    assert list(docs[0].ents) == []
    assert report.dropped == {"not aligned to token boundaries": 3}
    # the biomedical tokenizer aligns all three
    docs, report = read(path, biomed_nlp())
    assert [e.text for e in docs[0].ents] == ["CYP", "Na", "K"]
    assert not report.notes and not report.dropped


BAD_MENTIONS = [
    ("227508\t0\t8\tNaloxone", "too few fields"),
    ("227508\tzero\t8\tNaloxone\tChemical\tD009270", "non-integer offset"),
    ("227508\t0\t8.5\tNaloxone\tChemical\tD009270", "non-integer offset"),
    ("227508\tzero\teight\tNaloxone\tChemical\tD009270", "non-integer offset"),
    ("227508\tCID\t8\tNaloxone", "too few fields"),
    ("227508\t120\t130\tNaloxone\tChemical\tD009270", "offset past the end of the text"),
    ("227508\t8\t8\t\tChemical\tD009270", "empty or negative span"),
    ("227508\t8\t0\tNaloxone\tChemical\tD009270", "empty or negative span"),
    ("999\t0\t8\tNaloxone\tChemical\tD009270", "PMID of another document"),
    ("227508\t0\t8\tNalozone\tChemical\tD009270", "mention string differs from the text"),
    ("227508\t0\t8\tNaloxone\t \tD009270", "empty type"),
]


def test_mention_line_without_id_column(nlp, tmp_path):
    # GNormPlus and NLM-Gene write a mention without a concept with no ID column at all
    content = block(mentions=["227508\t0\t8\tNaloxone\tChemical", mention(CLONIDINE, ids="D003000")])
    docs, report = read(write(tmp_path, content), nlp)
    assert [(e.text, e.kb_id_) for e in docs[0].ents] == [("Naloxone", ""), ("clonidine", "D003000")]
    assert report.mentions_kept == 2 and report.notes["no concept"] == 1


@pytest.mark.parametrize("line,reason", BAD_MENTIONS)
def test_malformed_mention_line(nlp, tmp_path, line, reason):
    # the bad line is line 5: two passages, one good mention, then it
    content = block(mentions=[mention(CLONIDINE, ids="D003000"), line, mention(CLONIDINE2, ids="D003000")])
    path = write(tmp_path, "\n" + content, name="bad.txt")
    with pytest.raises(CorpusFormatError, match=rf"bad\.txt:5: {reason}") as err:
        read(path, nlp)
    assert err.value.line == 5 and err.value.path == str(path)
    docs, report = read(path, nlp, strict=False)
    assert [e.text for e in docs[0].ents] == ["clonidine", "clonidine"]
    assert report.mentions_read == 3 and report.mentions_kept == 2
    assert report.dropped == {f"malformed mention line: {reason}": 1}
    assert report.examples[f"malformed mention line: {reason}"][0].startswith("bad.txt:5: ")


BAD_STRUCTURE = [
    (block() + "227508 no tabs and no bars\n", 3, "neither a passage line"),
    ("227508|t|Title\n999|a|Abstract\n", 2, "passage of PMID '999' inside the block of PMID '227508'"),
    ("227508\t0\t8\tNaloxone\tChemical\tD009270\n", 1, "annotation line before any passage line"),
]


@pytest.mark.parametrize("content,line,message", BAD_STRUCTURE)
def test_malformed_structure_is_always_fatal(nlp, tmp_path, content, line, message):
    path = write(tmp_path, block(pmid="1") + "\n" + content, name="bad.txt")
    for strict in (True, False):
        with pytest.raises(CorpusFormatError, match=rf"bad\.txt:{line + 3}: {message}"):
            read(path, nlp, strict=strict)


def test_bad_modes(nlp, tmp_path):
    path = write(tmp_path, block())
    with pytest.raises(ValueError, match="misaligned"):
        read(path, nlp, misaligned="shrink")
    with pytest.raises(ValueError, match="duplicates"):
        read(path, nlp, duplicates="merge")


def test_registered_reader(nlp, tmp_path):
    content = block(mentions=[mention(NALOXONE, type_="SpecificDisease")])
    path = write(tmp_path, content + "\n" + block(pmid="2", mentions=[mention(CLONIDINE, pmid="2", type_="Modifier")]))
    create = spacy.util.registry.readers.get("medlink.PubTatorCorpus.v1")
    examples = list(create(path, label_map="ncbi")(nlp))
    assert len(examples) == 2 and all(isinstance(eg, Example) for eg in examples)
    assert [[(e.text, e.label_) for e in eg.reference.ents] for eg in examples] == [
        [("Naloxone", "Disease")],
        [("clonidine", "Disease")],
    ]
    assert examples[0].predicted.text == examples[0].reference.text and not examples[0].predicted.ents
    assert len(list(create(path, label_map="ncbi", limit=1)(nlp))) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(create(path, label_map="ncbi")(nlp))  # nothing dropped: no warning
    with pytest.warns(UserWarning, match="1 type 'Modifier' mapped to no label"):
        list(create(path, label_map={"SpecificDisease": "Disease", "Modifier": ""})(nlp))


# --- the real corpora -------------------------------------------------------

NCBI = {
    "train": ("ncbi_disease/NCBItrainset_corpus.txt", 593, 5145),
    "dev": ("ncbi_disease/NCBIdevelopset_corpus.txt", 100, 787),
    "test": ("ncbi_disease/NCBItestset_corpus.txt", 100, 960),
}
BC5CDR = {
    # docs, Chemical, Disease, CID relations, "-1" IDs
    "train": ("bc5cdr/CDR_TrainingSet.PubTator.txt", 500, 5203, 4182, 1038, 76),
    "dev": ("bc5cdr/CDR_DevelopmentSet.PubTator.txt", 500, 5347, 4244, 1012, 59),
    "test": ("bc5cdr/CDR_TestSet.PubTator.txt", 500, 5385, 4424, 1066, 91),
}


@pytest.fixture(scope="module")
def converted(data_dir, nlp):
    """Every split of both corpora, converted once: {(corpus, split): (docs, report)}."""
    out = {}
    for split, (name, *_) in NCBI.items():
        report = ConversionReport()
        out["ncbi", split] = (list(read_pubtator(data_dir / name, nlp, report, label_map="ncbi")), report)
    for split, (name, *_) in BC5CDR.items():
        report = ConversionReport()
        out["bc5cdr", split] = (list(read_pubtator(data_dir / name, nlp, report)), report)
    return out


@pytest.mark.parametrize("split", list(NCBI))
def test_ncbi_official_counts(converted, split):
    _, n_docs, n_mentions = NCBI[split]
    docs, report = converted["ncbi", split]
    assert report.is_balanced()
    assert len(docs) == report.documents_read == report.documents_kept == n_docs
    assert report.mentions_read == report.mentions_kept == n_mentions
    assert report.labels == {"Disease": n_mentions}
    assert sum(len(d.spans["mentions"]) for d in docs) == n_mentions
    assert sum(len(d.ents) for d in docs) == n_mentions  # no overlaps in NCBI
    assert not report.dropped


def test_ncbi_quirks_accounted(converted):
    train = converted["ncbi", "train"][1]
    assert train.notes["duplicate document"] == 1
    assert train.notes["whitespace stripped from mention string"] == 1
    assert converted["ncbi", "test"][1].notes["MESH: prefix stripped"] == 2
    stripped = sum(converted["ncbi", s][1].notes["whitespace stripped from ID"] for s in NCBI)
    assert stripped == 5
    ids = [s.kb_id_ for s in (d for split in NCBI for d in converted["ncbi", split][0]) for s in s.spans["mentions"]]
    assert sum("+" in i for i in ids) == 32
    assert all(i and not i.startswith(("MESH", " ")) for i in ids)


@pytest.mark.parametrize("split", list(BC5CDR))
def test_bc5cdr_official_counts(converted, split):
    _, n_docs, n_chem, n_dis, n_cid, n_nil = BC5CDR[split]
    docs, report = converted["bc5cdr", split]
    assert report.is_balanced()
    assert len(docs) == report.documents_kept == n_docs
    assert report.mentions_read == report.mentions_kept == n_chem + n_dis
    assert report.labels == {"Chemical": n_chem, "Disease": n_dis}
    assert sum(len(d.user_data["medlink_relations"]) for d in docs) == n_cid
    assert report.notes["no concept"] == n_nil
    assert not report.dropped


@pytest.mark.parametrize("corpus", ["ncbi", "bc5cdr"])
def test_real_mentions_align_with_biomed_tokenizer(converted, corpus):
    """Default English tokenizer: NCBI 6882/6892 (99.855%), BC5CDR 28394/28785
    (98.64%). Ours: NCBI 6890/6892, BC5CDR 28774/28785."""
    reports = [converted[corpus, split][1] for split in ("train", "dev", "test")]
    read = sum(r.mentions_read for r in reports)
    misaligned = sum(r.notes["expanded to token boundaries"] for r in reports)
    assert (read - misaligned) / read >= 0.999
