"""Converters of the cross-corpus benchmark's formats (CRAFT, brat, DDI) and its scoring."""
import tarfile
import zipfile

import pytest
import spacy

from spacy_medlink.corpora.brat import read_brat
from spacy_medlink.corpora.craft import read_craft
from spacy_medlink.corpora.ddi import read_ddi
from spacy_medlink.corpora.report import ConversionReport
from spacy_medlink.corpora.standoff import GOLD_KEY, gold_mentions, split_paragraphs
from spacy_medlink.crosscorpus import CORPORA, CorpusSpec, score_corpus, summarize, tokenizer_alignment
from spacy_medlink.tokenizer import biomed_nlp


@pytest.fixture(scope="module")
def nlp():
    return biomed_nlp("en")


CG_TEXT = "Cisplatin kills KRAS mutant lung cancer cells.\nGlucose uptake rose in gliomas.\n"
CG_A1 = "\n".join([
    "T1\tSimple_chemical 0 9\tCisplatin",
    "T2\tGene_or_gene_product 16 20\tKRAS",
    "T3\tCancer 28 39\tlung cancer",
    "T4\tCell 40 45\tcells",
    "T5\tSimple_chemical 47 54\tGlucose",
    "T6\tCancer 70 77\tgliomas",
    "T7\tOrgan 28 32;40 45\tlung cells",
])


def write_brat(root, name="PMID-1"):
    folder = root / "BioNLP-ST_2013_CG" / "original-data" / "test"
    folder.mkdir(parents=True)
    (folder / f"{name}.txt").write_text(CG_TEXT, encoding="utf8")
    (folder / f"{name}.a1").write_text(CG_A1 + "\n", encoding="utf8")
    return root / "BioNLP-ST_2013_CG"


def test_brat_label_map_and_accounting(nlp, tmp_path):
    root = write_brat(tmp_path)
    report = ConversionReport()
    docs = list(read_brat(root, nlp, report, folder="test"))
    assert len(docs) == 1 and docs[0].user_data["doc_id"] == "PMID-1"
    assert [(e.text, e.label_) for e in docs[0].ents] == [
        ("Cisplatin", "Chemical"), ("KRAS", "Gene"), ("lung cancer", "Disease"),
        ("Glucose", "Chemical"), ("gliomas", "Disease")]
    assert report.mentions_read == 7 and report.mentions_kept == 5
    assert report.dropped == {"type 'Cell' mapped to no label": 1, "discontinuous mention": 1}
    assert report.is_balanced() and report.documents_read == report.documents_kept == 1


def test_brat_reads_the_archive_and_names_a_bad_line(nlp, tmp_path):
    root = write_brat(tmp_path / "src")
    archive = tmp_path / "cg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="BioNLP-ST_2013_CG")
    docs = list(read_brat(archive, nlp, ConversionReport(), folder="test"))
    assert len(docs[0].ents) == 5
    a1 = root / "original-data" / "test" / "PMID-1.a1"
    a1.write_text(CG_A1.replace("0 9\tCisplatin", "0 8\tCisplatin"), encoding="utf8")
    with pytest.raises(ValueError, match=r"PMID-1\.a1:1: span 0-8"):
        list(read_brat(root, nlp, ConversionReport(), folder="test"))


DDI_XML = """<?xml version="1.0" encoding="UTF-8"?>
<document id="DDI-MedLine.d1">
  <sentence id="DDI-MedLine.d1.s0" text="Warfarin and aspirin raise bleeding.&#xd;&#xa;">
    <entity id="DDI-MedLine.d1.s0.e0" charOffset="0-7" type="drug" text="Warfarin"/>
    <entity id="DDI-MedLine.d1.s0.e1" charOffset="13-19" type="drug" text="aspirin"/>
  </sentence>
  <sentence id="DDI-MedLine.d1.s1" text="Avoid NSAIDs and beta blocking agents.">
    <entity id="DDI-MedLine.d1.s1.e0" charOffset="6-11" type="group" text="NSAIDs"/>
    <entity id="DDI-MedLine.d1.s1.e1" charOffset="17-20;31-36" type="group" text="beta agents"/>
  </sentence>
</document>
"""


