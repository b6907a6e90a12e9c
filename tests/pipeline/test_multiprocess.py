"""nlp.pipe(n_process=2) on a saved torch pipeline returns what one process does.

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
print(json.dumps({"one": one, "two": two}))
"""


def test_two_processes_match_one(kb_dir, tmp_path):
    nlp = _make_nlp()
    _train(nlp, _examples(nlp), kb_path=kb_dir)
    nlp.to_disk(tmp_path / "model")
    texts = [eg.reference.text for eg in _examples(nlp)] * 3
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "model"), json.dumps(texts)],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    assert runs["two"] == runs["one"] and any(runs["one"])
