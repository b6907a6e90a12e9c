"""medlink.CharBigramEmbed.v1: spaCy's MultiHashEmbed plus hash embeddings of
each token's left and right bigram (its ORTH joined with the previous or
next token's), for Chinese text tokenized one character a token.

Why: with one character per token, spaCy's PREFIX and SUFFIX features are
the character itself, so the embedding of a token says nothing about the
words it may belong to; character-bigram embeddings are the standard cheap
remedy in Chinese NER (each character reads the two bigrams it is part of)
before any context encoder runs. The bigram IDs are hashed from the ORTH IDs
of the pair (sentence edges pair with 0), so no vocabulary is needed and the
layer serializes as plain hash tables.
"""
from typing import List, Sequence, Union

import numpy
from spacy.attrs import intify_attr
from spacy.ml.featureextractor import FeatureExtractor
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import HashEmbed, Maxout, Model, chain, concatenate, list2ragged, ragged2list, with_array
from thinc.types import Floats2d, Ints2d

_MIX = numpy.uint64(0x9E3779B97F4A7C15)


@registry.architectures("medlink.CharBigramEmbed.v1")
def build_char_bigram_embed(
    width: int,
    attrs: Sequence[Union[str, int]],
    rows: Sequence[int],
    bigram_rows: int,
    include_static_vectors: bool = False,
) -> Model[List[Doc], List[Floats2d]]:
    """width, attrs, rows, include_static_vectors: as spaCy's MultiHashEmbed.v2;
    bigram_rows (int): rows of each of the two bigram hash tables."""
    if len(rows) != len(attrs):
        raise ValueError(f"Mismatched lengths: {len(rows)} rows vs {len(attrs)} attrs")
    tables = [HashEmbed(width, n, column=i, seed=8 + i, dropout=0.0) for i, n in enumerate(rows)]
    n = len(attrs)
    tables += [HashEmbed(width, bigram_rows, column=n + j, seed=100 + j, dropout=0.0) for j in range(2)]
    features: Model = chain(
        _bigram_features(FeatureExtractor(list(attrs))), list2ragged(), with_array(concatenate(*tables))
    )
    concat = width * (len(tables) + include_static_vectors)
    max_out = with_array(Maxout(width, concat, nP=3, dropout=0.0, normalize=True))
    if include_static_vectors:
        from spacy.ml.staticvectors import StaticVectors

        features = concatenate(features, StaticVectors(width, dropout=0.0))
    model = chain(features, max_out, ragged2list())
    model.attrs["bigram_rows"] = bigram_rows
    return model


def bigram_ids(orths: numpy.ndarray) -> numpy.ndarray:
    """(n,) ORTH IDs -> (n, 2) uint64 IDs of the left and right bigrams."""
    orths = orths.astype(numpy.uint64)
    prev = numpy.concatenate([numpy.zeros(1, numpy.uint64), orths[:-1]]) if len(orths) else orths
    nxt = numpy.concatenate([orths[1:], numpy.zeros(1, numpy.uint64)]) if len(orths) else orths
    with numpy.errstate(over="ignore"):
        left = prev * _MIX + orths
        right = orths * _MIX + nxt + numpy.uint64(1)
    return numpy.stack([left, right], axis=1)


def _bigram_features(extractor: Model[List[Doc], List[Ints2d]]) -> Model[List[Doc], List[Ints2d]]:
    orth = intify_attr("ORTH")

    def forward(model: Model, docs: List[Doc], is_train: bool):
        columns, _ = extractor(docs, is_train)
        out = []
        for doc, cols in zip(docs, columns):
            ids = bigram_ids(doc.to_array([orth]).reshape(-1))
            out.append(model.ops.asarray(numpy.hstack([model.ops.to_numpy(cols).astype(numpy.uint64), ids])))
        return out, lambda d: []

    return Model("char_bigram_features", forward, layers=[extractor])