def test_ddi_offsets_are_shifted_to_the_document(nlp, tmp_path):
    archive = tmp_path / "DDICorpus-2013.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("DDICorpus/Test/Test for DrugNER task/MedLine/1.xml", DDI_XML)
        zf.writestr("DDICorpus/Train/MedLine/2.xml", DDI_XML)
    report = ConversionReport()
    docs = list(read_ddi(archive, nlp, report, split="test"))
    assert len(docs) == 1
    doc = docs[0]
    assert [doc.text[s:e] for s, e, _, _ in gold_mentions(doc)] == ["Warfarin", "aspirin", "NSAIDs"]
    assert {label for _, _, label, _ in gold_mentions(doc)} == {"Chemical"}
    assert report.dropped == {"discontinuous mention": 1} and report.is_balanced()


def write_craft(root):
    base = root / "CRAFT-5.0.2"
    (base / "articles" / "ids").mkdir(parents=True)
    (base / "articles" / "txt").mkdir(parents=True)
    chebi = base / "concept-annotation" / "CHEBI" / "CHEBI" / "knowtator"
    mondo = base / "concept-annotation" / "MONDO" / "MONDO_without_genotype_annotations" / "knowtator-2"
    chebi.mkdir(parents=True)
    mondo.mkdir(parents=True)
    text = "Title\n\nCalcium(2+) levels rose.\n\nHuntington disease mice.\n"
    (base / "articles" / "txt" / "111.txt").write_text(text, encoding="utf8")
    for split in ("train", "dev", "test"):
        (base / "articles" / "ids" / f"craft-ids-{split}.txt").write_text("111\n" if split == "test" else "")
    (chebi / "111.txt.knowtator.xml").write_text(
        '<?xml version="1.0"?><annotations textSource="111.txt"><annotation><mention id="m1" />'
        '<span start="7" end="18" /><spannedText>Calcium(2+)</spannedText></annotation>'
        '<classMention id="m1"><mentionClass id="CHEBI:29108">calcium(2+)</mentionClass></classMention>'
        "</annotations>", encoding="utf8")
    (mondo / "111.xml").write_text(
        '<?xml version="1.0"?><knowtator-project><document id="111"><annotation id="a1">'
        '<class id="http://purl.obolibrary.org/obo/MONDO_0007739" label="x"/>'
        '<span end="51" id="s1" start="33">Huntington disease</span></annotation></document></knowtator-project>',
        encoding="utf8")
    return base


def test_craft_paragraph_docs_with_prefixed_ids(nlp, tmp_path):
    base = write_craft(tmp_path)
    report = ConversionReport()
    docs = list(read_craft(base, nlp, report, split="test"))
    assert [d.text for d in docs] == ["Title", "Calcium(2+) levels rose.", "Huntington disease mice."]
    gold = [(d.text[s:e], label, kb) for d in docs for s, e, label, kb in gold_mentions(d)]
    assert gold == [("Calcium(2+)", "Chemical", "CHEBI:29108"), ("Huntington disease", "Disease", "MONDO:0007739")]
    assert report.documents_read == report.documents_kept == 1 and report.is_balanced()


def test_split_paragraphs():
    text = "a\n\n\n  b c \n\nd"
    assert [text[s:e] for s, e in split_paragraphs(text)] == ["a", "b c", "d"]


def ruler_pipeline(patterns):
    nlp = biomed_nlp("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": label, "pattern": text} for text, label in patterns])
    return nlp


def test_score_corpus_partial_types_and_genes(nlp, tmp_path):
    docs = list(read_brat(write_brat(tmp_path), nlp, ConversionReport(), folder="test"))
    # right: Cisplatin; wrong: KRAS as Chemical (a gene), missed: Glucose; gliomas found, lung cancer missed
    model = ruler_pipeline([("Cisplatin", "Chemical"), ("KRAS", "Chemical"), ("gliomas", "Disease"),
                            ("uptake", "Disease")])
    scores = score_corpus(model, docs, CORPORA["bionlp13cg"])
    chem = scores["ner"]["per_type"]["Chemical"]
    assert (chem["tp"], chem["fp"], chem["fn"]) == (1, 1, 1)
    assert "Disease" not in scores["ner"]["per_type"]  # Cancer is a partial disease annotation
    assert scores["partial_recall"]["Disease"] == {"gold": 2, "found": 1, "r": 0.5}
    assert scores["genes"]["gold"] == 1 and scores["genes"]["as_chemical_exact"] == 1
    assert scores["genes"]["chemical_false_positives_on_genes"] == 1
    assert scores["false_positives"]["Chemical"] == [("KRAS", 1)]
    assert scores["gold_aligned_to_tokens"]["share"] == 1.0


