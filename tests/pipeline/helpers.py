"""What the component tests share: a tiny tok2vec, examples from
(text, [(start, end, label, kb_id)]) and the predictions compared across
serialization round trips."""
from typing import Any, Dict, List, Sequence, Tuple

from spacy.language import Language
from spacy.training import Example

TINY_TOK2VEC: Dict[str, Any] = {
    "@architectures": "spacy.Tok2Vec.v2",
    "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 32,
              "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"], "rows": [500, 100, 100, 100],
              "include_static_vectors": False},
    "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 32, "depth": 1,
               "window_size": 1, "maxout_pieces": 2},
}


def make_examples(nlp: Language, data: Sequence[Tuple[str, List[Tuple[int, int, str, str]]]]) -> List[Example]:
    examples = []
    for text, ents in data:
        ref = nlp.make_doc(text)
        ref.ents = [ref.char_span(s, e, label=label, kb_id=kb_id) for s, e, label, kb_id in ents]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def ent_outputs(nlp: Language, texts: Sequence[str]) -> List[List[tuple]]:
    """Every output of the Doc contract: spans, labels, IDs, scores, candidates."""
    return [
        [(e.start_char, e.end_char, e.label_, e.kb_id_, e._.medlink_score, e._.medlink_candidates) for e in doc.ents]
        for doc in nlp.pipe(texts)
    ]
