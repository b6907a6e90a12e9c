"""The candidate ranker, the exact-match dictionary and composite mentions."""
import json
from typing import List, Sequence, Tuple

import numpy
import pytest
import spacy
from spacy.tokens import DocBin, Span
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.kb.builders import add_train_mentions
from spacy_medlink.kb.candidates import RANKER_DIR, CandidateGenerator
from spacy_medlink.kb.composite import choose_composite, coordination_parts
from spacy_medlink.kb.concept_kb import Concept, ConceptKB
from spacy_medlink.kb.dictionary import ExactDictionary
from spacy_medlink.kb.abbreviations import abbreviates, is_short_form
from spacy_medlink.kb.mention_stats import MentionStats, split_stats
from spacy_medlink.kb.ranker import DENSE_FEATURES, DOCUMENT, FEATURES, GENERATED, TRAINING, CandidateRanker
from spacy_medlink.kb.variants import query_variants, spelling_variants
from spacy_medlink.kb.ranker_fit import fit_ranker, mention_rows
from spacy_medlink.kb.names import Candidate
from spacy_medlink.kb.span_lookup import span_candidates, span_long_forms
from spacy_medlink.tokenizer import biomed_nlp

Ents = List[Tuple[str, str, str]]  # (text, label, kb_id), found left to right
PLAIN = [f for f in FEATURES if f not in DENSE_FEATURES]  # the features a ranker without a name encoder computes


def _base_kb() -> ConceptKB:
    kb = ConceptKB()
    kb.add(Concept("D003139", "Common Cold", ("cold",), ("Disease",)))
    kb.add(Concept("D003080", "Cold Temperature", ("cold",), ("Disease",)))
    kb.add(Concept("D001943", "Breast Neoplasms", ("breast cancer",), ("Disease",)))
    kb.add(Concept("D010051", "Ovarian Neoplasms", ("ovarian cancer",), ("Disease",)))
    kb.add(Concept("D008103", "Liver Cirrhosis", ("cirrhosis",), ("Disease",)))
    kb.add(Concept("D007854", "Lead", (), ("Chemical",)))
    kb.add(Concept("D002945", "Cisplatin", ("CDDP",), ("Chemical",)))
    return kb


def _doc(nlp, text: str, ents: Ents):
    doc = nlp.make_doc(text)
    spans, pos = [], 0
    for mention, label, kb_id in ents:
        start = text.index(mention, pos)
        pos = start + len(mention)
        spans.append(doc.char_span(start, pos, label=label, kb_id=kb_id))
    doc.ents = spans
    return doc


TRAIN = [
    ("A cold and cirrhosis.", [("cold", "Disease", "D003139"), ("cirrhosis", "Disease", "D008103")]),
    ("Her cold got worse after cisplatin.", [("cold", "Disease", "D003139"), ("cisplatin", "Chemical", "D002945")]),
    ("Lead exposure and breast cancer.", [("Lead", "Chemical", "D007854"), ("breast cancer", "Disease", "D001943")]),
    ("The cold returned with oldchem.", [("cold", "Disease", "D003139"), ("oldchem", "Chemical", "C999999")]),
    ("Cisplatin and ovarian cancer.", [("Cisplatin", "Chemical", "D002945"), ("ovarian cancer", "Disease", "D010051")]),
    ("Cirrhosis after a cold.", [("Cirrhosis", "Disease", "D008103"), ("cold", "Disease", "D003139")]),
]
DEV = [
    ("A cold and breast cancer.", [("cold", "Disease", "D003139"), ("breast cancer", "Disease", "D001943")]),
    ("Lead levels, then Pb again.", [("Lead", "Chemical", "D007854"), ("Pb", "Chemical", "D007854")]),
    ("The cold, cirrhosis and CDDP.", [("cold", "Disease", "D003139"), ("cirrhosis", "Disease", "D008103"),
                                      ("CDDP", "Chemical", "D002945")]),
    ("Oldchem and a cold.", [("Oldchem", "Chemical", "C999999"), ("cold", "Disease", "D003139")]),
]
# "CIS" abbreviates the cisplatin of its doc (not defined in parentheses), after two other chemicals
SHORT_FORM = ("Lead, oldchem, cisplatin; later CIS.", [("Lead", "Chemical", "D007854"), ("oldchem", "Chemical", "C999999"),
                                                      ("cisplatin", "Chemical", "D002945"), ("CIS", "Chemical", "D002945")])


@pytest.fixture(scope="module")
def nlp():
    return biomed_nlp()


@pytest.fixture(scope="module")
def docs(nlp):
    return [_doc(nlp, t, e) for t, e in TRAIN], [_doc(nlp, t, e) for t, e in DEV]


