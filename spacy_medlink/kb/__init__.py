"""Knowledge-base layer shared by every component: concepts, names, candidates."""
from .ids import NO_CONCEPT, normalize_kb_id, split_kb_id  # noqa: F401
from .concept_kb import Concept, ConceptKB  # noqa: F401
from .candidates import Candidate, CandidateGenerator, normalize_name  # noqa: F401
from .abbreviations import abbreviation_map  # noqa: F401
from .builders import add_train_mentions, build_kb, read_medic, read_mesh_descriptors, read_mesh_supplementary  # noqa: F401
