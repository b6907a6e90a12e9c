"""Where the ranker's top-1 is a candidate it added (from the training split or the document, no name)
and the mention is wrong: python experiments/linking/scripts/added_candidates.py KB CORPUS LABEL|all (printed counts)."""
import spacy, collections, sys
from spacy.tokens import DocBin
from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.kb.span_lookup import span_candidates
kbdir, corpus, label = sys.argv[1:4]
gen = CandidateGenerator.from_disk(kbdir)
docs = list(DocBin().from_disk(corpus).get_docs(spacy.blank("en").vocab))
spans = [e for d in docs for e in d.ents if (label == "all" or e.label_ == label) and e.kb_id_ and "|" not in e.kb_id_ and "+" not in e.kb_id_]
res = span_candidates(gen, spans, k=30, composites=False)
kb = gen.kb
t = collections.Counter()
for s, c in zip(spans, res):
    g = kb.resolve(s.kb_id_)
    ids = [x.concept_id for x in c]
    ok = bool(ids) and ids[0] == g
    top_added = bool(c) and not c[0].name
    gold_c = next((x for x in c if x.concept_id == g), None)
    gold_added = gold_c is not None and not gold_c.name
    t["n"] += 1; t["ok"] += ok
    t[("top added", top_added, "ok" if ok else "wrong")] += 1
    if not ok and top_added: t[("wrong top added; gold", "generated" if gold_c and not gold_added else ("added" if gold_c else "absent"))] += 1
for k, v in sorted(t.items(), key=str): print(k, v)