@pytest.fixture(scope="module")
def generator(docs):
    kb = _base_kb()
    add_train_mentions(kb, docs[0], "test")
    return CandidateGenerator(kb)


@pytest.fixture(scope="module")
def fitted(generator, docs):
    ranker, report = fit_ranker(generator, docs[0], docs[1], folds=1, learner="logistic")
    return ranker, report


def test_stats_leave_own_counts_out():
    stats, own = MentionStats(), MentionStats()
    for key, cid in [("cold", "A"), ("cold", "A"), ("cold", "B")]:
        stats.add(key, cid)
    own.add("cold", "A")
    assert stats.counts("cold", "A") == (2, 3, 2)
    assert stats.counts("cold", "A", own) == (1, 2, 1)
    assert stats.concepts_of("cold") == ["A", "B"]
    own.add("cold", "A")
    assert stats.concepts_of("cold", own) == ["B"]  # what is left once the doc's own mentions are out
    assert stats.best("cold") == "A" and stats.best("flu") is None
    assert MentionStats.from_dict(stats.to_dict()).counts("cold", "B") == stats.counts("cold", "B")


def test_split_stats_skip_composite_and_nil(nlp, generator):
    doc = _doc(nlp, "cold, flu and x.", [("cold", "Disease", "D003139"), ("flu", "Disease", "D1|D2"),
                                         ("x", "Disease", "")])
    stats, own = split_stats([doc], lambda x: x)
    assert dict(stats.key_concepts) == {"cold": {"D003139": 1}} and len(own) == 1
    # the composite is counted apart, for choose_composite's vote, and survives serialization
    assert dict(stats.composites) == {"flu": 1} and dict(own[0].composites) == {"flu": 1}
    assert stats.composite_vote("flu") is True and stats.composite_vote("cold") is False
    assert stats.composite_vote("x") is None
    assert MentionStats.from_dict(stats.to_dict()).composite_vote("flu") is True
    assert MentionStats.from_dict({"key_concepts": {"cold": {"A": 1}}}).composites == {}
    stats.add("flu", "D1")  # one of each: no majority, the scores decide
    assert stats.composite_vote("flu") is None
    rows = mention_rows(CandidateRanker(), generator, [doc])
    assert len(rows.gold) == 1 and rows.left_out == {"composite": 1, "no concept": 1}


def test_expand_adds_training_and_document_candidates(generator, fitted, docs):
    ranker, _ = fitted
    dev = docs[1]
    spans = [e for d in dev for e in d.ents]
    from spacy_medlink.kb.span_lookup import generator_candidates

    long_forms = span_long_forms(spans)
    cands = generator_candidates(generator, spans, long_forms, k=5)
    expanded = ranker.expand(spans, long_forms, cands)
    by_text = {s.text: e for s, e in zip(spans, expanded)}
    # "Oldchem": the training split linked it to an ID the KB does not hold
    assert ("C999999", TRAINING) in [(c.concept_id, o) for c, o in by_text["Oldchem"]]
    # "Pb": the document's other Chemical mention links to Lead
    assert ("D007854", DOCUMENT) in [(c.concept_id, o) for c, o in by_text["Pb"]]
    assert all(o == GENERATED for _, o in by_text["cold"][: len(cands[0])])
    X = ranker.features(spans, long_forms, expanded, generator)
    assert X.shape == (sum(len(e) for e in expanded), len(FEATURES))
    first = X[0]  # "cold" vs its first generated candidate, an exact name
    assert first[FEATURES.index("exact")] == 1.0 and first[FEATURES.index("rank_recip")] == 1.0


