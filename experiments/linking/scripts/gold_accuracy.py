"""Gold-mention accuracy@1/@5 of a KB folder's ranker (benchmark linking's table), from the repository root:
python experiments/linking/scripts/gold_accuracy.py KB CORPUS_DIR OUT [SPLIT...] (metrics/linking/abbreviation_detector/*.json)."""
import sys, json
import spacy
from spacy.tokens import DocBin
from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.cli.benchmark_linking import gold_table
kb_dir, corpus, out = sys.argv[1:4]
splits = sys.argv[4:] or ["dev", "test"]  # a train + dev KB: test only
vocab = spacy.blank("en").vocab
docs = lambda p: list(DocBin().from_disk(p).get_docs(vocab))
train = docs(f"{corpus}/train.spacy")
gen = CandidateGenerator.from_disk(kb_dir)
res = {}
for split in splits:
    res[split] = gold_table(gen, docs(f"{corpus}/{split}.spacy"), train)
    print(kb_dir, split, {k: v["acc@1"] for k, v in res[split]["accuracy"]["ranker"].items()}, flush=True)
json.dump(res, open(out, "w"), indent=1)
