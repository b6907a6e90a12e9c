"""The KB dictionary as an embedded feature of any tok2vec.

`medlink.DictionaryEmbed.v1` wraps an embedding layer (spaCy's
MultiHashEmbed, CharacterEmbed, ...) and concatenates, per token, an
embedding of its longest-match tag (O/B/I/L/U) for each entity type from a
`kb.name_matcher.NameMatcher`, then mixes both back to `width` with a Maxout,
so the encoder above sees the width it expects.

The matcher file is read at initialize and then kept in the model (its
hashes serialize with the weights), so a packaged pipeline needs no KB on
disk.
"""
import hashlib
import weakref
from typing import Callable, Dict, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Embed, Maxout, Model, chain, concatenate, with_array
from thinc.types import Floats2d, Ints2d

from ..kb.name_matcher import N_TAGS, NameMatcher


@registry.architectures("medlink.DictionaryEmbed.v1")
def build_dictionary_embed(
    embed: Model[List[Doc], List[Floats2d]],
    width: int,
    types: List[str],
    matcher_path: Optional[str] = None,
    feature_width: int = 16,
) -> Model[List[Doc], List[Floats2d]]:
    """embed's vectors beside the embedded dictionary tags of `types`, mixed to `width`.

    matcher_path: a file from `python -m spacy_medlink kb names` (read at
        initialize; None only for a model that loads its weights).
    """
    if not types:
        raise ValueError("medlink.DictionaryEmbed.v1 needs at least one entity type")
    tags = dictionary_tags(types, matcher_path)
    tables = concatenate(*[Embed(feature_width, N_TAGS, column=i) for i in range(len(types))])
    features = chain(tags, with_array(tables))
    return chain(concatenate(embed, features), with_array(Maxout(width, nP=3, normalize=True)))


# decoded matchers by the digest of their bytes: copies of one model (an ensemble's
# members, each loaded with its own bytes) share one matcher while any of them holds it
_MATCHERS: "weakref.WeakValueDictionary[str, NameMatcher]" = weakref.WeakValueDictionary()


def dictionary_tags(types: List[str], matcher_path: Optional[str]) -> Model[List[Doc], List[Ints2d]]:
    """Per doc, an (n_tokens, len(types)) array of tags. The matcher lives in
    attrs as bytes (they serialize with the model); the decoded matcher is
    cached beside them, keyed by the bytes object it came from (copies of the
    model share this function, so each bytes object has its entry)."""
    cache: Dict[int, Tuple[bytes, NameMatcher]] = {}

    def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Ints2d], Callable]:
        data = model.attrs["matcher_bytes"]
        if not data:
            raise ValueError("dictionary_tags has no name matcher: initialize the model with a matcher_path")
        entry = cache.get(id(data))
        if entry is None or entry[0] is not data:
            if len(cache) >= 8:  # bytes replaced (a new initialize) leave stale entries
                cache.pop(next(iter(cache)))
            entry = cache[id(data)] = (data, _decoded(data))
        types = model.attrs["types"]
        out = [model.ops.asarray2i(entry[1].tags(doc, types)) for doc in docs]
        return out, lambda d_out: []

    return Model(
        "dictionary_tags",
        forward,
        init=_tags_init,
        attrs={"types": list(types), "matcher_path": matcher_path, "matcher_bytes": b""},
    )


def _decoded(data: bytes) -> NameMatcher:
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    matcher = _MATCHERS.get(digest)
    if matcher is None:
        matcher = _MATCHERS[digest] = NameMatcher.from_bytes(data)
    return matcher


def _tags_init(model: Model, X=None, Y=None) -> None:
    path = model.attrs["matcher_path"]
    if path is None:
        if not model.attrs["matcher_bytes"]:
            raise ValueError("medlink.DictionaryEmbed.v1: set matcher_path to a file of `spacy_medlink kb names`")
        return
    matcher = NameMatcher.from_disk(path)
    missing = [t for t in model.attrs["types"] if t not in matcher.types]
    if missing:
        raise ValueError(f"The name matcher at {path} has no names of type {', '.join(missing)} "
                         f"(it has {', '.join(matcher.types) or 'none'})")
    model.attrs["matcher_bytes"] = matcher.to_bytes()