def _reference_row(ranker, kb, span, lf, cands, rank, own, doc_spans):
    """One feature row the slow way: every feature from its definition, for one (span, candidate)."""
    import math

    from spacy_medlink.kb.names import normalize_name as norm

    cand, origin = cands[rank]
    key, lkey = norm(span.text), norm(lf) if lf else None
    name_key = norm(cand.name) if cand.name else ""

    def exact_ids(s, s_lf, s_cands):
        keys = {norm(s.text)} | ({norm(s_lf)} if s_lf else set())
        return {c.concept_id for c, o in s_cands if o == GENERATED and c.name and norm(c.name) in keys}

    def jac(a, b):
        a, b = set(a.split()), set(b.split())
        return len(a & b) / len(a | b) if a and b else 0.0

    others = [(s, s_lf, s_c) for s, s_lf, s_c in doc_spans if s is not span]
    short = is_short_form(span.text)
    defined = sum(1 for s, _, s_c in others if short and s.label_ == span.label_ and abbreviates(span.text, s.text)
                  and s_c and s_c[0][1] == GENERATED and s_c[0][0].concept_id == cand.concept_id)
    top1 = sum(1 for s, _, s_c in others if s_c and s_c[0][1] == GENERATED and s_c[0][0].concept_id == cand.concept_id)
    exact_other = sum(1 for s, s_lf, s_c in others if cand.concept_id in exact_ids(s, s_lf, s_c))
    pair, total, ccount = ranker.stats.counts(key, cand.concept_id, own)
    lpair, ltotal = ranker.stats.counts(lkey, cand.concept_id, own)[:2] if lkey else (0, 0)
    last = lambda t: t.split()[-1:]  # noqa: E731
    text, alpha = span.text, sum(ch.isalpha() for ch in span.text)
    row = {
        "score": cand.score, "rank_recip": 1 / (1 + rank) if origin == GENERATED else 0.0,
        "gap_top1": cands[0][0].score - cand.score, "exact": bool(name_key) and name_key == key,
        "exact_long": bool(name_key) and name_key == lkey,
        "exact_case": bool(cand.name) and cand.name in (text, lf),
        "token_jaccard": max(jac(key, name_key), jac(lkey or "", name_key)),
        "head_match": bool(name_key) and (last(name_key) == last(key) or (lkey is not None and last(name_key) == last(lkey))),
        "prior": pair / total if total else 0.0, "key_count": math.log1p(total),
        "prior_long": lpair / ltotal if ltotal else 0.0, "concept_count": math.log1p(ccount),
        "has_long": lf is not None, "from_train": origin == TRAINING, "from_doc": origin == DOCUMENT,
        "doc_top1": math.log1p(top1), "doc_exact": math.log1p(exact_other),
        "mention_chars": len(text), "mention_tokens": len(span),
        "short_upper": len(text) <= 6 and alpha > 0 and 2 * sum(ch.isupper() for ch in text) >= alpha,
        "has_digit": any(ch.isdigit() for ch in text),
        "preferred": bool(cand.name) and kb.name_of(cand.concept_id) == cand.name,
        "n_exact": len(exact_ids(span, lf, cands)),
        "doc_abbrev": math.log1p(defined),
        "name_abbrev": short and abbreviates(span.text, cand.name or kb.name_of(cand.concept_id) or ""),
        "exact_variant": bool(name_key) and name_key in {norm(v) for v in spelling_variants(span.text)},
        "exact_cancer": bool(name_key) and name_key in {norm(v) for v in spelling_variants(span.text, "cancer")},
        "dense_cos": 0.0, "dense_rank": 0.0,
    }
    if ranker.encoder is not None:  # the cosine of query and name, and its rank among the span's candidates
        enc = ranker.encoder
        names = [c.name or kb.name_of(c.concept_id) or "" for c, _ in cands]
        cos = [float(enc.embed([lf or text])[0] @ enc.embed([n])[0]) for n in names]
        row["dense_cos"] = cos[rank]
        row["dense_rank"] = 1 / (1 + sum(c > cos[rank] for c in cos) + sum(c == cos[rank] for c in cos[:rank]))
    return numpy.asarray([row[f] for f in FEATURES], dtype=numpy.float32)


@pytest.mark.parametrize("leave_out,encoder", [(False, False), (True, False), (False, True)])
def test_features_match_a_row_by_row_reference(generator, fitted, docs, nlp, leave_out, encoder):
    """The column-wise feature builder against each feature computed from its definition."""
    from spacy_medlink.kb.span_lookup import generator_candidates

    ranker, _ = fitted
    if encoder:
        pytest.importorskip("transformers")
        from .test_encoder import tiny_encoder

        ranker = CandidateRanker(encoder=tiny_encoder())
        ranker.stats = fitted[0].stats
    split = docs[0] if leave_out else [*docs[1], _doc(nlp, *SHORT_FORM)]
    _, per_doc = split_stats(split, generator.kb.resolve)
    spans = [e for d in split for e in d.ents]
    owners = [per_doc[d] for d, doc in enumerate(split) for _ in doc.ents] if leave_out else None
    long_forms = span_long_forms(spans)
    long_forms[0] = "common cold"  # a long form on one span, so the long-form features are exercised
    expanded = ranker.expand(spans, long_forms, generator_candidates(generator, spans, long_forms, k=5), own=owners)
    X = ranker.features(spans, long_forms, expanded, generator, own=owners)
    doc_spans = {}
    for span, lf, cands in zip(spans, long_forms, expanded):
        doc_spans.setdefault(id(span.doc), []).append((span, lf, cands))
    row = 0
    for i, (span, lf, cands) in enumerate(zip(spans, long_forms, expanded)):
        own = owners[i] if owners else None
        for rank in range(len(cands)):
            want = _reference_row(ranker, generator.kb, span, lf, cands, rank, own, doc_spans[id(span.doc)])
            numpy.testing.assert_allclose(X[row], want, rtol=1e-6, err_msg=f"{span.text} / {cands[rank][0]}")
            row += 1
    assert row == len(X) and X[:, FEATURES.index("has_long")].sum() > 0
    assert X[:, FEATURES.index("dense_rank")].any() == encoder
    if not leave_out:  # the short form's features are exercised
        assert X[:, FEATURES.index("doc_abbrev")].sum() > 0 and X[:, FEATURES.index("name_abbrev")].sum() > 0


