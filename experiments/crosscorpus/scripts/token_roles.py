"""How a training set teaches one word: each occurrence (case-insensitive) counted
as an entity token of its label (first token or inside, corpus annotated completely
or in part), a token of a span marked outside, or an open token of a partial corpus.

    python scripts/token_roles.py CORPUS.spacy WORD OUTPUT.json
"""
import sys
from collections import Counter

import spacy
import srsly
from spacy.tokens import DocBin

from spacy_medlink.corpora.partial import ANNOTATED_KEY, OUTSIDE_KEY


def main(corpus: str, word: str, output: str) -> None:
    nlp = spacy.blank("en")
    roles: Counter = Counter()
    spans: Counter = Counter()
    docs = 0
    for doc in DocBin().from_disk(corpus).get_docs(nlp.vocab):
        docs += 1
        partial = ANNOTATED_KEY in doc.user_data
        outside = list(doc.spans[OUTSIDE_KEY]) if OUTSIDE_KEY in doc.spans else []
        for token in doc:
            if token.lower_ != word.lower():
                continue
            ent = next((e for e in doc.ents if e.start <= token.i < e.end), None)
            out = next((s for s in outside if s.start <= token.i < s.end), None)
            if ent is not None:
                where = "first token" if token.i == ent.start else "inside"
                roles[f"{ent.label_}, {where}, {'partial' if partial else 'complete'} corpus"] += 1
                spans[f"{ent.label_}: {ent.text}"] += 1
            elif out is not None:
                roles["in a span marked outside"] += 1
                spans[f"outside: {out.text}"] += 1
            else:
                roles["open (partial corpus)" if partial else "outside (complete corpus)"] += 1
    srsly.write_json(output, {"corpus": corpus, "word": word, "docs": docs, "occurrences": sum(roles.values()),
                              "roles": dict(roles.most_common()), "spans": dict(spans.most_common(40))})
    print(dict(roles.most_common()))


if __name__ == "__main__":
    main(*sys.argv[1:4])
