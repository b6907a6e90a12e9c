"""nlp.pipe(n_process=2), and annotate's own worker pool, on a saved torch pipeline
return what one process does.

The parent's torch starts its OpenMP thread pool first (one-process run, two
threads); forked workers used to wait forever on it. The check runs in a
subprocess under a timeout, so a deadlock fails the test instead of hanging it.
"""
import json
import subprocess
import sys

from .test_joint_tagger import _examples, _make_nlp, _train

SCRIPT = """
import json, sys, torch, spacy
torch.set_num_threads(2)
nlp = spacy.load(sys.argv[1])
texts = json.loads(sys.argv[2])
out = lambda docs: [[(e.start_char, e.end_char, e.label_, e.kb_id_) for e in d.ents] for d in docs]
one = out(nlp.pipe(texts))
two = out(nlp.pipe(texts, n_process=2, batch_size=2))
from spacy_medlink.annotate.records import Record
from spacy_medlink.annotate.run import annotate
records = [Record(str(i), t, "texts", i + 1) for i, t in enumerate(texts)]
pool = []
for n, name in ((1, "a1"), (2, "a2")):
    annotate(nlp, records, __import__("pathlib").Path(sys.argv[3]) / name, n_process=n, batch_size=2)
    rows = [json.loads(line) for line in (__import__("pathlib").Path(sys.argv[3]) / name / "part-00000.jsonl").read_text().splitlines()]
    pool.append([[(e["start"], e["end"], e["label"], e["kb_id"]) for e in r["entities"]] for r in rows])
print(json.dumps({"one": one, "two": two, "annotate_one": pool[0], "annotate_two": pool[1]}))
"""


def test_two_processes_match_one(kb_dir, tmp_path):
    nlp = _make_nlp()
    _train(nlp, _examples(nlp), kb_path=kb_dir)
    nlp.to_disk(tmp_path / "model")
    texts = [eg.reference.text for eg in _examples(nlp)] * 3
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "model"), json.dumps(texts), str(tmp_path)],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    assert runs["two"] == runs["one"] and any(runs["one"])
    as_lists = [[list(e) for e in doc] for doc in runs["one"]]
    assert runs["annotate_one"] == runs["annotate_two"] == as_lists