def test_ranker_learns_the_training_prior(generator, fitted, docs):
    """"cold" is an exact name of two concepts; the training split says which."""
    ranker, report = fitted
    assert report["mentions"] == 9 and ranker.is_trained
    nlp_doc = docs[1][0]
    span = nlp_doc.ents[0]
    generator.ranker = ranker
    try:
        ranked = span_candidates(generator, [span], k=3)[0]
        assert ranked[0].concept_id == "D003139"
        assert all(0.0 <= c.score <= 1.0 for c in ranked)  # probabilities
        assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
        plain = span_candidates(generator, [span], k=3, rank=False)[0]
        assert {c.concept_id for c in plain[:2]} == {"D003139", "D003080"}
    finally:
        generator.ranker = None


@pytest.mark.parametrize("learner,params", [("logistic", {}), ("lightgbm", {"min_data_in_leaf": 1, "num_boost_round": 5})])
def test_ranker_round_trips_without_pickle(generator, docs, learner, params, tmp_path):
    ranker, _ = fit_ranker(generator, docs[0], docs[1], folds=1, learner=learner, params=params)
    rows = mention_rows(ranker, generator, docs[1])
    expected = ranker.predict(rows.X)
    again = CandidateRanker.from_bytes(ranker.to_bytes())
    numpy.testing.assert_allclose(again.predict(rows.X), expected)
    ranker.to_disk(tmp_path / "r")
    numpy.testing.assert_allclose(CandidateRanker.from_disk(tmp_path / "r").predict(rows.X), expected)
    data = ranker.to_dict()
    json.dumps(data)  # JSON-able: no pickled objects inside


def test_generator_carries_its_ranker(generator, fitted, docs, tmp_path):
    ranker, _ = fitted
    rows = mention_rows(ranker, generator, docs[1])
    generator.ranker = ranker
    try:
        generator.to_disk(tmp_path / "kb")
        assert (tmp_path / "kb" / RANKER_DIR / "ranker.msgpack").exists()
        loaded = CandidateGenerator.from_disk(tmp_path / "kb")
        numpy.testing.assert_allclose(loaded.ranker.predict(rows.X), ranker.predict(rows.X))
        assert CandidateGenerator.from_disk(tmp_path / "kb", ranker=False).ranker is None
        assert CandidateGenerator.from_bytes(generator.to_bytes()).ranker is not None
    finally:
        generator.ranker = None
    generator.to_disk(tmp_path / "kb")  # without a ranker: none left behind to load
    assert CandidateGenerator.from_disk(tmp_path / "kb").ranker is None
    assert CandidateGenerator.from_bytes(generator.to_bytes()).ranker is None


def test_cross_fit_needs_the_base_kb(generator, docs):
    with pytest.raises(ValueError, match="base_kb"):
        fit_ranker(generator, docs[0], folds=2)
    ranker, report = fit_ranker(generator, docs[0], base_kb=_base_kb(), folds=2, learner="logistic")
    assert ranker.is_trained and report["fit"] == "cross-fit on train"
    assert report["out_of_fold"]["all"]["n"] == report["mentions"] == 12 and report["left_out"] == {}


def test_unknown_learner_and_stale_features():
    with pytest.raises(ValueError, match="learner"):
        CandidateRanker(learner="forest")
    with pytest.raises(ValueError, match="Unknown ranker features"):
        CandidateRanker(features=["score", "bogus"])
    data = CandidateRanker().to_dict()
    data["cfg"]["features"] = ["score", "bogus"]
    with pytest.raises(ValueError, match="does not compute"):
        CandidateRanker.from_dict(data)


