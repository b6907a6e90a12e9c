"""Candidate indexes saved in the older on-disk formats 1 and 2.

Format 1 (written before 2026-12-01) stored the names' TF-IDF weights, the
transposed retrieval matrix and each link's name as a string; format 2 (written
2026-12-01 to 2026-12-03) kept the distinct names and the concept IDs as
msgpack strings. Both still load (`CandidateGenerator.from_disk`) and are
written in the current format when saved again, which needs what format 1 lacks:
the names' n-gram counts and each link's position among its concept's names.
"""
from typing import TYPE_CHECKING, Dict, Sequence, Tuple

import numpy
import scipy.sparse

from .strings import StringTable

if TYPE_CHECKING:
    from .concept_kb import ConceptKB

ARRAYS_V1 = ("idf", "n_data", "n_indices", "n_indptr", "rt_data", "rt_indices", "rt_indptr", "retrieval_ngrams",
             "link_indptr", "link_concepts", "link_preferred", "concept_types")
ARRAYS_V2 = ("idf", "n_counts", "n_indices", "n_indptr", "retrieval_ngrams", "link_indptr", "link_concepts",
             "link_preferred", "link_name_pos", "concept_types")
OLD_ARRAYS = {1: ARRAYS_V1, 2: ARRAYS_V2}
"""The arrays each older format saved, by format version."""


def old_strings(kb: "ConceptKB", strings: Dict[str, list]) -> Tuple[StringTable, Sequence[str]]:
    """Formats 1 and 2: the index rows (distinct names) and the concept IDs, from msgpack strings."""
    keys = StringTable.from_strings(strings["keys"])
    ids = strings["concept_ids"]
    concept_ids = kb.concept_ids if kb.concept_ids == ids else StringTable.from_strings(ids, index=False)
    return keys, concept_ids


def format_1_matrices(arrays: Dict[str, numpy.ndarray], n_names: int,
                      n_ngrams: int) -> Tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]:
    """Format 1: the saved name x n-gram weights and the n-gram x name retrieval matrix."""
    names_matrix = scipy.sparse.csr_matrix((arrays["n_data"], arrays["n_indices"], arrays["n_indptr"]),
                                           shape=(n_names, n_ngrams))
    rt = scipy.sparse.csr_matrix((arrays["rt_data"], arrays["rt_indices"], arrays["rt_indptr"]),
                                 shape=(len(arrays["retrieval_ngrams"]), n_names))
    return names_matrix, rt


def format_1_counts(names_matrix: scipy.sparse.csr_matrix, keys: Sequence[str], counter) -> numpy.ndarray:
    """The names' n-gram counts (counted again by `counter`, a CountVectorizer with the index's
    settings and vocabulary), in the stored matrix's entry order. Slow: seconds per 100k names."""
    counts = counter.transform(keys).tocsr()
    counts.sort_indices()
    # the position of each stored entry in (row, column) order
    order = names_matrix.copy()
    order.data = numpy.arange(order.nnz, dtype=numpy.float64)
    order.sort_indices()
    if not (numpy.array_equal(order.indices, counts.indices) and numpy.array_equal(order.indptr, counts.indptr)):
        raise ValueError("The n-gram counts of the index names do not match the stored weights")
    stored = numpy.empty(order.nnz, dtype=counts.data.dtype)
    stored[order.data.astype(numpy.int64)] = counts.data
    return stored


def format_1_name_positions(kb: "ConceptKB", concept_ids: Sequence[str], link_concepts: numpy.ndarray,
                            link_names: Sequence[str]) -> numpy.ndarray:
    """Each link's position among its concept's KB names, from format 1's link names."""
    positions = numpy.empty(len(link_names), dtype=numpy.int64)
    for pos, (ci, name) in enumerate(zip(link_concepts.tolist(), link_names)):
        concept = kb[concept_ids[ci]]
        positions[pos] = ((concept.name,) + concept.synonyms).index(name)
    return positions
