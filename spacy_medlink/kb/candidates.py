"""Candidate generation: exact match on a normalized name, then char n-gram TF-IDF.

For each mention the generator returns up to k concepts, best first:

1. concepts with a name whose normalized form equals the mention's (score 1.0),
   preferred names before synonyms;
2. then the nearest names by cosine similarity of character n-gram TF-IDF
   vectors (scikit-learn's TfidfVectorizer), each concept scored by its best
   name.

The similarity search is exact, not approximate: one sparse product of the
mention vectors with the name vectors, keeping only the top scores per row
(`sparse_dot_topn`, which never builds the full product). With entity types,
the product runs against the names of concepts of that type only (a column
slice of the index built on first use), which is both faster and keeps a
type's candidates from being crowded out by other types' names.

Index rows are *distinct normalized names*; each row links to its concepts
(and the original spelling of the name for each). Everything is saved as
numpy arrays (allow_pickle=False), msgpack and JSON. On disk (format 2) the
index keeps only what cannot be cheaply derived: the n-gram *counts* of each
name (uint8) rather than its float TF-IDF weights, no transposed retrieval
matrix, and each link's name as its position among the concept's KB names
rather than a second copy of the string. Loading recomputes the weights and
the retrieval matrix with the same code that built them, so a loaded index
scores exactly as the built one (tests compare the arrays bit for bit).
The distinct names (the index rows) are a `StringTable` (kb/strings.py): UTF-8
bytes, offsets and a hash lookup in numpy arrays, saved as .npy and
memory-mapped like the rest (format 3), so that no process holds 600,000 name
strings and a dict over them; the concept IDs are the KB's own table.
Format-1 and format-2 indexes still load (`kb.candidates_compat` reads them), and are
written as format 3 when saved again.
"""
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

import numpy
import scipy.sparse
import srsly
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer

from .concept_kb import ConceptKB
from .names import Candidate, normalize_name
from .strings import StringTable, save_array, table_arrays, table_from, table_names

if TYPE_CHECKING:
    from .ranker import CandidateRanker

INDEX_DIR = "candidates"
RANKER_DIR = "ranker"
FORMAT_VERSION = 3
_ARRAYS = ("idf", "n_counts", "n_indices", "n_indptr", "retrieval_ngrams", "link_indptr", "link_concepts",
           "link_preferred", "link_name_pos", "concept_types", *table_names("keys"))


def _smallest_uint(values: numpy.ndarray) -> numpy.ndarray:
    """`values` (non-negative integers) in the smallest unsigned dtype that holds them."""
    top = int(values.max()) if len(values) else 0
    return values.astype(numpy.min_scalar_type(top))


def _smallest_int(indptr: numpy.ndarray) -> numpy.ndarray:
    """An index pointer as int32 where it fits (scipy's own choice), else int64."""
    return indptr.astype(numpy.int32 if (len(indptr) == 0 or indptr[-1] < 2**31) else numpy.int64)


class _KBLinkNames(Sequence):
    """Each index link's name as spelled in the KB, read from the KB on access: format 2
    saves a name's position among its concept's names instead of a second copy of
    some 600,000 strings."""

    def __init__(self, kb: ConceptKB, concept_ids: Sequence[str], link_concepts: numpy.ndarray,
                 positions: numpy.ndarray) -> None:
        self._kb = kb
        self._ids = concept_ids
        self._concepts = link_concepts
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, pos):  # type: ignore[override]
        if isinstance(pos, slice):
            return [self[i] for i in range(*pos.indices(len(self)))]
        ci, position = int(self._concepts[pos]), int(self._positions[pos])
        if self._ids is self._kb.concept_ids:  # a loaded KB: its own table, rows in the same order
            return self._kb.name_at_row(ci, position)
        return self._kb.name_at(self._ids[ci], position)


