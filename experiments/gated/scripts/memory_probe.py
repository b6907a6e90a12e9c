"""Where does gated MiniLM memory grow? RSS per update (or per predict batch).

Run from the repository root, one thread, beside another training:
    OMP_NUM_THREADS=1 [MALLOC_MMAP_THRESHOLD_=N MALLOC_TRIM_THRESHOLD_=N] python experiments/gated/scripts/memory_probe.py train
Columns (train): step, docs in the batch, longest doc (tokens), seconds, RSS (MB), concept names cached so far.
The logs in metrics/gated/memory_probe/: train.log (as configs/gated_minilm.cfg was), train_mmap.log (N = 131072),
train_mmap4m.log (N = 4194304), train_split.log (N = 4194304, texts and names encoded apart).
All four ran before the config named medlink.malloc_mmap_threshold.v1 in [nlp.before_creation] and the first
three before the gated model encoded texts and names apart (measured 2026-11-30); remove the section from a copy
of the config to see the growth again.
"""
import resource, sys, time, os, gc
import spacy
from spacy.training import Corpus
from spacy.util import load_config, registry
from thinc.api import fix_random_seed
import spacy_medlink  # noqa

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
cfg = load_config("configs/gated_minilm.cfg", overrides={
    "paths.train": "corpus/ncbi/train.spacy", "paths.dev": "corpus/ncbi/dev.spacy", "paths.kb": "kb/medic"})
nlp = spacy.util.load_model_from_config(cfg, auto_fill=True)
fix_random_seed(0)
train = Corpus("corpus/ncbi/train.spacy")
dev = Corpus("corpus/ncbi/dev.spacy")
optimizer = nlp.initialize(lambda: train(nlp))
print("init", rss(), flush=True)
pipe = nlp.get_pipe("gated_normalizer")
batcher = registry.resolve({"b": cfg["training"]["batcher"]})["b"]
examples = list(train(nlp))
mode = sys.argv[1] if len(sys.argv) > 1 else "train"
if mode == "train":
    for step, batch in enumerate(batcher(examples)):
        t = time.time()
        nlp.update(batch, sgd=optimizer, drop=0.1)
        ntok = max(len(eg.predicted) for eg in batch)
        print(step, len(batch), ntok, f"{time.time()-t:.1f}s", rss(), len(pipe._name_docs_cache), flush=True)
        if step >= 40:
            break
else:
    docs = [eg.predicted for eg in dev(nlp)]
    for i in range(0, len(docs), 32):
        t = time.time()
        preds = pipe.predict(docs[i:i+32])
        n_sp = sum(len(p) for p in preds); n_c = sum(len(s.candidates) for p in preds for s in p)
        print(i, n_sp, n_c, f"{time.time()-t:.1f}s", rss(), flush=True)
