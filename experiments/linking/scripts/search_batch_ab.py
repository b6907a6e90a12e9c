"""The candidate search's batch size, A/B in one process: BC5CDR dev gold mentions, typed,
one call each (every mention searched: dedupe off), batch sizes alternated three rounds;
the md5 of every candidate list (IDs and scores) per size. Writes JSON to argv[2].
Usage: OMP_NUM_THREADS=1 python experiments/linking/scripts/search_batch_ab.py kb/mesh_medic_base metrics/linking/kb_format/format3/search_batch_ab.json"""
import hashlib
import json
import sys
import time

import spacy

from spacy_medlink.kb.candidates import CandidateGenerator

gen = CandidateGenerator.from_disk(sys.argv[1])
gen.dedupe = False
docs = list(spacy.tokens.DocBin().from_disk("corpus/bc5cdr/dev.spacy").get_docs(spacy.blank("en").vocab))
mentions = [e.text for d in docs for e in d.ents]
types = [e.label_ for d in docs for e in d.ents]
gen(mentions[:10], k=10, types=types[:10])  # the lookups and type indexes built before timing
sizes = (4096, 1024, 256)
seconds = {b: [] for b in sizes}
digests = {}
for _ in range(3):
    for b in sizes:
        gen.search_batch = b
        start = time.perf_counter()
        out = gen(mentions, k=10, types=types)
        seconds[b].append(round(time.perf_counter() - start, 2))
        digests[b] = hashlib.md5(repr([[(c.concept_id, c.score) for c in x] for x in out]).encode()).hexdigest()
report = {"kb": sys.argv[1], "mentions": len(mentions), "seconds": seconds, "md5": digests,
          "same_candidates": len(set(digests.values())) == 1}
print(json.dumps(report))
with open(sys.argv[2], "w", encoding="utf8") as f:
    json.dump(report, f, indent=2)
