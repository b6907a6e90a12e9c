"""scispacy's candidate generator on a ConceptKB, for the KB benchmark only.

scispacy builds a char-3-gram TF-IDF (min_df=10) and an nmslib HNSW index
(M=100, efConstruction=2000) over every alias. Its `create_tfidf_ann_index`
refuses to run on scipy>=1.11 (`scipy_supports_sparse_float16`) because it
*saves* the vectors as float16, which scipy.sparse no longer supports, and it
hard-codes its HNSW parameters. `build_index` runs the same steps in float32
and caches the pieces without pickle: the aliases (JSON), the fitted
vocabulary and idf (JSON + .npy), the float32 vectors (.npz) and the nmslib
index (its own binary format). Loading rebuilds the vectorizer from them and
reattaches the vectors to the index, as scispacy's own loader does.
"""
import json
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

import numpy
import scipy.sparse

from ..kb.concept_kb import ConceptKB

FILES = ("aliases.json", "tfidf_vocab.json", "tfidf_idf.npy", "tfidf_vectors.npz", "nmslib_index.bin")


def scispacy_kb(kb: ConceptKB, max_concepts: Optional[int] = None):
    """A `scispacy.linking_utils.KnowledgeBase` with the same concepts and names."""
    from scispacy.linking_utils import Entity, KnowledgeBase

    def entities() -> Iterator[Entity]:
        for i, c in enumerate(kb):
            if max_concepts is not None and i >= max_concepts:
                break
            yield Entity(c.concept_id, c.name, list(c.synonyms), list(c.types))

    return KnowledgeBase(entities())


# scispacy's create_tfidf_ann_index settings (hard-coded there).
SCISPACY_M = 100
SCISPACY_EF_CONSTRUCTION = 2000


def build_index(
    sci_kb,
    out_dir: Union[str, Path],
    m: int = SCISPACY_M,
    ef_construction: int = SCISPACY_EF_CONSTRUCTION,
    threads: int = 2,
) -> Tuple[float, int]:
    """Build scispacy's TF-IDF + nmslib index for `sci_kb` into `out_dir`; returns (seconds, aliases).

    The steps of `scispacy.candidate_generation.create_tfidf_ann_index`
    (char_wb 3-grams, min_df=10, empty vectors removed, HNSW over
    cosinesimil_sparse), with the HNSW build parameters exposed: with
    scispacy's M=100, efConstruction=2000 an 800k-alias index takes hours on
    2 cores (measured: 281 s for 33k aliases).
    """
    import nmslib
    from sklearn.feature_extraction.text import TfidfVectorizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    aliases = list(sci_kb.alias_to_cuis.keys())
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), min_df=10, dtype=numpy.float32)
    vectors = vectorizer.fit_transform(aliases)
    nonempty = numpy.asarray(vectors.sum(axis=1) != 0).reshape(-1)
    aliases = [a for a, keep in zip(aliases, nonempty) if keep]
    vectors = vectors[nonempty].astype(numpy.float32).tocsr()
    fit_seconds = time.perf_counter() - start
    ann_index = nmslib.init(method="hnsw", space="cosinesimil_sparse", data_type=nmslib.DataType.SPARSE_VECTOR)
    ann_index.addDataPointBatch(vectors)
    params = {"M": m, "indexThreadQty": threads, "efConstruction": ef_construction, "post": 0}
    ann_index.createIndex(params, print_progress=True)
    seconds = time.perf_counter() - start
    (out_dir / "aliases.json").write_text(json.dumps(aliases), encoding="utf8")
    vocab = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    (out_dir / "tfidf_vocab.json").write_text(json.dumps(vocab), encoding="utf8")
    numpy.save(out_dir / "tfidf_idf.npy", vectorizer.idf_, allow_pickle=False)
    scipy.sparse.save_npz(out_dir / "tfidf_vectors.npz", vectors)
    ann_index.saveIndex(str(out_dir / "nmslib_index.bin"), save_data=False)
    info = {"seconds": seconds, "fit_tfidf_seconds": fit_seconds, "aliases": len(aliases),
            "aliases_empty_removed": int((~nonempty).sum()), "hnsw": params}
    (out_dir / "build.json").write_text(json.dumps(info, indent=2))
    return seconds, len(aliases)


def load_generator(sci_kb, index_dir: Union[str, Path], ef_search: int = 200):
    """scispacy `CandidateGenerator` over a cached index (vectorizer rebuilt, no pickle)."""
    import nmslib
    from scispacy.candidate_generation import CandidateGenerator
    from sklearn.feature_extraction.text import TfidfVectorizer

    index_dir = Path(index_dir)
    aliases: List[str] = json.loads((index_dir / "aliases.json").read_text(encoding="utf8"))
    # The same settings create_tfidf_ann_index fits with.
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), min_df=10, dtype=numpy.float32)
    vectorizer.vocabulary_ = json.loads((index_dir / "tfidf_vocab.json").read_text(encoding="utf8"))
    vectorizer.idf_ = numpy.load(index_dir / "tfidf_idf.npy", allow_pickle=False)
    vectors = scipy.sparse.load_npz(index_dir / "tfidf_vectors.npz").astype(numpy.float32)
    ann_index = nmslib.init(method="hnsw", space="cosinesimil_sparse", data_type=nmslib.DataType.SPARSE_VECTOR)
    ann_index.addDataPointBatch(vectors)
    ann_index.loadIndex(str(index_dir / "nmslib_index.bin"))
    ann_index.setQueryTimeParams({"efSearch": ef_search})
    return CandidateGenerator(ann_index=ann_index, tfidf_vectorizer=vectorizer, ann_concept_aliases_list=aliases,
                              kb=sci_kb)


def is_built(index_dir: Union[str, Path]) -> bool:
    return all((Path(index_dir) / f).exists() for f in FILES)
