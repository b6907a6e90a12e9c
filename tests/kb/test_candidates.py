import pytest

from spacy_medlink.kb.candidates import Candidate, CandidateGenerator, normalize_name
from spacy_medlink.kb.concept_kb import Concept, ConceptKB


@pytest.fixture(scope="module")
def kb():
    kb = ConceptKB()
    kb.add(Concept("D010505", "Familial Mediterranean Fever", ("FMF", "Mediterranean Fever, Familial"),
                   ("Disease",), ("OMIM:249100",), ("MEDIC",)))
    kb.add(Concept("D001943", "Breast Neoplasms", ("Breast Cancer", "Breast Tumor", "Cancer of Breast"),
                   ("Disease",), (), ("MEDIC",)))
    kb.add(Concept("D001941", "Breast Diseases", (), ("Disease",), (), ("MEDIC",)))
    kb.add(Concept("D003424", "Crohn Disease", ("Crohn's disease",), ("Disease",), (), ("MEDIC",)))
    kb.add(Concept("D002118", "Calcium", ("Ca",), ("Chemical",), (), ("MeSH",)))
    kb.add(Concept("C000001", "calcium gluconate", (), ("Chemical",), (), ("MeSH-SCR",)))
    kb.add(Concept("D000001", "Breast milk substitute", (), ("Chemical",), (), ("MeSH",)))
    return kb


@pytest.fixture(scope="module")
def gen(kb):
    return CandidateGenerator(kb)


def test_normalize_name():
    assert normalize_name("Crohn's  Disease") == "crohn disease"
    assert normalize_name("non-small-cell") == "non small cell"
    assert normalize_name("ＦＭＦ") == "fmf"  # NFKC
    assert normalize_name("Crohn's Disease", "lower") == "crohn's disease"


def test_exact_first(gen):
    (cands,) = gen(["familial mediterranean fever"], k=3)
    assert cands[0] == Candidate("D010505", 1.0, "Familial Mediterranean Fever")
    (cands,) = gen(["CROHN DISEASE"], k=3)
    assert cands[0].concept_id == "D003424" and cands[0].score == 1.0


def test_fuzzy_and_dedup(gen):
    (cands,) = gen(["breast cancers"], k=5)
    assert cands[0].concept_id == "D001943" and cands[0].name == "Breast Cancer"
    assert 0.5 < cands[0].score < 1.0
    ids = [c.concept_id for c in cands]
    assert len(ids) == len(set(ids))  # one entry per concept, best name
    scores = [c.score for c in cands]
    assert scores == sorted(scores, reverse=True)


def test_type_filter(gen):
    typed, untyped, chem = gen(["breast milk"] * 3, k=10, types=["Disease", None, "Chemical"])
    assert typed[0].concept_id in {"D001943", "D001941"}
    assert all("Disease" in gen.kb[c.concept_id].types for c in typed)
    assert untyped[0].concept_id == "D000001" and chem[0].concept_id == "D000001"
    assert all(gen.kb[c.concept_id].types == ("Chemical",) for c in chem)
    (none,) = gen(["breast"], types=["Gene"])
    assert none == []


def test_k(gen):
    (cands,) = gen(["breast"], k=2)
    assert len(cands) == 2
    assert gen([], k=3) == []


def test_cache_gives_same_results(kb):
    cached = CandidateGenerator(kb, cache_size=10)
    plain = CandidateGenerator(kb)
    queries = ["breast cancer", "FMF", "breast cancer", "calcium"]
    assert cached(queries, types=["Disease", "Disease", "Disease", None]) == plain(
        queries, types=["Disease", "Disease", "Disease", None]
    )
    assert cached(queries[:1], types=["Disease"]) == plain(queries[:1], types=["Disease"])
    no_dedupe = CandidateGenerator(kb, dedupe=False)
    assert no_dedupe(queries) == plain(queries)


def test_round_trips(kb, gen, tmp_path):
    queries = ["breast cancers", "FMF", "calcium glucon", "crohns disease"]
    types = ["Disease", None, "Chemical", "Disease"]
    expected = gen(queries, k=4, types=types)
    gen.to_disk(tmp_path / "kb")
    loaded = CandidateGenerator.from_disk(tmp_path / "kb")
    assert len(loaded.kb) == len(kb)
    assert loaded(queries, k=4, types=types) == expected
    assert CandidateGenerator.from_bytes(gen.to_bytes())(queries, k=4, types=types) == expected
    kb2 = ConceptKB().from_bytes(kb.to_bytes())
    assert list(kb2) == list(kb) and kb2.alt_ids() == kb.alt_ids()
    assert CandidateGenerator(kb2)(queries, k=4, types=types) == expected
    kb3 = ConceptKB().from_disk(tmp_path / "kb")
    assert kb3["OMIM:249100"] == kb["D010505"]


def test_missing_index(tmp_path):
    with pytest.raises(FileNotFoundError):
        CandidateGenerator.from_disk(tmp_path)
