"""Longest-match dictionary tags, checked against trying every name at every position."""
import random
from typing import Dict, List, Sequence

import pytest

from spacy_medlink.kb.concept_kb import Concept, ConceptKB
from spacy_medlink.kb.name_matcher import B, I, L, O, U, NameMatcher
from spacy_medlink.tokenizer import biomed_nlp


def brute_force_tags(names: Dict[str, List[List[str]]], words: List[str], types: Sequence[str],
                     max_len: int) -> List[List[int]]:
    out = [[O] * len(types) for _ in words]
    lowered = [w.lower() for w in words]
    for col, t in enumerate(types):
        i = 0
        while i < len(words):
            best = 0
            for name in names.get(t, []):
                k = len(name)
                if k <= max_len and lowered[i : i + k] == [w.lower() for w in name] and k > best:
                    best = k
            if best == 1:
                out[i][col] = U
            elif best > 1:
                out[i][col] = B
                for j in range(i + 1, i + best - 1):
                    out[j][col] = I
                out[i + best - 1][col] = L
            i += max(best, 1)
    return out


@pytest.fixture(scope="module")
def nlp():
    return biomed_nlp()


def test_tags_by_type_and_longest_match(nlp):
    kb = ConceptKB()
    kb.add(Concept("D1", "heart failure", ("congestive heart failure",), ("Disease",)))
    kb.add(Concept("D2", "Lithium", ("lithium carbonate",), ("Chemical",)))
    kb.add(Concept("D3", "heart", (), ("Disease",)))
    kb.add(Concept("D4", "IS", (), ("Disease",)))
    kb.add(Concept("D5", "a b c d e f g h i j", ("x",), ("Disease",)))
    m = NameMatcher.build(kb, nlp.tokenizer)
    assert m.left_out == {"longer than 8 tokens": 1, "shorter than 2 characters": 1}  # counted, not dropped silently
    doc = nlp.make_doc("Lithium carbonate is given in congestive heart failure and IS.")
    tags = m.tags(doc, ["Chemical", "Disease"]).tolist()
    got = {t.text: row for t, row in zip(doc, tags)}
    assert tags[0] == [B, O] and tags[1] == [L, O]  # "Lithium carbonate", not "Lithium" alone
    assert [r[1] for r in tags[5:8]] == [B, I, L]  # the longest Disease name wins over "heart"
    assert got["is"] == [O, O] and got["IS"] == [O, U]  # a short form matches in its own case only
    assert m.tags(doc, ["Gene"]).tolist() == [[O]] * len(doc)
    assert m.tags(nlp.make_doc(""), ["Disease"]).shape == (0, 1)
    without = NameMatcher.build(kb, nlp.tokenizer, synonyms=False)
    assert without.tags(doc, ["Chemical"])[:2, 0].tolist() == [U, O]


def test_matches_brute_force_on_random_text(nlp):
    rng = random.Random(0)
    vocab = ["renal", "failure", "acute", "heart", "cancer", "breast", "ovarian", "of", "the", "cell"]
    names = {"Disease": [], "Chemical": []}
    kb = ConceptKB()
    for i in range(40):
        t = rng.choice(["Disease", "Chemical"])
        words = [rng.choice(vocab) for _ in range(rng.randint(1, 4))]
        names[t].append(words)
        kb.add(Concept(f"C{i}", " ".join(words), (), (t,)))
    m = NameMatcher.build(kb, nlp.tokenizer, max_len=3)
    names = {t: [n for n in ns if len(n) <= 3] for t, ns in names.items()}
    for _ in range(50):
        words = [rng.choice(vocab).upper() if rng.random() < 0.1 else rng.choice(vocab) for _ in range(rng.randint(0, 30))]
        doc = nlp.make_doc(" ".join(words))
        assert [t.text for t in doc] == words
        assert m.tags(doc, ["Chemical", "Disease"]).tolist() == brute_force_tags(names, words, ["Chemical", "Disease"], 3)


def test_round_trip(nlp, tmp_path):
    kb = ConceptKB()
    kb.add(Concept("D1", "heart failure", (), ("Disease",)))
    m = NameMatcher.build(kb, nlp.tokenizer)
    m.to_disk(tmp_path / "names.msgpack")
    again = NameMatcher.from_disk(tmp_path / "names.msgpack")
    doc = nlp.make_doc("acute heart failure")
    assert again.tags(doc).tolist() == m.tags(doc).tolist() and again.types == ["Disease"]
    with pytest.raises(FileNotFoundError, match="kb names"):
        NameMatcher.from_disk(tmp_path / "missing")
