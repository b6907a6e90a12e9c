"""What the weightless pipes that rewrite doc.ents after a recognizer share
(`medlink_abbreviations`, `medlink_coordinations`): no model, settings in
``cfg`` (the config holds them), `predict` then `set_annotations`, so `tune`
can sweep the settings like a trained pipe's."""
from typing import Any, Callable, Dict, Iterable, Optional

from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.training import Example

from .extensions import install_span_extensions


class RulePipe(Pipe):
    def __init__(self, vocab, name: str, cfg: Dict[str, Any], scorer: Optional[Callable] = None) -> None:
        install_span_extensions()
        self.vocab = vocab
        self.name = name
        self.model = None
        self.scorer = scorer
        self.cfg: Dict[str, Any] = dict(cfg)

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        pass
