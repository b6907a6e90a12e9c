from spacy_medlink.kb.abbreviations import abbreviation_map
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
