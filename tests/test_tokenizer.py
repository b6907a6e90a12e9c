import json
import subprocess
import sys

import pytest
import spacy

from spacy_medlink.tokenizer import biomed_nlp


@pytest.fixture(scope="module")
def nlp():
    return biomed_nlp()


def words(nlp, text):
    return [t.text for t in nlp.make_doc(text)]


@pytest.mark.parametrize(
    "text,expected",
    [
        # brackets glued to a word, then a hyphen: the mention is "CYP"
        ("(CYP)-induced", ["(", "CYP", ")", "-", "induced"]),
        ("[Na]o", ["[", "Na", "]", "o"]),
        ("K(Na)", ["K", "(", "Na", ")"]),
        # ions: the mention is "Na", "K", "Ca"
        ("Na+/K+-ATPase", ["Na", "+", "/", "K", "+", "-", "ATPase"]),
        ("Ca2+ overload", ["Ca", "2+", "overload"]),
        ("Ca+2 ATPase", ["Ca", "+", "2", "ATPase"]),
        # hyphens next to digits and dangling hyphens
        ("xenon-133", ["xenon", "-", "133"]),
        ("digitalis- and", ["digitalis", "-", "and"]),
        ("(+)-propranolol", ["(", "+", ")", "-", "propranolol"]),
        ("beta-catenin-stabilizing", ["beta", "-", "catenin", "-", "stabilizing"]),
        ("5-FU", ["5", "-", "FU"]),
        # sentence-final period after a capital, an element symbol, a subtype
        ("vitamin D.", ["vitamin", "D", "."]),
        ("with Co.", ["with", "Co", "."]),
        ("type Ia.", ["type", "Ia", "."]),
        ("(n = 8).", ["(", "n", "=", "8", ")", "."]),
        ("lithium=0.85", ["lithium", "=", "0.85"]),
        ("glucose.4. Both", ["glucose", ".", "4", ".", "Both"]),
    ],
)
def test_biomed_splits(nlp, text, expected):
    assert words(nlp, text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        # abbreviations keep their period, "CD4+" and numbers stay whole
        ("in the U.S. by Dr. Smith et al.", ["in", "the", "U.S.", "by", "Dr.", "Smith", "et", "al."]),
        ("see Fig. 2, e.g. CD4+ cells", ["see", "Fig.", "2", ",", "e.g.", "CD4", "+", "cells"]),
        ("3.5 mg/kg 25%", ["3.5", "mg", "/", "kg", "25", "%"]),
        ("http://www.ncbi.nlm.nih.gov/", ["http://www.ncbi.nlm.nih.gov/"]),
    ],
)
def test_biomed_keeps(nlp, text, expected):
    assert words(nlp, text) == expected


def test_default_tokenizer_misaligns_what_ours_aligns(nlp):
    text = "lophosphamide (CYP)-induced cystitis"
    start = text.index("CYP")
    assert spacy.blank("en").make_doc(text).char_span(start, start + 3) is None
    assert nlp.make_doc(text).char_span(start, start + 3).text == "CYP"


def test_config_names_registered_tokenizer(nlp):
    assert nlp.config["nlp"]["tokenizer"]["@tokenizers"] == "medlink.BiomedTokenizer.v1"


def test_round_trip_in_fresh_process(nlp, tmp_path):
    text = "Na+/K+-ATPase in (CYP)-induced cystitis; vitamin D. Ca2+ (n = 8). See Fig. 2 in the U.S."
    nlp.to_disk(tmp_path / "model")
    script = (
        "import json, sys, spacy\n"
        "nlp = spacy.load(sys.argv[1])\n"
        "print(json.dumps([t.text for t in nlp(sys.argv[2])]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model"), text],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == words(nlp, text)