@pytest.mark.parametrize("short,long,expected", [
    ("DEN", "diethylnitrosamine", True), ("PB", "phenobarbital", True), ("mCPP", "m-chlorophenylpiperazine", True),
    ("ND-NMBA", "nondepolarizing neuromuscular blocking agents", True), ("T", "testosterone", True),
    ("ISPH", "isoproterenol", False),  # no "h"
    ("CCNU", "1-(2-chloroethyl)-3-cyclohexyl-1-nitrosourea", False),  # the long form does not start with "c"
    ("PEN", "nitrosamine", False), ("PG", "PG", False), ("Pb", "lead", False),
])
def test_abbreviates(short, long, expected):
    assert abbreviates(short, long) is expected


def test_short_form_takes_the_concepts_of_the_names_it_abbreviates(generator, nlp):
    """"CIS" gets the concept of the cisplatin it abbreviates, though it is the third
    chemical of its doc and only one document candidate is allowed; a ranker
    saved without the abbreviation features keeps its old candidates."""
    from spacy_medlink.kb.span_lookup import generator_candidates

    spans = list(_doc(nlp, *SHORT_FORM).ents)
    long_forms = [None] * len(spans)
    cands = generator_candidates(generator, spans, long_forms, k=5)
    cands[3] = [c for c in cands[3] if c.concept_id != "D002945"]  # as if the KB did not know "CIS"
    for features, found in ((None, True), ([f for f in PLAIN if not f.endswith("_abbrev")], False)):
        ranker = CandidateRanker(doc_candidates=1, features=features)
        expanded = ranker.expand(spans, long_forms, cands)
        assert (("D002945", DOCUMENT) in [(c.concept_id, o) for c, o in expanded[3]]) is found
    X = CandidateRanker().features(spans, long_forms, CandidateRanker(doc_candidates=1).expand(spans, long_forms, cands),
                                   generator)
    assert X[:, FEATURES.index("doc_abbrev")].max() > 0


@pytest.mark.parametrize("text,variants", [
    ("oedema", ["edema"]), ("Anaemia", ["anemia"]), ("pregnenolone sulphate", ["pregnenolone sulfate", "pregnenolone sulphic acid"]),
    ("metrizoate", ["metrizoic acid"]), ("kainic acid", ["kainate"]), ("liver tumours", ["liver tumors", "liver neoplasms"]),
    ("cisplatin", []),
])
def test_spelling_variants(text, variants):
    assert spelling_variants(text) == variants


@pytest.mark.parametrize("text,variants", [
    ("prostate carcinoma", ["prostate cancer"]), ("Prostatic adenocarcinomas", ["prostatic cancers"]),
    ("carcinomatosis", []), ("liver tumours", []),
])
def test_cancer_variants(text, variants):
    assert spelling_variants(text, "cancer") == variants
    assert query_variants(text, ("spelling", "cancer")) == spelling_variants(text) + variants


def test_cancer_variant_finds_the_organs_neoplasms(nlp):
    """"prostate carcinoma" is an exact name of Prostatic Neoplasms through "prostate cancer", for a ranker with exact_cancer only."""
    from spacy_medlink.kb.span_lookup import generator_candidates

    kb = ConceptKB()
    kb.add(Concept("D011471", "Prostatic Neoplasms", ("Prostate Cancer",), ("Disease",)))
    kb.add(Concept("D002277", "Carcinoma", (), ("Disease",)))
    gen = CandidateGenerator(kb)
    span = _doc(nlp, "A prostate carcinoma.", [("prostate carcinoma", "Disease", "D011471")]).ents[0]
    old = CandidateRanker(features=[f for f in PLAIN if f != "exact_cancer"])
    assert CandidateRanker().wants_variants == ("spelling", "cancer") and old.wants_variants == ("spelling",)
    cands = generator_candidates(gen, [span], [None], k=2, variants=CandidateRanker().wants_variants)[0]
    assert cands[0].concept_id == "D011471" and cands[0].name == "Prostate Cancer"
    ranker = CandidateRanker()
    X = ranker.features([span], [None], ranker.expand([span], [None], [cands]), gen)
    assert X[0, FEATURES.index("exact_cancer")] == 1.0 and X[0, FEATURES.index("exact_variant")] == 0.0
    X_old = old.features([span], [None], old.expand([span], [None], [cands]), gen)
    assert X_old[0, FEATURES.index("exact_cancer")] == 0.0


