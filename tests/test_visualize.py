import spacy
from spacy.tokens import Span

from spacy_medlink.visualize import concept_url, render


def test_concept_urls():
    assert concept_url("D009369") == "https://meshb.nlm.nih.gov/record/ui?ui=D009369"
    assert concept_url("C535662") == "https://meshb.nlm.nih.gov/record/ui?ui=C535662"
    assert concept_url("OMIM:219700") == "https://omim.org/entry/219700"
    assert concept_url("D001943|D010051") == "https://meshb.nlm.nih.gov/record/ui?ui=D001943"
    assert concept_url("") is None and concept_url("CUI:1") is None


def test_rendered_html_links_each_vocabulary():
    nlp = spacy.blank("en")
    doc = nlp("Cisplatin and cystic fibrosis and gout")
    doc.ents = [Span(doc, 0, 1, label="Chemical", kb_id="D002945"), Span(doc, 2, 4, label="Disease", kb_id="OMIM:219700"),
                Span(doc, 5, 6, label="Disease")]
    html = render(doc)
    assert 'href="https://meshb.nlm.nih.gov/record/ui?ui=D002945"' in html
    assert 'href="https://omim.org/entry/219700"' in html
    assert html.count("href=") == 2  # an entity without a concept gets no link
    doc.spans["nested"] = [Span(doc, 2, 4, label="Disease", kb_id="OMIM:219700")]
    assert 'href="https://omim.org/entry/219700"' in render(doc, spans_key="nested")