class CandidateGenerator:
    """Top-k concept candidates for mention strings, from a ConceptKB.

    kb: the concepts and names to index.
    ngram_range, min_df, max_df, analyzer: TfidfVectorizer settings for the
        names. max_df drops the n-grams found in more than that share of
        names: they say little about a name, and their long posting lists
        are most of the cost of the sparse product.
    normalize: "full" or "lower", see `normalize_name`.
    retrieval_max_names, retrieval_pool: the search runs in two steps. First
        the `retrieval_pool` best names by the n-grams found in at most
        `retrieval_max_names` names (common n-grams have long posting lists, which are most of
        the cost of a sparse product), then those names rescored by the full
        TF-IDF cosine.
    name_pool: names kept per requested candidate before deduplication by
        concept (several names of one concept often score alike).
    n_threads: threads for the sparse top-k product (1 = sequential).
    cache_size: mention results remembered across calls (LRU); 0 turns it off.
    dedupe: search each distinct (mention, type) once per call.
    """

    # distinct mentions searched per sparse product: its temporaries (the retrieved
    # names' rows, about pool x 20 entries per mention) grow with it
    search_batch = 1024

    def __init__(
        self,
        kb: ConceptKB,
        *,
        ngram_range: Tuple[int, int] = (3, 3),
        min_df: int = 1,
        max_df: float = 1.0,
        analyzer: str = "char_wb",
        normalize: str = "full",
        name_pool: int = 4,
        retrieval_max_names: int = 5000,
        retrieval_pool: int = 100,
        n_threads: int = 1,
        cache_size: int = 0,
        dedupe: bool = True,
        _build: bool = True,
    ) -> None:
        self.kb = kb
        self.cfg = {
            "ngram_range": list(ngram_range),
            "min_df": min_df,
            "max_df": max_df,
            "analyzer": analyzer,
            "normalize": normalize,
            "name_pool": name_pool,
            "retrieval_max_names": retrieval_max_names,
            "retrieval_pool": retrieval_pool,
        }
        self.n_threads = n_threads
        self.cache_size = cache_size
        self.dedupe = dedupe
        self._cache: "OrderedDict[Tuple[str, Optional[str], int], List[Candidate]]" = OrderedDict()
        self._type_nt: Dict[str, Tuple[scipy.sparse.csr_matrix, numpy.ndarray]] = {}
        self._as_views: Optional[Tuple[memoryview, memoryview, memoryview]] = None
        # A trained `kb.ranker.CandidateRanker` that `span_candidates` applies; saved in `ranker/`.
        self.ranker: Optional["CandidateRanker"] = None
        # saved by format 2; None for an index loaded from format 1 until it is saved
        self.names_counts: Optional[numpy.ndarray] = None
        self.link_name_pos: Optional[numpy.ndarray] = None
        if _build:
            self._build()

    # -- building ---------------------------------------------------------------
    def _count_settings(self) -> dict:
        return {"analyzer": self.cfg["analyzer"], "ngram_range": tuple(self.cfg["ngram_range"]),
                "min_df": self.cfg["min_df"], "max_df": self.cfg["max_df"],
                "lowercase": False,  # keys are normalized already
                "dtype": numpy.float32}

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(**self._count_settings())

    def _tfidf(self) -> TfidfTransformer:
        """The vectorizer's own weighting step, with its settings, for counts made apart."""
        v = self.vectorizer
        return TfidfTransformer(norm=v.norm, use_idf=v.use_idf, smooth_idf=v.smooth_idf, sublinear_tf=v.sublinear_tf)

    def _build(self) -> None:
        mode = self.cfg["normalize"]
        self.concept_ids: Sequence[str] = self.kb.concept_ids
        concept_index = {cid: i for i, cid in enumerate(self.concept_ids)}
        self.types: List[str] = sorted({t for c in self.kb for t in c.types})
        bits = {t: 1 << i for i, t in enumerate(self.types)}
        if len(self.types) > 32:
            raise ValueError("At most 32 entity types are supported")
        self.concept_types = numpy.zeros(len(self.concept_ids), dtype=numpy.uint32)
        # key -> concept index -> (preferred, position of the name among the concept's names)
        key_links: Dict[str, Dict[int, Tuple[bool, int]]] = {}
        for concept in self.kb:
            ci = concept_index[concept.concept_id]
            for t in concept.types:
                self.concept_types[ci] |= bits[t]
            for j, name in enumerate((concept.name,) + concept.synonyms):
                key = normalize_name(name, mode)
                if not key:
                    continue
                links = key_links.setdefault(key, {})
                if ci not in links or (j == 0 and not links[ci][0]):
                    links[ci] = (j == 0, j)
        keys = list(key_links)
        self.keys = StringTable.from_strings(keys)
        lengths = numpy.fromiter((len(v) for v in key_links.values()), dtype=numpy.int64, count=len(keys))
        self.link_indptr = _smallest_int(numpy.concatenate([[0], numpy.cumsum(lengths)]).astype(numpy.int64))
        n_links = int(self.link_indptr[-1])
        self.link_concepts = numpy.empty(n_links, dtype=numpy.int32)
        self.link_preferred = numpy.empty(n_links, dtype=numpy.bool_)
        name_pos = numpy.empty(n_links, dtype=numpy.int64)
        pos = 0
        for links in key_links.values():
            # preferred names first, so ties among exact hits favour them
            for ci, (preferred, j) in sorted(links.items(), key=lambda x: not x[1][0]):
                self.link_concepts[pos] = ci
                self.link_preferred[pos] = preferred
                name_pos[pos] = j
                pos += 1
        self.link_name_pos = _smallest_uint(name_pos)
        self.link_names: Sequence[str] = _KBLinkNames(self.kb, self.concept_ids, self.link_concepts,
                                                      self.link_name_pos)
        # TfidfVectorizer.fit_transform, in its two steps, so that the counts can be saved
        counter = CountVectorizer(**self._count_settings())
        counts = counter.fit_transform(keys).tocsr()
        self.vectorizer = self._vectorizer()
        self.vectorizer.vocabulary_ = counter.vocabulary_
        # float64, as saved, so that built and loaded score alike
        self.vectorizer.idf_ = self._tfidf().fit(counts).idf_.astype(numpy.float64)
        self.names_counts = _smallest_uint(counts.data)
        self.names_matrix = self._weights(self.names_counts, counts.indices, counts.indptr)
        df = numpy.bincount(self.names_matrix.indices, minlength=self.names_matrix.shape[1])
        self.retrieval_ngrams = numpy.flatnonzero(df <= self.cfg["retrieval_max_names"]).astype(numpy.int32)
        self.rt = self._retrieval_matrix()

    def _weights(self, counts: numpy.ndarray, indices: numpy.ndarray, indptr: numpy.ndarray) -> scipy.sparse.csr_matrix:
        """The names' TF-IDF rows from their n-gram counts: one computation for building and
        loading, so that both give the same floats. `indices` and `indptr` are kept as given
        (memory-mapped when loaded)."""
        shape = (len(indptr) - 1, len(self.vectorizer.vocabulary_))
        matrix = scipy.sparse.csr_matrix((counts.astype(numpy.float32), indices, indptr), shape=shape, copy=False)
        transformer = self._tfidf()
        transformer.idf_ = self.vectorizer.idf_
        weighted = transformer.transform(matrix, copy=False)
        return scipy.sparse.csr_matrix((weighted.data.astype(numpy.float32, copy=False), indices, indptr), shape=shape)

    def _retrieval_matrix(self) -> scipy.sparse.csr_matrix:
        """n-gram x name weights over the rarer n-grams only: the posting lists that retrieval reads."""
        rt = self.names_matrix[:, self.retrieval_ngrams].T.tocsr()
        rt.sort_indices()
        return rt

    # -- querying -----------------------------------------------------------------
    def __call__(
        self,
        mentions: Sequence[str],
        k: int = 10,
        types: Optional[Sequence[Optional[str]]] = None,
    ) -> List[List[Candidate]]:
        """Up to k candidates per mention, best first; `types` filters per mention."""
        if types is not None and len(types) != len(mentions):
            raise ValueError(f"{len(mentions)} mentions but {len(types)} types")
        mode = self.cfg["normalize"]
        keys = [normalize_name(m, mode) for m in mentions]
        mention_types: List[Optional[str]] = list(types) if types is not None else [None] * len(mentions)
        results: List[Optional[List[Candidate]]] = [None] * len(mentions)
        # distinct (key, type) pairs are searched once per call
        todo: Dict[Optional[str], Dict[str, List[int]]] = {}
        for i, (key, t) in enumerate(zip(keys, mention_types)):
            if self.cache_size:
                hit = self._cache.get((key, t, k))
                if hit is not None:
                    self._cache.move_to_end((key, t, k))
                    results[i] = hit
                    continue
            todo.setdefault(t, {}).setdefault(key if self.dedupe else f"{i}\t{key}", []).append(i)
        for t, by_key in todo.items():
            distinct = list(by_key)
            for start in range(0, len(distinct), self.search_batch):
                batch = distinct[start : start + self.search_batch]
                for key, cands in zip(batch, self._search([keys[by_key[b][0]] for b in batch], k, t)):
                    for i in by_key[key]:
                        results[i] = cands
                    if self.cache_size:
                        self._cache[(keys[by_key[key][0]], t, k)] = cands
                        if len(self._cache) > self.cache_size:
                            self._cache.popitem(last=False)
        return results  # type: ignore[return-value]

    def _type_index(self, type_: Optional[str]) -> Tuple[scipy.sparse.csr_matrix, Optional[numpy.ndarray], int]:
        """The name-vector matrix to search (restricted to a type), its row ids, the type bitmask."""
        if type_ is None:
            return self.rt, None, 0
        if type_ not in self.types:
            return self.rt[:, :0], numpy.zeros(0, dtype=numpy.int64), -1
        bit = 1 << self.types.index(type_)
        if type_ not in self._type_nt:
            has_type = (self.concept_types[self.link_concepts] & bit) != 0
            key_has_type = numpy.add.reduceat(has_type.astype(numpy.int32), self.link_indptr[:-1]) > 0
            key_has_type &= numpy.diff(self.link_indptr) > 0
            rows = numpy.flatnonzero(key_has_type)
            self._type_nt[type_] = (self.rt[:, rows].tocsr(), rows)
        nt, rows = self._type_nt[type_]
        return nt, rows, bit

    def _search(self, keys: List[str], k: int, type_: Optional[str]) -> List[List[Candidate]]:
        from sparse_dot_topn import sp_matmul_topn

        rt, rows, bit = self._type_index(type_)
        if bit == -1:
            return [[] for _ in keys]
        queries = self.vectorizer.transform(keys).astype(numpy.float32).tocsr()
        # 1. retrieve: top names by the rarer n-grams only (cheap posting lists)
        pool = max(self.cfg["retrieval_pool"], k * self.cfg["name_pool"])
        retrieval_q = queries[:, self.retrieval_ngrams]
        if rt.shape[1] and retrieval_q.nnz:
            product = sp_matmul_topn(retrieval_q, rt, top_n=pool, n_threads=self.n_threads if self.n_threads > 1 else None)
        else:
            product = scipy.sparse.csr_matrix((len(keys), max(rt.shape[1], 1)), dtype=numpy.float32)
        hits = product.indices if rows is None else rows[product.indices]
        # 2. rescore the retrieved names with the full TF-IDF cosine
        owner = numpy.repeat(numpy.arange(len(keys)), numpy.diff(product.indptr))
        if len(hits):
            scores = numpy.asarray(self.names_matrix[hits].multiply(queries[owner]).sum(axis=1)).ravel()
        else:
            scores = numpy.zeros(0, dtype=numpy.float32)
        keep = k * self.cfg["name_pool"]
        out = []
        for i, key in enumerate(keys):
            lo, hi = product.indptr[i], product.indptr[i + 1]
            order = numpy.argsort(-scores[lo:hi], kind="stable")[:keep]
            exact = self.keys.index(key)
            out.append(self._collect(exact, hits[lo:hi][order], scores[lo:hi][order], k, bit))
        return out

    def _collect(self, exact: int, hits: numpy.ndarray, scores: numpy.ndarray, k: int,
                 bit: int) -> List[Candidate]:
        """The first k concepts of the ranked names (`hits`, sorted by score; the exact
        hit, row `exact` or -1, first at 1.0), each concept once, of type `bit` if set."""
        # This loop runs per mention, where numpy scalars are slow: the arrays are read
        # through memoryviews (no copy, unlike lists of every link's ints in each process).
        indptr, concepts, ctypes = self._views()
        seen = set()
        cands: List[Candidate] = []
        ranked = [(exact, 1.0)] if exact >= 0 else []
        ranked.extend((row, min(score, 1.0)) for row, score in zip(hits.tolist(), scores.tolist()) if row != exact)
        for row, score in ranked:
            for pos in range(indptr[row], indptr[row + 1]):
                ci = concepts[pos]
                if ci in seen or (bit and not ctypes[ci] & bit):
                    continue
                seen.add(ci)
                cands.append(Candidate(self.concept_ids[ci], score, self.link_names[pos]))
                if len(cands) >= k:
                    return cands
        return cands

    def _views(self) -> Tuple[memoryview, memoryview, memoryview]:
        if self._as_views is None:
            self._as_views = tuple(memoryview(numpy.ascontiguousarray(a))  # type: ignore[assignment]
                                   for a in (self.link_indptr, self.link_concepts, self.concept_types))
        return self._as_views  # type: ignore[return-value]

    def clear_cache(self) -> None:
        self._cache.clear()

    # -- serialization ------------------------------------------------------------------
    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the KB into `path` and the index into `path/candidates/` (format 2)."""
        path = Path(path)
        self.kb.to_disk(path)
        index = path / INDEX_DIR
        index.mkdir(parents=True, exist_ok=True)
        srsly.write_json(index / "cfg.json", {"format": FORMAT_VERSION, **self.cfg, "types": self.types})
        (index / "strings.msgpack").write_bytes(srsly.msgpack_dumps(self._strings()))
        from .candidates_compat import ARRAYS_V1

        for stale in ARRAYS_V1:
            if stale not in _ARRAYS and (index / f"{stale}.npy").exists():
                (index / f"{stale}.npy").unlink()  # a format-1 index rewritten in place
        for name, array in self._arrays().items():
            save_array(index / f"{name}.npy", array)
        if self.ranker is not None:
            self.ranker.to_disk(path / RANKER_DIR)
        elif (path / RANKER_DIR / "ranker.msgpack").exists():
            (path / RANKER_DIR / "ranker.msgpack").unlink()  # a stale ranker would load with this index

    @classmethod
    def from_disk(cls, path: Union[str, Path], *, ranker: bool = True, mmap: bool = True,
                  **kwargs) -> "CandidateGenerator":
        """Load the KB from `path`, the index from `path/candidates/` and,
        unless `ranker` is false, the trained ranker from `path/ranker/`.

        With `mmap` the saved index arrays are memory-mapped copy-on-write
        (numpy `mmap_mode="c"`; sparse_dot_topn takes only writable arrays,
        and nothing writes them): processes that load the same pipeline
        (annotate's workers, Ray actors) share them through the page cache.
        The TF-IDF weights and the retrieval matrix are recomputed per process.
        """
        path = Path(path)
        index = path / INDEX_DIR
        if not (index / "cfg.json").exists():
            raise FileNotFoundError(f"No candidate index at {index} (build it with `python -m spacy_medlink kb build`)")
        kb = ConceptKB().from_disk(path)
        cfg = srsly.read_json(index / "cfg.json")
        strings = srsly.msgpack_loads((index / "strings.msgpack").read_bytes())
        names = _ARRAYS
        if cfg.get("format") != FORMAT_VERSION:
            from .candidates_compat import OLD_ARRAYS

            names = OLD_ARRAYS.get(cfg.get("format"), _ARRAYS)
        # numpy.asarray: plain arrays over the same mapping (numpy.memmap objects are slow to index)
        arrays = {name: numpy.asarray(numpy.load(index / f"{name}.npy", allow_pickle=False,
                                                 mmap_mode="c" if mmap else None))
                  for name in names if (index / f"{name}.npy").exists()}
        self = cls._restore(kb, cfg, strings, arrays, **kwargs)
        if ranker and (path / RANKER_DIR / "ranker.msgpack").exists():
            from .ranker import CandidateRanker

            self.ranker = CandidateRanker.from_disk(path / RANKER_DIR)
        return self

    def to_bytes(self) -> bytes:
        """KB and index in one msgpack message (for a pipeline's `to_bytes`)."""
        msg = {
            "kb": self.kb.to_bytes(),
            "cfg": {"format": FORMAT_VERSION, **self.cfg, "types": self.types},
            "strings": self._strings(),
            "arrays": {name: (a.dtype.str, list(a.shape), a.tobytes()) for name, a in self._arrays().items()},
        }
        if self.ranker is not None:
            msg["ranker"] = self.ranker.to_bytes()
        return srsly.msgpack_dumps(msg)

    @classmethod
    def from_bytes(cls, data: bytes, **kwargs) -> "CandidateGenerator":
        msg = srsly.msgpack_loads(data)
        arrays = {
            name: numpy.frombuffer(buf, dtype=numpy.dtype(dtype)).reshape(shape).copy()
            for name, (dtype, shape, buf) in msg["arrays"].items()
        }
        self = cls._restore(ConceptKB().from_bytes(msg["kb"]), msg["cfg"], msg["strings"], arrays, **kwargs)
        if msg.get("ranker"):
            from .ranker import CandidateRanker

            self.ranker = CandidateRanker.from_bytes(msg["ranker"])
        return self

    def _ngram_list(self) -> List[str]:
        ngrams = [""] * len(self.vectorizer.vocabulary_)
        for term, i in self.vectorizer.vocabulary_.items():
            ngrams[i] = term
        return ngrams

    def _strings(self) -> Dict[str, List[str]]:
        return {"ngrams": self._ngram_list()}

    def _arrays(self) -> Dict[str, numpy.ndarray]:
        if self.names_counts is None or self.link_name_pos is None:
            self._upgrade()
        return {
            "idf": numpy.asarray(self.vectorizer.idf_, dtype=numpy.float64),
            "n_counts": self.names_counts,
            "n_indices": self.names_matrix.indices,
            "n_indptr": self.names_matrix.indptr,
            "retrieval_ngrams": self.retrieval_ngrams,
            "link_indptr": _smallest_int(numpy.asarray(self.link_indptr)),
            "link_concepts": self.link_concepts,
            "link_preferred": self.link_preferred,
            "link_name_pos": self.link_name_pos,
            "concept_types": self.concept_types,
            **table_arrays("keys", self.keys),
        }

    def _upgrade(self) -> None:
        """What a format-1 index lacks to be saved as the current format (slow, and only then)."""
        from .candidates_compat import format_1_counts, format_1_name_positions

        if self.names_counts is None:
            counter = CountVectorizer(**self._count_settings(), vocabulary=self.vectorizer.vocabulary_)
            self.names_counts = _smallest_uint(format_1_counts(self.names_matrix, self.keys, counter))
        if self.link_name_pos is None:
            self.link_name_pos = _smallest_uint(
                format_1_name_positions(self.kb, self.concept_ids, self.link_concepts, self.link_names)
            )

    @staticmethod
    def _settings(cfg: dict) -> dict:
        """The constructor's index settings from a saved `cfg`."""
        return {"ngram_range": tuple(cfg["ngram_range"]), "min_df": cfg["min_df"], "max_df": cfg["max_df"],
                "analyzer": cfg["analyzer"], "normalize": cfg["normalize"], "name_pool": cfg["name_pool"],
                "retrieval_max_names": cfg["retrieval_max_names"], "retrieval_pool": cfg["retrieval_pool"]}

    def with_kb(self, kb: ConceptKB) -> "CandidateGenerator":
        """A generator built over `kb` with this one's index settings."""
        return type(self)(kb, **self._settings(self.cfg))

    @classmethod
    def _restore(cls, kb: ConceptKB, cfg: dict, strings: dict, arrays: Dict[str, numpy.ndarray],
                 **kwargs) -> "CandidateGenerator":
        if cfg.get("format") not in (1, 2, FORMAT_VERSION):
            raise ValueError(f"Unsupported candidate index format {cfg.get('format')!r}")
        self = cls(kb, **cls._settings(cfg), _build=False, **kwargs)
        self.types = list(cfg["types"])
        if "keys" in strings:  # formats 1 and 2: strings in msgpack
            from .candidates_compat import old_strings

            self.keys, self.concept_ids = old_strings(kb, strings)
        else:
            self.keys = table_from("keys", arrays)
            self.concept_ids = kb.concept_ids
        for name in ("link_indptr", "link_concepts", "link_preferred", "concept_types"):
            setattr(self, name, arrays[name])
        if "link_names" in strings:  # format 1
            self.link_names = strings["link_names"]
            self.link_name_pos = None
        else:
            self.link_name_pos = arrays["link_name_pos"]
            self.link_names = _KBLinkNames(kb, self.concept_ids, self.link_concepts, self.link_name_pos)
        vectorizer = self._vectorizer()
        vectorizer.vocabulary_ = {term: i for i, term in enumerate(strings["ngrams"])}
        vectorizer.idf_ = arrays["idf"]
        self.vectorizer = vectorizer
        self.retrieval_ngrams = arrays["retrieval_ngrams"]
        if "n_data" in arrays:  # format 1: the weights and the retrieval matrix as saved
            from .candidates_compat import format_1_matrices

            self.names_counts = None
            self.names_matrix, self.rt = format_1_matrices(arrays, len(self.keys), len(strings["ngrams"]))
        else:
            self.names_counts = arrays["n_counts"]
            self.names_matrix = self._weights(self.names_counts, arrays["n_indices"], arrays["n_indptr"])
            self.rt = self._retrieval_matrix()
        return self

    def __repr__(self) -> str:
        return f"<CandidateGenerator: {len(self.keys)} names, {len(self.concept_ids)} concepts, {self.cfg}>"