def test_variants_are_queried_for_a_ranker_trained_with_them(nlp):
    """"oedema" finds Edema as an exact name through its variant, only for a ranker that asks for variants."""
    from spacy_medlink.kb.span_lookup import generator_candidates

    kb = ConceptKB()
    kb.add(Concept("D004487", "Edema", (), ("Disease",)))
    kb.add(Concept("D000001", "Oedemeridae bite", (), ("Disease",)))
    gen = CandidateGenerator(kb)
    span = _doc(nlp, "Severe oedema.", [("oedema", "Disease", "D004487")]).ents[0]
    no_variants = [f for f in PLAIN if not f.startswith("exact_") or f == "exact_long" or f == "exact_case"]
    assert CandidateRanker().wants_variants and not CandidateRanker(features=no_variants).wants_variants
    with_variants = generator_candidates(gen, [span], [None], k=2, variants=("spelling",))[0]
    assert with_variants[0].concept_id == "D004487" and with_variants[0].name == "Edema"
    without = generator_candidates(gen, [span], [None], k=2)[0]
    assert all(c.score < with_variants[0].score for c in without if c.concept_id == "D004487")
    ranker = CandidateRanker()
    X = ranker.features([span], [None], ranker.expand([span], [None], [with_variants]), gen)
    assert X[0, FEATURES.index("exact_variant")] == 1.0 and X[0, FEATURES.index("exact")] == 0.0


def test_ranker_trained_on_fewer_features_loads_and_predicts(generator, docs):
    """A ranker saved before a feature was added (its cfg lists fewer) loads and scores with its own columns."""
    old = [f for f in PLAIN if not f.endswith("_abbrev") and f != "exact_variant"]
    ranker, _ = fit_ranker(generator, docs[0], docs[1], folds=1, learner="logistic", features=old)
    again = CandidateRanker.from_bytes(ranker.to_bytes())
    assert again.cfg["features"] == old
    rows = mention_rows(again, generator, docs[1])
    numpy.testing.assert_allclose(again.predict(rows.X), ranker.predict(rows.X))
    assert rows.X.shape[1] == len(FEATURES) and len(again._linear["coef"]) == len(old)


# -- dictionary ------------------------------------------------------------------------
def test_exact_dictionary(generator, docs):
    stats, _ = split_stats(docs[0], generator.kb.resolve)
    dictionary = ExactDictionary(generator, stats)
    spans = [e for d in docs[1] for e in d.ents]
    got = dict(zip((s.text for s in spans), dictionary(spans, span_long_forms(spans))))
    assert got["cold"] == "D003139"  # the training split's choice among two exact names
    assert got["Oldchem"] == "C999999"  # training strings count even for IDs the KB lacks
    assert got["CDDP"] == "D002945"  # a KB name
    assert got["Pb"] == ""  # nothing exact: no guess


# -- composites ----------------------------------------------------------------------------
@pytest.mark.parametrize("text,parts", [
    ("breast and ovarian cancer", ["breast cancer", "ovarian cancer"]),
    ("brain, breast, and prostate cancer", ["brain cancer", "breast cancer", "prostate cancer"]),
    ("breast/ovarian cancer", ["breast cancer", "ovarian cancer"]),
    ("breast and/or ovarian cancer", ["breast cancer", "ovarian cancer"]),
    ("C6 and C7 deficiencies", ["C6 deficiencies", "C7 deficiencies"]),
    ("colorectal adenomas and carcinoma", ["colorectal adenomas", "colorectal carcinoma"]),
    ("spinocerebellar ataxias 1 and 2", ["spinocerebellar ataxias 1", "spinocerebellar ataxias 2"]),
    ("pineal tumours or retinal tumours", ["pineal tumours", "retinal tumours"]),
    ("sporadic breast, brain, prostate and kidney cancer",
     ["sporadic breast cancer", "brain cancer", "prostate cancer", "kidney cancer"]),
    ("male and female breast cancer", ["male breast cancer", "female breast cancer"]),
    ("cisplatin and vincristine", ["cisplatin", "vincristine"]),
    ("renal hamartomas", []),
    ("1,3-bis(2-chloroethyl)-1-nitrosourea", []),
    ("Me(3)Pb", []),
])
def test_coordination_parts(text, parts):
    assert coordination_parts(text) == parts


def test_choose_composite():
    a, b = Candidate("D1", 0.9, "a"), Candidate("D2", 0.8, "b")
    assert choose_composite([Candidate("D3", 0.5, "w")], [[a], [b]]) == Candidate("D1|D2", 0.8, "a | b")
    assert choose_composite([Candidate("D3", 0.85, "w")], [[a], [b]]) is None  # the whole is surer
    assert choose_composite([], [[a], [a]]) is None  # one concept twice is no composite
    assert choose_composite([], [[a], []]) is None
    # the training split's majority for the string overrides the scores either way
    assert choose_composite([Candidate("D3", 0.5, "w")], [[a], [b]], False) is None
    assert choose_composite([Candidate("D3", 0.85, "w")], [[a], [b]], True) == Candidate("D1|D2", 0.8, "a | b")
    assert choose_composite([Candidate("D3", 0.85, "w")], [[a], [a]], True) is None


