"""What the vocabulary readers share: the entity types MeSH's trees give, and
reading a (gzipped) text file line by line."""
import gzip
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:
    from ..concept_kb import Concept, ConceptKB

PathLike = Union[str, Path]
DISEASE = "Disease"
CHEMICAL = "Chemical"
MEDIC_COLUMNS = 9
MESH_DESC_COLUMNS = 5
MESH_SUPP_COLUMNS = 4
# The one known malformed SCR row (stray quote, embedded TAB in its synonyms).
KNOWN_MALFORMED_SCR = {"C483025"}


def open_lines(path: PathLike) -> Iterator[str]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf8") as f:  # type: ignore[operator]
        yield from f


def split_values(field: str) -> List[str]:
    return [v.strip() for v in field.split("|") if v.strip()]


def mesh_tree_types(tree_numbers: Iterable[str]) -> Tuple[str, ...]:
    """Entity types of a MeSH descriptor from its tree numbers."""
    types = []
    trees = list(tree_numbers)
    if any(t.startswith("C") or t.startswith("F03") for t in trees):
        types.append(DISEASE)
    if any(t.startswith("D") for t in trees):
        types.append(CHEMICAL)
    return tuple(types)


def keep_types(types: Tuple[str, ...], allowed: Optional[Sequence[str]]) -> Tuple[str, ...]:
    return tuple(t for t in types if allowed is None or t in allowed)



def add_typed_concept(kb: "ConceptKB", concept: "Concept", stats: Counter) -> None:
    """Add a MeSH concept to `kb`, counting it and its synonyms overall and per type."""
    kb.add(concept)
    stats["concepts"] += 1
    stats["synonyms"] += len(concept.synonyms)
    for t in concept.types or ("(untyped)",):
        stats[f"concepts {t}"] += 1
        stats[f"synonyms {t}"] += len(concept.synonyms)


def format_counts(stats: Counter) -> str:
    """One line of a reader's counts, for the build log."""
    return ", ".join(f"{k} {v}" for k, v in stats.items())