def test_score_corpus_is_strict_on_original_offsets(tmp_path):
    # gold offsets, not token-widened spans: "ose" ends inside the token "Glucose", so a
    # prediction of the whole token is wrong, and the gold counts as not aligned
    nlp = biomed_nlp("en")
    root = write_brat(tmp_path)
    a1 = root / "original-data" / "test" / "PMID-1.a1"
    a1.write_text("T1\tSimple_chemical 51 54\tose\n", encoding="utf8")
    docs = list(read_brat(root, nlp, ConversionReport(), folder="test"))
    assert [e.text for e in docs[0].ents] == ["Glucose"]  # widened for training
    model = ruler_pipeline([("Glucose", "Chemical")])
    scores = score_corpus(model, docs, CorpusSpec("toy", ("Chemical",)))
    assert scores["ner"]["per_type"]["Chemical"]["tp"] == 0
    assert scores["gold_aligned_to_tokens"] == {"mentions": 1, "aligned": 0, "share": 0.0}


def test_summary_leaves_out_training_corpora():
    results = {"bc5cdr": {"ner": {"f": 0.9}, "nen": {"nen_f": 0.8, "nen_doc_f": 0.85}},
               "ddi": {"ner": {"f": 0.5}}, "ncbi": {"ner": {"f": 0.7}, "nen": {"nen_f": 0.6, "nen_doc_f": 0.65}}}
    summary = summarize(results, ["bc5cdr"])
    assert summary["mean_ner_f"] == pytest.approx(0.6)
    assert summary["mean_nen_f"] == pytest.approx(0.6) and summary["held_out"] == ["ddi", "ncbi"]


ION_TEXT = "Na+/K+-ATPase rose after (CYP)-induced cystitis."


def ion_doc():
    """A Doc carrying original gold offsets: "K+" inside "Na+/K+-ATPase", "CYP"
    inside "(CYP)-induced" (both one token for spaCy's English tokenizer) and
    "cystitis", which every tokenizer aligns."""
    doc = spacy.blank("en").make_doc(ION_TEXT)
    gold = [(ION_TEXT.index(m), ION_TEXT.index(m) + len(m), label, "") for m, label in
            (("K+", "Chemical"), ("CYP", "Chemical"), ("cystitis", "Disease"))]
    doc.user_data[GOLD_KEY] = [list(m) for m in gold]
    return doc


def test_tokenizer_alignment_counts_every_mention(nlp):
    before = tokenizer_alignment(spacy.blank("en").tokenizer, [ion_doc()])
    assert (before["mentions"], before["aligned"], before["misaligned"]) == (3, 1, 2)
    assert before["per_label"] == {"Chemical": {"mentions": 2, "aligned": 0, "share": 0.0},
                                   "Disease": {"mentions": 1, "aligned": 1, "share": 1.0}}
    assert [(m["text"], m["count"], m["tokens"]) for m in before["top_misaligned"]] == [
        ("K+", 1, ["Na+/K+-ATPase"]), ("CYP", 1, ["CYP)-induced"])]
    assert before["top_misaligned"][0]["context"] == "Na+/[K+]-ATPase rose after (CYP)-induc"
    assert (before["tokens"], before["whitespace_words"]) == (7, 5)
    after = tokenizer_alignment(nlp.tokenizer, [ion_doc()])
    assert (after["mentions"], after["aligned"], after["misaligned"], after["share"]) == (3, 3, 0, 1.0)
    assert after["top_misaligned"] == [] and after["tokens"] == 16