def test_composite_mention_gets_joined_ids(generator, fitted, nlp):
    ranker, _ = fitted
    doc = _doc(nlp, "Risk of breast and ovarian cancer.", [("breast and ovarian cancer", "Disease", "")])
    generator.ranker = ranker
    try:
        found = span_candidates(generator, list(doc.ents), k=3)[0]
        assert found[0].concept_id == "D001943|D010051"
        assert span_candidates(generator, list(doc.ents), k=3, composites=False)[0][0].concept_id != found[0].concept_id
    finally:
        generator.ranker = None


# -- commands ---------------------------------------------------------------------------------
def _write(docs: Sequence, path):
    DocBin(docs=list(docs), store_user_data=False).to_disk(path)
    return path


def test_ranker_and_benchmark_commands(generator, docs, tmp_path):
    kb_dir = tmp_path / "kb"
    generator.to_disk(kb_dir)
    train = _write(docs[0], tmp_path / "train.spacy")
    dev = _write(docs[1], tmp_path / "dev.spacy")
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "ranker", str(kb_dir), "--train", str(train), "--fit", str(dev),
                                 "--output", str(tmp_path / "report.json"), "--folds", "2", "--learner", "logistic"])
    assert result.exit_code == 0, result.output
    assert CandidateGenerator.from_disk(kb_dir).ranker is not None
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["out_of_fold"]["all"]["n"] == 9
    result = runner.invoke(app, ["kb", "ranker", str(kb_dir), "--train", str(train), "--output", str(tmp_path / "r.json")])
    assert result.exit_code == 2  # neither --base-kb nor --fit
    result = runner.invoke(app, ["benchmark", "linking", str(kb_dir), "--data", str(dev), "--train", str(train),
                                 "--output", str(tmp_path / "bench.json")])
    assert result.exit_code == 0, result.output
    bench = json.loads((tmp_path / "bench.json").read_text())
    counts = bench["gold_mentions"]["counts"]
    assert counts == {"mentions": 9, "nil": 0, "composite": 0, "gold_id_not_in_kb": 1}
    accuracy = bench["gold_mentions"]["accuracy"]
    assert set(accuracy) == {"kb", "ranker", "dictionary"}
    assert accuracy["dictionary"]["all"]["n"] == 9
    assert accuracy["ranker"]["gold_id_not_in_kb"]["n"] == 1


def test_kb_linker_with_ranker_round_trips(generator, fitted, docs, tmp_path):
    ranker, _ = fitted
    generator.ranker = ranker
    try:
        generator.to_disk(tmp_path / "kb")
    finally:
        generator.ranker = None
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("medlink_kb_linker", config={"threshold": 0.5})
    from spacy.training import Example

    linker.initialize(lambda: [Example(docs[1][0].copy(), docs[1][0])], kb_path=tmp_path / "kb")
    doc = docs[1][0].copy()
    doc.ents = [Span(doc, e.start, e.end, label=e.label_) for e in doc.ents]
    out = [(e.kb_id_, e._.medlink_score) for e in linker(doc).ents]
    assert out[0][0] == "D003139" and all(0.0 <= s <= 1.0 for _, s in out)
    again = spacy.blank("en").add_pipe("medlink_kb_linker", config={"threshold": 0.5}).from_bytes(linker.to_bytes())
    doc2 = docs[1][0].copy()
    doc2.ents = [Span(doc2, e.start, e.end, label=e.label_) for e in doc2.ents]
    assert [(e.kb_id_, e._.medlink_score) for e in again(doc2).ents] == out
    # the threshold is a config setting: spacy.load(..., config=...) moves it
    nlp.to_disk(tmp_path / "nlp")
    override = {"components": {"medlink_kb_linker": {"threshold": 0.9}}}
    with pytest.warns(UserWarning, match="threshold = 0.9 from the config, not the 0.5 saved"):
        assert spacy.load(tmp_path / "nlp", config=override).get_pipe("medlink_kb_linker").cfg["threshold"] == 0.9
    assert spacy.load(tmp_path / "nlp").get_pipe("medlink_kb_linker").cfg["threshold"] == 0.5


def _linker_pipeline(generator, docs, tmp_path, kb_name: str) -> None:
    """tmp_path/model: a KB linker pipeline over `generator`, saved as tmp_path/kb_name."""
    from spacy.training import Example

    generator.to_disk(tmp_path / kb_name)
    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_kb_linker")
    nlp.config["initialize"]["components"]["medlink_kb_linker"] = {"kb_path": str(tmp_path / kb_name)}
    nlp.initialize(lambda: [Example(docs[1][0].copy(), docs[1][0])])
    nlp.to_disk(tmp_path / "model")


