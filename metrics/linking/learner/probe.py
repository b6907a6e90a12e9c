"""Probe: the ranker's learner settings, with the feature rows built once.

python metrics/linking/learner/probe.py KB BASE_KB TRAIN DEV OUT.json [--test TEST]

Builds the cross-fit rows of TRAIN exactly as `kb ranker --base-kb` does (5 document
folds, each against BASE_KB + the other folds' mentions) and the rows of DEV (and TEST)
against the full KB, then fits each learner setting on the out-of-fold rows and scores
accuracy@1 over the single-concept gold mentions: out of fold (fit on four folds'
rows, scored on the fifth's) and on DEV (fit on all folds' rows).
"""
import json
import sys
import time

import numpy
import spacy
from spacy.tokens import DocBin

from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.kb.concept_kb import ConceptKB
from spacy_medlink.kb.mention_stats import split_stats
from spacy_medlink.kb.ranker import CandidateRanker
from spacy_medlink.kb.ranker_fit import _fold_generator, mention_rows

SETTINGS = {
    "default (binary, 300 rounds, rate 0.05, 31 leaves)": {},
    "600 rounds": {"num_boost_round": 600},
    "150 rounds": {"num_boost_round": 150},
    "15 leaves": {"num_leaves": 15},
    "63 leaves": {"num_leaves": 63},
    "min_data_in_leaf 50": {"min_data_in_leaf": 50},
    "min_data_in_leaf 5": {"min_data_in_leaf": 5},
    "rate 0.02, 800 rounds": {"learning_rate": 0.02, "num_boost_round": 800},
    "lambdarank": {"objective": "lambdarank"},
    "lambdarank, 63 leaves": {"objective": "lambdarank", "num_leaves": 63},
    "xentropy + L2 1": {"lambda_l2": 1.0},
}


def acc(rows_list, probs_list):
    right = n = 0
    for rows, probs in zip(rows_list, probs_list):
        pos = 0
        for gold, cands in zip(rows.gold, rows.expanded):
            p = probs[pos : pos + len(cands)]
            pos += len(cands)
            n += 1
            right += bool(cands) and cands[int(numpy.argmax(p))][0].concept_id == gold
    return right / n, n


def groups(rows):
    return [len(c) for c in rows.expanded if c]


def main(kb_dir, base_dir, train, dev, out, test=None):
    t0 = time.time()
    vocab = spacy.blank("en").vocab
    gen = CandidateGenerator.from_disk(kb_dir, ranker=False)
    base = ConceptKB().from_disk(base_dir)
    train_docs = list(DocBin().from_disk(train).get_docs(vocab))
    ranker = CandidateRanker()
    ranker.stats, _ = split_stats(train_docs, gen.kb.resolve)
    parts = [train_docs[i::5] for i in range(5)]
    folds = []
    for i, part in enumerate(parts):
        fg = _fold_generator(gen, base, [d for j, p in enumerate(parts) if j != i for d in p])
        held, _ = split_stats(part, gen.kb.resolve)
        folds.append(mention_rows(ranker, fg, part, own=[held] * len(part)))
    evals = {"dev": mention_rows(ranker, gen, list(DocBin().from_disk(dev).get_docs(vocab)))}
    if test:
        evals["test"] = mention_rows(ranker, gen, list(DocBin().from_disk(test).get_docs(vocab)))
    print(f"rows built in {time.time() - t0:.0f}s", flush=True)
    results = {}
    for name, params in SETTINGS.items():
        t = time.time()
        rank = params.get("objective") == "lambdarank"
        oof_probs = []
        for i in range(5):
            rest = [r for j, r in enumerate(folds) if j != i]
            oof_probs.append(_fit_predict(params, rest, folds[i], rank))
        res = {"out_of_fold": round(acc(folds, oof_probs)[0], 4)}
        for split, rows in evals.items():
            res[split] = round(acc([rows], [_fit_predict(params, folds, rows, rank)])[0], 4)
        res["seconds"] = round(time.time() - t, 1)
        results[name] = res
        print(name, res, flush=True)
    json.dump({"kb": kb_dir, "train": train, "dev": dev, "test": test, "settings": SETTINGS, "results": results,
               "mentions": {"out_of_fold": sum(len(f.gold) for f in folds), **{k: len(v.gold) for k, v in evals.items()}}},
              open(out, "w"), indent=1)


def _fit_predict(params, fit_rows, rows, rank):
    import lightgbm

    X = numpy.concatenate([r.X for r in fit_rows])
    y = numpy.concatenate([r.y for r in fit_rows])
    p = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20,
         "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1, "verbose": -1,
         "seed": 0, "num_threads": 1, "deterministic": True, "force_row_wise": True}
    p.update({k: v for k, v in params.items() if k != "num_boost_round"})
    if rank:
        p.pop("bagging_fraction"); p.pop("bagging_freq")
        data = lightgbm.Dataset(X, label=y, group=[g for r in fit_rows for g in groups(r)])
    else:
        data = lightgbm.Dataset(X, label=y)
    booster = lightgbm.train(p, data, num_boost_round=int(params.get("num_boost_round", 300)))
    return booster.predict(rows.X, num_threads=1)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    test = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--test=")), None)
    main(*args, test=test)
