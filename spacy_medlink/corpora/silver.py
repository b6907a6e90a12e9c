"""Silver training docs: unlabeled text annotated by trained pipelines, for self-training.

With one teacher, its entities are the annotation. With two or more (say, two seeds of one
config), an entity is kept only where every teacher predicts it with the same span and
label; the tokens of an entity that the teachers disagree on are marked *missing*
(neither entity nor outside), which the partial-label CRF loss sums over instead of
teaching either side, and every other token is outside. Concept IDs are left empty: the
silver docs teach recognition, and the concept heads learn from gold alone (a mention
without an ID is unknown to them).
"""
from collections import Counter
from typing import Iterable, List, Sequence, Set, Tuple

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

Ent = Tuple[int, int, str]


def agreed_doc(vocab: Vocab, predictions: Sequence[Doc], counts: Counter) -> Doc:
    """One silver Doc from the teachers' predictions on the same text (same tokens).

    counts: incremented with `entities` (kept, and per label as `entities_<label>`),
    `disputed` (entities some teacher predicted and another did not) and `missing_tokens`.
    """
    first = predictions[0]
    words = [t.text for t in first]
    for other in predictions[1:]:
        if [t.text for t in other] != words:
            raise ValueError(f"The teachers tokenize {first.text[:60]!r}... differently: give them one tokenizer")
    doc = Doc(vocab, words=words, spaces=[bool(t.whitespace_) for t in first])
    sets = [{(e.start, e.end, e.label_) for e in p.ents} for p in predictions]
    agreed: Set[Ent] = set.intersection(*sets)
    disputed: Set[Ent] = set.union(*sets) - agreed
    missing_tokens = {i for start, end, _ in disputed for i in range(start, end)}
    doc.set_ents(
        [Span(doc, start, end, label=label) for start, end, label in sorted(agreed)],
        missing=[doc[i : i + 1] for i in sorted(missing_tokens)],
        default="outside",
    )
    counts["entities"] += len(agreed)
    counts.update(f"entities_{label}" for _, _, label in agreed)
    counts["disputed"] += len(disputed)
    counts["missing_tokens"] += len(missing_tokens)
    return doc


def silver_docs(teachers: Sequence, texts: Iterable[str], counts: Counter, batch_size: int = 32) -> List[Doc]:
    """Annotate `texts` with every teacher pipeline and keep what they agree on (`agreed_doc`)."""
    texts = list(texts)
    vocab = Vocab(strings=teachers[0].vocab.strings)
    per_teacher = [list(nlp.pipe(texts, batch_size=batch_size)) for nlp in teachers]
    out = [agreed_doc(vocab, predictions, counts) for predictions in zip(*per_teacher)]
    counts["docs"] += len(out)
    return out
