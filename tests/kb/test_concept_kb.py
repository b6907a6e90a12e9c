from spacy_medlink.kb.concept_kb import Concept, ConceptKB


def test_add_merges():
    kb = ConceptKB()
    kb.add(Concept("D001943", "Breast Neoplasms", ("Breast Cancer",), ("Disease",), ("OMIM:114480",), ("MEDIC",)))
    kb.add(Concept("D001943", "Breast Cancer, Human", ("Breast Cancer", "Breast Tumors"), ("Disease",), (), ("MeSH",)))
    c = kb["D001943"]
    assert c.name == "Breast Neoplasms"  # first source keeps the preferred name
    assert c.synonyms == ("Breast Cancer", "Breast Cancer, Human", "Breast Tumors")
    assert c.sources == ("MEDIC", "MeSH") and c.alt_ids == ("OMIM:114480",)
    assert kb.resolve("OMIM:114480") == "D001943"
    assert sorted(kb.names()) == sorted(
        (n, "D001943") for n in ("Breast Neoplasms", "Breast Cancer", "Breast Cancer, Human", "Breast Tumors")
    )
    assert kb.add_synonym("OMIM:114480", "breast ca", "train:x") == "D001943"
    assert "breast ca" in kb["D001943"].synonyms and "train:x" in kb["D001943"].sources


def test_stats_and_bytes():
    kb = ConceptKB()
    kb.add(Concept("D1", "a", ("b", "c"), ("Disease",), (), ("s",)))
    kb.add(Concept("C2", "d", (), ("Chemical", "Disease"), (), ("s",)))
    stats = kb.stats()
    assert stats["types"]["Disease"] == {"concepts": 2, "synonyms": 2}
    assert stats["types"]["Chemical"] == {"concepts": 1, "synonyms": 0}
    kb2 = ConceptKB().from_bytes(kb.to_bytes())
    assert list(kb2) == list(kb) and len(kb2) == 2
