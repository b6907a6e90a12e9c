import numpy
import pytest
import srsly
from sklearn.feature_extraction.text import TfidfVectorizer

from spacy_medlink.kb.candidates import FORMAT_VERSION, CandidateGenerator
from spacy_medlink.kb.concept_kb import Concept, ConceptKB
from spacy_medlink.kb.names import Candidate, normalize_name


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


def test_search_batches_give_same_results(kb):
    """Distinct mentions are searched `search_batch` at a time (memory); the batching changes nothing."""
    queries = ["breast cancer", "FMF", "calcium", "crohn", "breast milk", "mediterranean fever", "ca"]
    types = ["Disease", "Disease", None, "Disease", "Chemical", None, "Chemical"]
    plain = CandidateGenerator(kb)
    small = CandidateGenerator(kb)
    small.search_batch = 2
    assert small(queries, types=types) == plain(queries, types=types)
    assert small(queries) == plain(queries)


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


def _assert_same_index(a: CandidateGenerator, b: CandidateGenerator) -> None:
    for left, right in ((a.names_matrix, b.names_matrix), (a.rt, b.rt)):
        for attr in ("data", "indices", "indptr"):
            assert numpy.array_equal(getattr(left, attr), getattr(right, attr)), attr
        assert left.data.dtype == right.data.dtype == numpy.float32
    assert list(a.link_names) == list(b.link_names)


def test_weights_match_tfidf_vectorizer(kb, gen):
    """Format 2 computes the weights from saved counts; they must be the floats that
    TfidfVectorizer.fit_transform (format 1's computation) gives, bit for bit."""
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), lowercase=False, dtype=numpy.float32)
    matrix = reference.fit_transform(gen.keys).tocsr()
    assert reference.vocabulary_ == gen.vectorizer.vocabulary_
    for attr in ("data", "indices", "indptr"):
        assert numpy.array_equal(getattr(matrix, attr), getattr(gen.names_matrix, attr)), attr
    assert gen.names_counts.dtype == numpy.uint8
    for name, ci, j in zip(gen.link_names, gen.link_concepts.tolist(), gen.link_name_pos.tolist()):
        concept = kb[gen.concept_ids[ci]]
        assert ((concept.name,) + concept.synonyms)[j] == name


def test_format2_round_trip_is_exact(gen, tmp_path):
    gen.to_disk(tmp_path / "kb")
    saved = sorted(p.name for p in (tmp_path / "kb" / "candidates").iterdir())
    assert "n_data.npy" not in saved and "rt_data.npy" not in saved and "n_counts.npy" in saved
    assert "link_names" not in srsly.msgpack_loads((tmp_path / "kb" / "candidates" / "strings.msgpack").read_bytes())
    for loaded in (CandidateGenerator.from_disk(tmp_path / "kb"), CandidateGenerator.from_disk(tmp_path / "kb", mmap=False),
                   CandidateGenerator.from_bytes(gen.to_bytes())):
        _assert_same_index(gen, loaded)


def _write_format1(gen: CandidateGenerator, path) -> None:
    """The index as written before 2026-12-01 (float weights, retrieval matrix, name strings)."""
    gen.kb.to_disk(path)
    index = path / "candidates"
    index.mkdir(parents=True)
    srsly.write_json(index / "cfg.json", {"format": 1, **gen.cfg, "types": gen.types})
    strings = {"concept_ids": list(gen.concept_ids), "keys": list(gen.keys), "link_names": list(gen.link_names),
               "ngrams": gen._ngram_list()}
    (index / "strings.msgpack").write_bytes(srsly.msgpack_dumps(strings))
    arrays = {"idf": gen.vectorizer.idf_, "n_data": gen.names_matrix.data, "n_indices": gen.names_matrix.indices,
              "n_indptr": gen.names_matrix.indptr, "rt_data": gen.rt.data, "rt_indices": gen.rt.indices,
              "rt_indptr": gen.rt.indptr, "retrieval_ngrams": gen.retrieval_ngrams,
              "link_indptr": gen.link_indptr.astype(numpy.int64), "link_concepts": gen.link_concepts,
              "link_preferred": gen.link_preferred, "concept_types": gen.concept_types}
    for name, array in arrays.items():
        numpy.save(index / f"{name}.npy", array, allow_pickle=False)


def test_format1_loads_and_upgrades(gen, tmp_path):
    queries = ["breast cancers", "FMF", "calcium glucon", "crohns disease", "Ca"]
    types = ["Disease", None, "Chemical", "Disease", "Chemical"]
    expected = gen(queries, k=4, types=types)
    _write_format1(gen, tmp_path / "v1")
    old = CandidateGenerator.from_disk(tmp_path / "v1")
    assert old.names_counts is None and old(queries, k=4, types=types) == expected
    _assert_same_index(gen, old)
    old.to_disk(tmp_path / "v1")  # rewritten in place as the current format
    assert srsly.read_json(tmp_path / "v1" / "candidates" / "cfg.json")["format"] == FORMAT_VERSION
    assert not (tmp_path / "v1" / "candidates" / "n_data.npy").exists()
    upgraded = CandidateGenerator.from_disk(tmp_path / "v1")
    _assert_same_index(gen, upgraded)
    assert numpy.array_equal(upgraded.names_counts, gen.names_counts)
    assert numpy.array_equal(upgraded.link_name_pos, gen.link_name_pos)
    assert upgraded(queries, k=4, types=types) == expected


def test_format2_loads(gen, tmp_path):
    """Format 2 (written 2026-12-01 to 2026-12-03) kept the names and concept IDs as msgpack strings."""
    queries = ["breast cancers", "FMF", "calcium glucon", "crohns disease", "Ca"]
    types = ["Disease", None, "Chemical", "Disease", "Chemical"]
    gen.to_disk(tmp_path / "v2")
    index = tmp_path / "v2" / "candidates"
    for file in index.glob("keys_*.npy"):
        file.unlink()
    srsly.write_json(index / "cfg.json", {**srsly.read_json(index / "cfg.json"), "format": 2})
    strings = {"concept_ids": list(gen.concept_ids), "keys": list(gen.keys), "ngrams": gen._ngram_list()}
    (index / "strings.msgpack").write_bytes(srsly.msgpack_dumps(strings))
    old = CandidateGenerator.from_disk(tmp_path / "v2")
    assert old(queries, k=4, types=types) == gen(queries, k=4, types=types)
    _assert_same_index(gen, old)
