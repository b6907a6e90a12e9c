"""NER of k joint taggers whose concept sets differ (fold members): MER emissions and CRF scores
averaged and decoded once, as medlink.JointEnsemble.v1 does; concepts (MEN) from the first member
alone, since `python -m spacy_medlink ensemble` refuses members with different concept sets.
With --abbreviations=PIPELINE, that pipeline's `abbreviations` component (medlink_abbreviations, its tuned
switches) runs after the ensemble.
usage: fold_ensemble_ner.py CORPUS OUT [--abbreviations=PIPELINE] MODEL..."""
import json, sys
import torch
torch.set_num_threads(1)
import spacy
from spacy.scorer import Scorer
from spacy.tokens import DocBin
from spacy.training import Example
from spacy_medlink.ml import joint_module as JM
from spacy_medlink.ml.joint_tagger import JointScores, _convert_inputs

corpus, out, *models = sys.argv[1:]
abbr_from = [m.split("=", 1)[1] for m in models if m.startswith("--abbreviations=")]
models = [m for m in models if not m.startswith("--")]
nlps = [spacy.load(m) for m in models]
abbreviations = spacy.load(abbr_from[0]).get_pipe("abbreviations") if abbr_from else None
pipes = [n.get_pipe("joint_tagger") for n in nlps]
gold = list(DocBin().from_disk(corpus).get_docs(nlps[0].vocab))


def infer(modules, vs, mask, unpad):
    first = modules[0]
    heads = [m._mer_head(v) for m, v in zip(modules, vs)]
    crfs = [m.crf() for m in modules]
    start, transitions, end = (JM._mean([c[i] for c in crfs]) for i in range(3))
    mers = [unpad(h[0]) for h in heads]
    paths = JM.viterbi(JM._mean(mers), mask, start, transitions, end, constraints=first.constraints)
    flat = torch.as_tensor([t for p in paths for t in p], dtype=torch.long)
    inside = flat != first.outside
    h = heads[0]
    rows_of = lambda t: None if t is None else t[inside]  # noqa: E731
    men = torch.softmax(first._men_head(vs[0][inside], rows_of(h[0]), rows_of(h[1]), rows_of(h[2])), dim=-1)
    rows = torch.full_like(flat, -1)
    rows[inside] = torch.arange(int(inside.sum()))
    return JM._mean(mers), start, transitions, end, unpad(flat, -1), men, unpad(rows, -1)


preds = []
for b in range(0, len(gold), 16):
    batch = [nlps[0].make_doc(d.text) for d in gold[b : b + 16]]
    modules, vs, mask, unpad = [], [], None, None
    for nlp, pipe in zip(nlps, pipes):
        wrapper = pipe.model.get_ref("heads").layers[0]
        module = wrapper.shims[0]._model
        module.eval()
        inputs, _ = _convert_inputs(wrapper, nlp.get_pipe("tok2vec").model.predict(batch), False)
        X, lengths = inputs.args
        with torch.no_grad():
            padded = module.encode(X, lengths)
        if mask is None:
            mask, unpad = JM.token_mask(padded, lengths)
        modules.append(module)
        vs.append(padded[mask])
    with torch.no_grad():
        mer, start, transitions, end, paths, men, rows = infer(modules, vs, mask, unpad)
    ops = pipes[0].model.ops
    x = lambda t: ops.asarray(t.numpy())  # noqa: E731
    scores = JointScores(x(mer), None, None, None, x(start), x(transitions), x(end),
                         lengths=ops.asarray1i([len(d) for d in batch]), paths=x(paths), men_probs=x(men), men_rows=x(rows))
    pipes[0].set_annotations(batch, scores)
    if abbreviations is not None:
        batch = [abbreviations(doc) for doc in batch]
    preds.extend(batch)
examples = [Example(p, g) for p, g in zip(preds, gold)]
res = Scorer.score_spans(examples, "ents")
res["members"] = models
res["abbreviations"] = abbr_from[0] if abbr_from else None
json.dump(res, open(out, "w"), indent=1)
print({k: round(res[k], 4) for k in ("ents_p", "ents_r", "ents_f")})
