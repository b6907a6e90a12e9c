import pytest

from spacy_medlink.kb.abbreviations import abbreviation_map, abbreviation_spans, short_form_ok, spell_out
from spacy_medlink.tokenizer import biomed_nlp


def test_abbreviation_map_real_sentence():
    nlp = biomed_nlp()  # tokenizer only: no parser, no sentence boundaries
    doc = nlp(
        "Familial Mediterranean fever (FMF) is an autosomal recessive disorder characterized by "
        "episodes of fever. Mutations in MEFV cause FMF in most patients with adult-onset "
        "spinal muscular atrophy (SMA)."
    )
    assert not doc.has_annotation("SENT_START")
    abbrevs = abbreviation_map(doc)
    assert abbrevs == {"FMF": "Familial Mediterranean fever", "SMA": "spinal muscular atrophy"}
    assert not doc.has_extension("abbreviations") or doc._.abbreviations == []
    assert abbreviation_map(nlp("No short forms here.")) == {}


def test_hyphenated_short_and_long_forms():
    """scispacy's detector turns away "T-PLL" (three tokens, each under 2 characters) and
    starts "X-linked ..." at "linked"; ours finds both."""
    nlp = biomed_nlp()
    doc = nlp(
        "Patients with sporadic T-cell prolymphocytic leukaemia (T-PLL) were studied. "
        "X-linked dilated cardiomyopathy (XLDCM) is rare; XLDCM and T-PLL differ. "
        "Rats got 5-fluorouracil (5-FU) or 13-cis-retinoic acid (cis-RA)."
    )
    abbrevs = abbreviation_map(doc)
    assert abbrevs["T-PLL"] == "T-cell prolymphocytic leukaemia"
    assert abbrevs["XLDCM"] == "X-linked dilated cardiomyopathy"
    assert abbrevs["5-FU"] == "5-fluorouracil"
    assert abbrevs["cis-RA"] == "13-cis-retinoic acid"  # from the start of the word
    spans = {long.text: [s.start for s in shorts] for long, shorts in abbreviation_spans(doc)}
    assert len(spans["X-linked dilated cardiomyopathy"]) == 2  # the definition and the later use


def test_not_across_an_earlier_bracket_and_not_junk():
    nlp = biomed_nlp()
    doc = nlp("Anterior (ANT-MI) and eight with inferior infarction (INF-MI) were seen. "
              "We gave 100mg/kg (of metformin twice daily) and bis(p-nitrophenyl) phosphate (BNPP) "
              "in N-(2-hydroxypropyl)methacrylamide (HPMA).")
    abbrevs = abbreviation_map(doc)
    assert "INF-MI" not in abbrevs  # S&H finds no M in "and eight with inferior infarction"
    assert "100mg/kg" not in abbrevs  # a digit first, no hyphen: not a short form
    assert abbrevs["BNPP"] == "bis(p-nitrophenyl) phosphate"  # a bracket inside a word stays
    assert abbrevs["HPMA"] == "N-(2-hydroxypropyl)methacrylamide"


def test_nested_short_forms_are_spelled_out():
    nlp = biomed_nlp()
    doc = nlp("Diffuse mesangial sclerosis (DMS) occurs alone: isolated DMS (IDMS). IDMS is rare.")
    abbrevs = abbreviation_map(doc)
    assert abbrevs["DMS"] == "Diffuse mesangial sclerosis"
    assert abbrevs["IDMS"] == "isolated Diffuse mesangial sclerosis"


@pytest.mark.parametrize("text", [
    "Familial Mediterranean fever (FMF) and spinal muscular atrophy (SMA) in patients.",
    "The cyclooxygenase (COX) inhibitor and nitric oxide synthase (NOS) were measured (n = 12).",
    "Angiotensin-converting enzyme (ACE) inhibitors, ACE, and blood pressure (BP).",
])
def test_agrees_with_scispacy_where_it_is_right(text):
    """Where no short form is hyphenated and no long form starts inside a word, the
    definitions are scispacy's."""
    import warnings

    from scispacy.abbreviation import AbbreviationDetector, filter_matches

    nlp = biomed_nlp()
    doc = nlp(text)
    detector = AbbreviationDetector(nlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = detector.find_matches_for(
            filter_matches([(m, s + 1, e - 1) for m, s, e in detector.matcher(doc)], doc), doc)
    ours = abbreviation_spans(doc)
    assert {(l.start, l.end): sorted(s.start for s in ss) for l, ss in theirs} == \
        {(l.start, l.end): sorted(s.start for s in ss) for l, ss in ours}
    assert ours


def test_short_form_test():
    nlp = biomed_nlp()
    ok = lambda text: short_form_ok(nlp.make_doc(text)[:])  # noqa: E731
    assert ok("FMF") and ok("SMA")
    assert ok("T-PLL") and ok("5-FU") and ok("cis-RA")
    assert not ok("Dex-") and not ok("100mg/kg") and not ok("A") and not ok("12") and not ok("ABCDEFGHIJK")


@pytest.mark.parametrize("text,want", [
    ("anti-tumor necrosis factor (TNF) therapy", {"TNF": "tumor necrosis factor"}),  # a word is not a locant
    ("Rats got [(3)H]saxitoxin (STX) today", {"STX": "saxitoxin"}),
    ("Proteinase 3-antineutrophil cytoplasmic antibody-(PR3-ANCA) was raised",
     {"PR3-ANCA": "Proteinase 3-antineutrophil cytoplasmic antibody"}),  # no trailing hyphen
    ("the GABA(A) receptor (GABA(A) binding) and 5-min (5-min) later", {}),  # brackets; long form = short form
    ("Mucopolysaccharidosis IVA (MPS IVA; OMIM # 253000) and MPS IVA", {}),
])
def test_review_cases(text, want):
    assert abbreviation_map(biomed_nlp()(text)) == want


def test_nesting_does_not_depend_on_order_and_words_are_not_repeated():
    nlp = biomed_nlp()
    doc = nlp("diffuse mesangial sclerosis (DMS). familial IDMS (FIDMS). isolated DMS (IDMS).")
    assert abbreviation_map(doc)["FIDMS"] == "familial isolated diffuse mesangial sclerosis"
    assert spell_out("BFLS syndrome", {"BFLS": "Borjeson-Forssman-Lehmann syndrome"}) == \
        "Borjeson-Forssman-Lehmann syndrome"
    assert spell_out("antibody (ANCA)--associated", {"ANCA": "antineutrophil cytoplasmic antibody"}) == \
        "antibody--associated"
    assert spell_out("no short form here", {"GI": "gastrointestinal"}) == "no short form here"
