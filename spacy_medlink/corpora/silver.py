"""Silver training docs: unlabeled text annotated by trained pipelines, for self-training.

With one teacher, its entities are the annotation. With two or more (say, two seeds of one
config), an entity is kept only where every teacher predicts it with the same span and
label; the tokens of an entity that the teachers disagree on are marked *missing*
(neither entity nor outside), which the partial-label CRF loss sums over instead of
teaching either side, and every other token is outside. Concept IDs are left empty: the
silver docs teach recognition, and the concept heads learn from gold alone (a mention
without an ID is unknown to them).

`completed_doc` is the same agreement on gold docs of a corpus that leaves some labels
unannotated (NCBI Disease has no Chemical mentions): the gold entities stay as they are,
with their IDs, and the teachers fill in only the missing labels, so such a corpus can be
trained on beside one that annotates every label (multi-corpus training)
without teaching that its chemicals are outside.
"""
from collections import Counter
from typing import Collection, Iterable, List, Sequence, Set, Tuple

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
    agreed, disputed = _agreement(predictions)
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


def _agreement(predictions: Sequence[Doc]) -> Tuple[Set[Ent], Set[Ent]]:
    """The entities every teacher predicts, and those only some predict."""
    sets = [{(e.start, e.end, e.label_) for e in p.ents} for p in predictions]
    agreed: Set[Ent] = set.intersection(*sets)
    return agreed, set.union(*sets) - agreed


def completed_doc(
    gold: Doc, predictions: Sequence[Doc], labels: Collection[str], counts: Counter, add_agreed: bool = True
) -> Doc:
    """`gold` with the entities of `labels`, which its corpus does not annotate, filled in.

    Teachers' entities of other labels are ignored (the gold has those), and so are any that
    touch a gold entity's tokens (counted as `overlapping_gold`; their other tokens are
    missing). Of the rest, the agreed ones become entities without an ID and the disputed
    ones' tokens missing, as in `agreed_doc`. With `add_agreed` False the agreed ones' tokens are missing too: on text
    unlike the teachers' training data (gene symbols read as chemicals) their entities are
    noise, while what no teacher predicts is still safely outside. counts: `gold_entities`,
    `entities` (added, and per label), `disputed`, `agreed_missing`, `missing_tokens`,
    `overlapping_gold`.
    """
    words = [t.text for t in gold]
    if any([t.text for t in p] != words for p in predictions):
        raise ValueError(f"A teacher's tokens differ from the gold doc's ({gold.text[:60]!r}...): run it on the gold tokens")
    taken = {i for e in gold.ents for i in range(e.start, e.end)}
    agreed, disputed = _agreement(predictions)
    kept: List[Ent] = []
    unsure: Set[int] = set()
    for ent in sorted(agreed | disputed):
        start, end, label = ent
        if label not in labels:
            continue
        if taken.intersection(range(start, end)):
            counts["overlapping_gold"] += 1
            unsure.update(range(start, end))  # its tokens beyond the gold entity are not known outside
        elif ent in agreed and add_agreed:
            kept.append(ent)
        else:
            counts["disputed" if ent in disputed else "agreed_missing"] += 1
            unsure.update(range(start, end))
    missing_tokens = unsure - taken - {i for start, end, _ in kept for i in range(start, end)}
    doc = Doc(gold.vocab, words=words, spaces=[bool(t.whitespace_) for t in gold], user_data=dict(gold.user_data))
    ents = [Span(doc, e.start, e.end, label=e.label_, kb_id=e.kb_id_) for e in gold.ents]
    ents += [Span(doc, start, end, label=label) for start, end, label in kept]
    doc.set_ents(
        sorted(ents, key=lambda e: e.start),
        missing=[doc[i : i + 1] for i in sorted(missing_tokens)],
        default="outside",
    )
    for key, group in gold.spans.items():  # the converter's mentions, overlapping ones included
        doc.spans[key] = [Span(doc, sp.start, sp.end, label=sp.label_, kb_id=sp.kb_id_) for sp in group]
    counts["gold_entities"] += len(gold.ents)
    counts["entities"] += len(kept)
    counts.update(f"entities_{label}" for _, _, label in kept)
    counts["missing_tokens"] += len(missing_tokens)
    return doc


def completed_docs(
    teachers: Sequence,
    golds: Iterable[Doc],
    labels: Collection[str],
    counts: Counter,
    add_agreed: bool = True,
    batch_size: int = 32,
) -> List[Doc]:
    """`completed_doc` for each gold doc, every teacher run on the gold's own tokens."""
    golds = list(golds)
    per_teacher = [
        list(nlp.pipe((Doc(nlp.vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]) for g in golds),
                      batch_size=batch_size))
        for nlp in teachers
    ]
    out = [completed_doc(gold, predictions, labels, counts, add_agreed) for gold, *predictions in zip(golds, *per_teacher)]
    counts["docs"] += len(out)
    return out


def silver_docs(teachers: Sequence, texts: Iterable[str], counts: Counter, batch_size: int = 32) -> List[Doc]:
    """Annotate `texts` with every teacher pipeline and keep what they agree on (`agreed_doc`)."""
    texts = list(texts)
    vocab = Vocab(strings=teachers[0].vocab.strings)
    per_teacher = [list(nlp.pipe(texts, batch_size=batch_size)) for nlp in teachers]
    out = [agreed_doc(vocab, predictions, counts) for predictions in zip(*per_teacher)]
    counts["docs"] += len(out)
    return out
