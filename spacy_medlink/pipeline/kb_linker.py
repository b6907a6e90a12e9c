"""medlink_kb_linker: ground the entities another component found in the shared KB.

No learning: each entity gets the top-1 concept of the KB candidate generator
(exact normalized match first, then character n-gram TF-IDF), restricted to
concepts whose type is the entity's label, with short forms defined in the
document ("FMF") looked up by their long form. It is the normalization floor
every learned component must beat, and the fallback those components use for
concepts they never saw in training.
"""
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

import srsly
from spacy import util
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples
from spacy.vocab import Vocab

from ..scoring import NEN_SCORE_WEIGHTS
from ._config_settings import trained_cfg
from .extensions import install_span_extensions

if TYPE_CHECKING:
    # spaCy imports every entry-point factory module whenever it creates a
    # Language, so the KB stack (scipy, scikit-learn, scispacy) is imported
    # only when a linker actually loads or uses a KB.
    from ..kb.candidates import CandidateGenerator
    from ..kb.names import Candidate

DEFAULT_KB_LINKER_SCORER = {"@scorers": "medlink.nen_scorer.v1"}


@Language.factory(
    "medlink_kb_linker",
    assigns=["doc.ents", "span._.medlink_score", "span._.medlink_candidates"],
    requires=["doc.ents"],
    default_config={
        "k": 10,
        "threshold": 0.0,
        "use_abbreviations": True,
        "overwrite": True,
        "type_map": {},
        "scorer": DEFAULT_KB_LINKER_SCORER,
    },
    default_score_weights=NEN_SCORE_WEIGHTS,
)
def make_kb_linker(
    nlp: Language,
    name: str,
    k: int,
    threshold: float,
    use_abbreviations: bool,
    overwrite: bool,
    type_map: Dict[str, str],
    scorer: Optional[Callable],
) -> "KBLinker":
    """Link entities to the KB's top-1 candidate.

    k (int): candidates kept in ``span._.medlink_candidates``.
    threshold (float): a top-1 score below this leaves ``kb_id_`` empty.
    use_abbreviations (bool): look up document-defined short forms by their long form.
    overwrite (bool): replace IDs already on the entities (else fill empty ones only).
    type_map (Dict[str, str]): entity label -> KB type, where they differ;
        labels absent from the map are used as they are.
    """
    return KBLinker(
        nlp.vocab,
        name=name,
        k=k,
        threshold=threshold,
        use_abbreviations=use_abbreviations,
        overwrite=overwrite,
        type_map=type_map,
        scorer=scorer,
    )


class KBLinker(Pipe):
    """Top-1 candidate linker over a ConceptKB. The KB ships inside the pipeline."""

    def __init__(
        self,
        vocab: Vocab,
        name: str = "medlink_kb_linker",
        *,
        k: int = 10,
        threshold: float = 0.0,
        use_abbreviations: bool = True,
        overwrite: bool = True,
        type_map: Optional[Dict[str, str]] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        install_span_extensions()
        self.vocab = vocab
        self.name = name
        self.cfg: Dict[str, Any] = {
            "k": k,
            "threshold": threshold,
            "use_abbreviations": use_abbreviations,
            "overwrite": overwrite,
            "type_map": dict(type_map or {}),
        }
        self.scorer = scorer
        self.generator: Optional["CandidateGenerator"] = None

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        kb_path: Optional[Path] = None,
    ) -> None:
        """Load the KB and its candidate index, built by `spacy_medlink kb build`.

        kb_path (Path): the folder written by the `kb build` command.
        """
        validate_get_examples(get_examples, "KBLinker.initialize")
        if kb_path is None:
            raise ValueError(
                f"[{self.name}] needs a KB: set [initialize.components.{self.name}] "
                "kb_path to a folder made by `python -m spacy_medlink kb build`."
            )
        from ..kb.candidates import CandidateGenerator

        self.generator = CandidateGenerator.from_disk(Path(kb_path))

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in util.minibatch(stream, size=batch_size):
            self.set_annotations(docs, self.predict(docs))
            yield from docs

    def _require_generator(self) -> "CandidateGenerator":
        if self.generator is None:
            raise ValueError(Errors.E109.format(name=self.name))
        return self.generator

    def predict(self, docs: Sequence[Doc]) -> List[List[List["Candidate"]]]:
        """Candidates for every entity of every doc, in one batched lookup."""
        from ..kb.span_lookup import span_candidates

        spans = [ent for doc in docs for ent in doc.ents]
        found = iter(
            span_candidates(
                self._require_generator(),
                spans,
                k=self.cfg["k"],
                type_map=self.cfg["type_map"],
                use_abbreviations=self.cfg["use_abbreviations"],
            )
        )
        return [list(islice(found, len(doc.ents))) for doc in docs]

    def set_annotations(self, docs: Sequence[Doc], candidates: List[List[List["Candidate"]]]) -> None:
        threshold = self.cfg["threshold"]
        for doc, doc_cands in zip(docs, candidates):
            ents = []
            for ent, cands in zip(doc.ents, doc_cands):
                kb_id = ent.kb_id_
                if self.cfg["overwrite"] or not kb_id:
                    kb_id = cands[0].concept_id if cands and cands[0].score >= threshold else ""
                new = Span(doc, ent.start, ent.end, label=ent.label, kb_id=kb_id)
                ents.append(new)
            doc.ents = ents
            for ent, cands in zip(doc.ents, doc_cands):
                ent._.medlink_score = float(cands[0].score) if cands else None
                ent._.medlink_candidates = [[c.concept_id, float(c.score)] for c in cands]

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """Scores with IDs resolved through this linker's KB (alt IDs -> primary)."""
        if self.scorer is None:
            return {}
        kwargs.setdefault("id_resolver", self._require_generator().kb.resolve)
        return self.scorer(examples, **kwargs)

    # serialization: the KB and index travel with the pipeline
    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = util.ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        self._require_generator().to_disk(path / "kb")

    def from_disk(self, path, *, exclude=tuple()) -> "KBLinker":
        path = util.ensure_path(path)
        from ..kb.candidates import CandidateGenerator

        self._load_cfg(srsly.read_json(path / "cfg"))
        self.generator = CandidateGenerator.from_disk(path / "kb")
        return self

    def _load_cfg(self, saved: Dict[str, Any]) -> None:
        # every setting is a config argument: the config (with any override given to
        # spacy.load) decides; the saved cfg fills only keys the config lacks
        self.cfg.update(trained_cfg(self.name, self.cfg, saved, self.cfg))

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return srsly.msgpack_dumps({"cfg": self.cfg, "kb": self._require_generator().to_bytes()})

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "KBLinker":
        from ..kb.candidates import CandidateGenerator

        data = srsly.msgpack_loads(bytes_data)
        self._load_cfg(data["cfg"])
        self.generator = CandidateGenerator.from_bytes(data["kb"])
        return self

