"""Mention replacement: gold mentions renamed from the KB, offsets and IDs kept right."""
import spacy
from spacy.training import Example

from spacy_medlink.training.augment import create_mention_replacement
from spacy_medlink.corpora.partial import mark_partial

from ..pipeline.helpers import make_examples

TEXT = ("Aspirin can cause gastric ulcer in elderly patients.",
        [(0, 7, "Chemical", "D001241"), (18, 31, "Disease", "D013276")])
KB_NAMES = {"Chemical": {"aspirin", "acetylsalicylic acid", "ibuprofen"},
            "Disease": {"ulcer", "ulcers", "stomach ulcer", "gastric ulcer", "diabetes mellitus", "pain"}}


def test_every_mention_renamed_within_its_type(kb_dir):
    nlp = spacy.blank("en")
    eg = make_examples(nlp, [TEXT])[0]
    augment = create_mention_replacement(str(kb_dir), level=1.0, mention_prob=1.0, same_concept=0.5, seed=1)
    seen = set()
    for _ in range(30):
        (out,) = list(augment(nlp, eg))
        ref = out.reference
        assert out.predicted.text == ref.text and ref.text.endswith(" in elderly patients.")
        assert [e.label_ for e in ref.ents] == ["Chemical", "Disease"]
        for ent in ref.ents:
            assert ent.text.lower() in KB_NAMES[ent.label_]
            seen.add((ent.text, ent.kb_id_))
        # a synonym of the same concept keeps its ID; another concept's name brings its own
        assert ("acetylsalicylic acid", "D001241") in seen or ("Ibuprofen", "D007052") in seen
    assert ("Ibuprofen", "D007052") in seen and ("acetylsalicylic acid", "D001241") in seen


def test_level_zero_and_partial_references_pass_through(kb_dir):
    nlp = spacy.blank("en")
    eg = make_examples(nlp, [TEXT])[0]
    assert list(create_mention_replacement(str(kb_dir), level=0.0)(nlp, eg)) == [eg]
    mark_partial(eg.reference, ["Disease"])
    augment = create_mention_replacement(str(kb_dir), level=1.0, mention_prob=1.0)
    assert list(augment(nlp, eg)) == [eg]


def test_unseeded_replacement_follows_the_global_seed(kb_dir):
    """Without its own seed the augmenter draws one from `random`, which spaCy's
    training seed fixes: the same seed renames the same mentions the same way."""
    import random

    nlp = spacy.blank("en")
    eg = make_examples(nlp, [TEXT])[0]

    def names(global_seed: int):
        random.seed(global_seed)
        augment = create_mention_replacement(str(kb_dir), level=1.0, mention_prob=1.0)
        return [tuple((e.text, e.kb_id_) for e in out.reference.ents) for _ in range(20) for out in augment(nlp, eg)]

    assert names(0) == names(0)
    assert names(0) != names(1)
