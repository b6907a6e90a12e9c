import numpy
import pytest
import srsly

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


def _small_kb() -> ConceptKB:
    kb = ConceptKB()
    kb.add(Concept("D001943", "Breast Neoplasms", ("Breast Cancer", "Tumeur du sein"), ("Disease",), ("OMIM:114480",),
                   ("MEDIC",)))
    kb.add(Concept("C2", "β-carotene", (), ("Chemical",), ("CHEBI:1",), ("MeSH",)))
    kb.add(Concept("D3", "Empty", (), (), (), ()))
    return kb


def test_loaded_kb_is_tables_and_answers_alike(tmp_path):
    kb = _small_kb()
    kb.to_disk(tmp_path / "kb")
    assert (tmp_path / "kb" / "concepts" / "ids_data.npy").exists()
    loaded = ConceptKB().from_disk(tmp_path / "kb")
    assert loaded._frozen is not None and isinstance(loaded._frozen["ids"].data.base, numpy.memmap)
    assert list(loaded) == list(kb) and len(loaded) == 3 and list(loaded.concept_ids) == ["D001943", "C2", "D3"]
    assert loaded.resolve("OMIM:114480") == "D001943" and loaded.resolve("CHEBI:1") == "C2"
    assert loaded.resolve("D404") == "D404" and "D404" not in loaded and "CHEBI:1" in loaded
    assert loaded.name_of("C2") == "β-carotene" and loaded.name_at("D001943", 2) == "Tumeur du sein"
    assert loaded.types_of("OMIM:114480") == ("Disease",) and loaded["D3"].types == ()
    assert loaded.alt_ids() == kb.alt_ids() and loaded.stats() == kb.stats()
    assert sorted(loaded.names()) == sorted(kb.names())
    with pytest.raises(KeyError):
        loaded["D404"]
    # the first change turns it back into dicts
    loaded.add_synonym("C2", "beta carotene", "train:x")
    assert loaded._frozen is None and loaded["C2"].synonyms == ("beta carotene",)
    # saved in place over the files it was mapped from
    loaded.to_disk(tmp_path / "kb")
    again = ConceptKB().from_disk(tmp_path / "kb")
    assert again["C2"].synonyms == ("beta carotene",) and again["D001943"] == kb["D001943"]


def test_format1_msgpack_loads(tmp_path):
    kb = _small_kb()
    rows = [kb[cid] for cid in kb.concept_ids]
    msg = {"format": 1, "ids": [c.concept_id for c in rows], "names": [c.name for c in rows],
           "synonyms": ["\x1f".join(c.synonyms) for c in rows], "types": ["\x1f".join(c.types) for c in rows],
           "alt_ids": ["\x1f".join(c.alt_ids) for c in rows], "sources": ["\x1f".join(c.sources) for c in rows],
           "alt_keys": list(kb.alt_ids()), "alt_values": list(kb.alt_ids().values())}
    (tmp_path / "concepts.msgpack").write_bytes(srsly.msgpack_dumps(msg))
    old = ConceptKB().from_disk(tmp_path)
    assert list(old) == list(kb) and old.alt_ids() == kb.alt_ids()
    old.to_disk(tmp_path)  # rewritten as format 2
    assert not (tmp_path / "concepts.msgpack").exists() and list(ConceptKB().from_disk(tmp_path)) == list(kb)