def test_attach_puts_the_ranker_into_a_trained_pipeline(generator, fitted, docs, tmp_path):
    _linker_pipeline(generator, docs, tmp_path, "plain")
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "attach", str(tmp_path / "model"), str(tmp_path / "plain"), str(tmp_path / "out")])
    assert result.exit_code == 2  # a usage error: that KB has no ranker
    ranker, _ = fitted
    generator.ranker = ranker
    try:
        generator.to_disk(tmp_path / "ranked")
    finally:
        generator.ranker = None
    result = runner.invoke(app, ["kb", "attach", str(tmp_path / "model"), str(tmp_path / "ranked"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert spacy.load(tmp_path / "out").get_pipe("medlink_kb_linker").generator.ranker is not None


def test_attach_whole_swaps_the_kb(generator, docs, tmp_path):
    """--whole: the pipeline links with the attached KB (here one that also holds dev's mentions)."""
    _linker_pipeline(generator, docs, tmp_path, "train_kb")
    kb = _base_kb()
    add_train_mentions(kb, docs[0] + docs[1], "test")
    CandidateGenerator(kb).to_disk(tmp_path / "train_dev_kb")  # no ranker: --whole does not need one
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "attach", str(tmp_path / "model"), str(tmp_path / "train_dev_kb"),
                                 str(tmp_path / "out"), "--whole"])
    assert result.exit_code == 0, result.output

    def pb_top1(path):
        found = spacy.load(path).get_pipe("medlink_kb_linker").generator(["Pb"], k=1)[0]
        return (found[0].concept_id, found[0].score) if found else None

    assert pb_top1(tmp_path / "model") != ("D007854", 1.0)  # "Pb" is no name of the training KB
    assert pb_top1(tmp_path / "out") == ("D007854", 1.0)  # the dev mention is an exact name of the attached one


def test_ranker_with_a_name_encoder(generator, docs, tmp_path):
    """The cosine features come with the encoder, which travels with the ranker (and only then)."""
    pytest.importorskip("transformers")
    from spacy_medlink.kb.encoder import NameEncoder

    from .test_encoder import tiny_encoder

    assert not set(DENSE_FEATURES) & set(CandidateRanker().cfg["features"])  # no encoder: not used
    with pytest.raises(ValueError, match="need a name encoder"):
        CandidateRanker(features=["score", "dense_cos"])
    enc = tiny_encoder()
    only_rank = CandidateRanker(encoder=enc, features=["score", "dense_rank"])
    rows = mention_rows(only_rank, generator, docs[1])
    assert rows.X[:, FEATURES.index("dense_rank")].any()  # computed without dense_cos too
    ranker, _ = fit_ranker(generator, docs[0], docs[1], folds=1, learner="logistic", encoder=enc)
    assert set(DENSE_FEATURES) <= set(ranker.cfg["features"]) and ranker.encoder is not None
    rows = mention_rows(ranker, generator, docs[1])
    assert rows.X[:, FEATURES.index("dense_cos")].any()
    expected = ranker.predict(rows.X)
    again = CandidateRanker.from_bytes(ranker.to_bytes())
    assert isinstance(again.encoder, NameEncoder)
    numpy.testing.assert_allclose(again.predict(mention_rows(again, generator, docs[1]).X), expected, rtol=1e-5)
    generator.ranker = ranker
    try:
        generator.to_disk(tmp_path / "kb")
        loaded = CandidateGenerator.from_disk(tmp_path / "kb")
        assert loaded.ranker.encoder is not None
        span = docs[1][0].ents[1]
        assert span_candidates(loaded, [span])[0][0].concept_id == span_candidates(generator, [span])[0][0].concept_id
        _linker_pipeline(generator, docs, tmp_path, "kb_for_pipeline")  # a pipeline carries it too
    finally:
        generator.ranker = None
    linker = spacy.load(tmp_path / "model").get_pipe("medlink_kb_linker")
    assert linker.generator.ranker.encoder is not None

    def linked(pipe):
        doc = docs[1][2].copy()
        doc.ents = [Span(doc, e.start, e.end, label=e.label_) for e in doc.ents]
        return [(e.kb_id_, round(e._.medlink_score, 2)) for e in pipe(doc).ents]

    again = spacy.blank("en").add_pipe("medlink_kb_linker").from_bytes(linker.to_bytes())
    assert linked(again) == linked(linker) and linked(linker)[0][0] == "D003139"
