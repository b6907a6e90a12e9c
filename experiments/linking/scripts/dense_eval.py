"""The ranker with and without each name encoder: out of fold on train, gold mentions of dev and test.
From the repository root: python experiments/linking/scripts/dense_eval.py KB BASE_KB CORPUS_DIR OUT [ENCODER...]
(metrics/linking/encoder/dense_eval_*.json)."""
import sys, time, json
import torch
torch.set_num_threads(1)
import spacy
from spacy.tokens import DocBin
from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.kb.concept_kb import ConceptKB
from spacy_medlink.kb.encoder import NameEncoder
from spacy_medlink.kb.ranker_fit import fit_ranker
from spacy_medlink.cli.benchmark_linking import gold_table

kb_dir, base_dir, corpus, out = sys.argv[1:5]
encoders = sys.argv[5:]
vocab = spacy.blank("en").vocab
docs = lambda p: list(DocBin().from_disk(p).get_docs(vocab))
train, dev, test = docs(f"{corpus}/train.spacy"), docs(f"{corpus}/dev.spacy"), docs(f"{corpus}/test.spacy")
gen = CandidateGenerator.from_disk(kb_dir, ranker=False)
base = ConceptKB().from_disk(base_dir)
res = {}
for enc_path in ["none", *encoders]:
    t = time.perf_counter()
    enc = None if enc_path == "none" else NameEncoder.from_disk(enc_path)
    ranker, report = fit_ranker(gen, train, base_kb=base, folds=5, encoder=enc)
    gen.ranker = ranker
    r = {"oof": report.get("out_of_fold", {}).get("all"), "gain": report.get("feature_gain")}
    for split, d in (("dev", dev), ("test", test)):
        r[split] = gold_table(gen, d, train)
    res[enc_path] = r
    print(enc_path, round(time.perf_counter() - t), "oof", r["oof"]["ranker_acc@1"],
          *[(s, k, r[s]["accuracy"]["ranker"][k]["acc@1"]) for s in ("dev", "test") for k in r[s]["accuracy"]["ranker"] if k not in ("composite", "gold_id_not_in_kb")],
          "speed", r["test"]["speed"]["ranker"], flush=True)
json.dump(res, open(out, "w"), indent=1)
