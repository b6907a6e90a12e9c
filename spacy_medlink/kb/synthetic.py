"""Synthetic vocabulary files in the official formats, at the real files' sizes.

The readers of kb/sources must stream: the NLM's `desc2025.xml` is about
300 MB, `supp2025.xml` holds some 320,000 records and UMLS' English
`MRCONSO.RRF` about 8 million rows. The real files cannot be staged here
(UMLS needs a licence, MeSH XML is too large to fetch), so memory and speed
are measured on files generated to the same DTD / column layout, with the
same record counts and about the same bytes per record. Names are made of
random syllables, words, digits and hyphens shaped like disease, chemical,
organism and procedure names, so that the candidate index built from them
has a realistic vocabulary of character n-grams.

Every generator is deterministic for its seed (`random.Random` seeded with a
string) and writes record by record through a buffered file: none holds its
output in memory. Full-size record counts follow MeSH 2024 (30,764
descriptors, 323,304 SCRs, as in shared/data/mesh) and an 8-million-row
English MRCONSO; `scale` shrinks them all alike.
"""
import gzip
import random
from pathlib import Path
from typing import IO, Dict, Iterator, List, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import escape

PathLike = Union[str, Path]

FULL_DESCRIPTORS = 30_764
FULL_SUPPLEMENTALS = 323_304
FULL_UMLS_ENGLISH_ROWS = 8_000_000
# desc2025.xml: about 300 MB for about 30,800 records. Most of a record's bytes
# are its AllowableQualifiersList, which pads each record to its drawn size.
DESCRIPTOR_BYTES = 9_750
NON_ENGLISH_SHARE = 0.3  # of all MRCONSO rows
SUPPRESSED_SHARE = 0.06  # of English MRCONSO rows: SUPPRESS O, E or Y
BUFFER = 1 << 20

# -- names -----------------------------------------------------------------------------

_ONSETS = ("b", "c", "ch", "cl", "cr", "d", "dr", "f", "fl", "g", "gl", "gr", "h", "k", "l", "m", "n", "p",
           "ph", "pr", "qu", "r", "s", "sp", "st", "t", "th", "tr", "v", "x", "z", "br", "")
_VOWELS = ("a", "e", "i", "o", "u", "y", "ae", "ia", "io", "ou", "ei")
_CODAS = ("", "", "", "n", "r", "l", "s", "x", "m", "t", "ct", "nd", "ph")
_CHEM_PREFIXES = ("methyl", "ethyl", "propyl", "butyl", "hydroxy", "amino", "chloro", "fluoro", "bromo", "nitro",
                  "oxo", "dihydro", "tetrahydro", "acetyl", "benzyl", "phenyl", "cyclo", "thio", "carboxy", "iso")
_CHEM_SUFFIXES = ("ine", "ol", "ide", "ate", "one", "ane", "ene", "amide", "azole", "mycin", "cillin", "statin",
                  "pril", "sartan", "mab", "nib", "olol", "azepam", "oxacin", "vir", "ase", "in", "ium")
_SALTS = ("hydrochloride", "sodium", "sulfate", "acetate", "citrate", "maleate", "phosphate", "mesylate",
          "potassium", "tartrate")
_DIS_SUFFIXES = ("itis", "oma", "osis", "pathy", "emia", "algia", "plasia", "trophy", "uria", "ectasia",
                 "sclerosis", "carcinoma", "sarcoma", "dysplasia", "penia")
_ORGANS = ("hepato", "nephro", "cardio", "neuro", "myo", "osteo", "gastro", "dermato", "pneumo", "encephalo",
           "arthro", "angio", "cysto", "lympho", "myelo", "retino", "oculo", "spino", "cerebello", "entero")
_ADJECTIVES = ("Acute", "Chronic", "Familial", "Congenital", "Hereditary", "Juvenile", "Adult-Onset",
               "Autosomal Dominant", "Autosomal Recessive", "X-Linked", "Primary", "Secondary", "Malignant",
               "Benign", "Idiopathic", "Progressive", "Infantile", "Early-Onset", "Late-Onset", "Neonatal")
_DIS_HEADS = ("Syndrome", "Disease", "Disorder", "Deficiency", "Dystrophy", "Anomaly", "Atrophy", "Ataxia",
              "Neuropathy", "Cardiomyopathy", "Anemia", "Epilepsy", "Carcinoma", "Lymphoma", "Leukemia")
_SPECIES = ("human", "mouse", "rat", "Drosophila", "zebrafish", "yeast", "bovine", "chicken", "Arabidopsis",
            "E coli")
_GENERIC_HEADS = ("measurement", "procedure", "finding", "assessment", "structure", "observation", "therapy",
                  "examination", "level", "specimen", "injection", "implant", "biopsy", "screening")
_GENERIC_TAILS = ("(finding)", "(procedure)", "(body structure)", "(disorder)", "(substance)",
                  "[Ambiguous]", "NOS", "(qualifier value)", "", "", "", "")
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
_GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "kappa", "lambda", "omega", "sigma", "theta")


class NameGenerator:
    """Biomedical-looking names from a seeded word pool.

    Words are drawn once (`pool` of them, 2 to 4 syllables); names combine
    them with the affixes, eponyms, digits, Greek letters and hyphens that
    real disease and chemical names carry, so their character n-grams are
    as varied as a vocabulary's.
    """

    def __init__(self, rng: random.Random, pool: int = 40_000) -> None:
        self.rng = rng
        words = set()
        while len(words) < pool:
            n = rng.choice((2, 2, 3, 3, 3, 4))
            words.add("".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n)))
        self.words: List[str] = sorted(words)
        self.eponyms: List[str] = [w.capitalize() for w in self.words[: pool // 8]]

    def word(self) -> str:
        return self.rng.choice(self.words)

    def disease(self) -> str:
        r, w = self.rng, self.word
        form = r.randrange(9)
        if form == 0:
            return f"{r.choice(_ORGANS).capitalize()}{w()}{r.choice(_DIS_SUFFIXES)}"
        if form == 1:
            return f"{r.choice(_ADJECTIVES)} {r.choice(_ORGANS)}{r.choice(_DIS_SUFFIXES)}"
        if form == 2:
            return f"{r.choice(self.eponyms)} {r.choice(_DIS_HEADS)}"
        if form == 3:
            return f"{r.choice(self.eponyms)}-{r.choice(self.eponyms)} {r.choice(_DIS_HEADS)}"
        if form == 4:
            return f"{w().capitalize()} {r.choice(_DIS_HEADS)}, Type {r.randint(1, 12)}{r.choice(('', '', 'A', 'B'))}"
        if form == 5:
            return f"{r.choice(_DIS_HEADS)} {r.choice(_ROMAN)}, {r.choice(_ADJECTIVES)}"
        if form == 6:
            return f"{w().capitalize()}{r.choice(_DIS_SUFFIXES)} {r.randint(1, 40)}"
        if form == 7:
            return f"{r.choice(_ADJECTIVES)} {w()}{r.choice(_DIS_SUFFIXES)} of the {r.choice(_ORGANS)}{w()}"
        return f"{w().capitalize()} {w()}{r.choice(_DIS_SUFFIXES)}"

    def chemical(self) -> str:
        r, w = self.rng, self.word
        form = r.randrange(10)
        if form == 0:
            return f"{r.randint(1, 9)}-{r.choice(_CHEM_PREFIXES)}{w()}{r.choice(_CHEM_SUFFIXES)}"
        if form == 1:
            return f"{w()}{r.choice(_CHEM_SUFFIXES)}"
        if form == 2:
            return f"{w()}{r.choice(_CHEM_SUFFIXES)} {r.choice(_SALTS)}"
        if form == 3:
            return f"N-{r.choice(_CHEM_PREFIXES)}-{w()}{r.choice(_CHEM_SUFFIXES)}"
        if form == 4:
            return f"{w().upper()[:r.randint(3, 5)]}{r.randint(1, 30)} protein, {r.choice(_SPECIES)}"
        if form == 5:
            return (f"{r.randint(1, 6)},{r.randint(2, 9)}-di{r.choice(_CHEM_PREFIXES)}-"
                    f"{r.choice(_CHEM_PREFIXES)}{w()}{r.choice(_CHEM_SUFFIXES)}")
        if form == 6:
            return f"{w()[:2].upper()}-{r.randint(100, 999_999)}"
        if form == 7:
            return f"{w().capitalize()} {r.choice(_GREEK)}-{r.randint(1, 9)} Receptor"
        if form == 8:
            return f"{r.choice(_GREEK)}-{w()}{r.choice(_CHEM_SUFFIXES)}"
        return f"{w().capitalize()} {w()}{r.choice(_CHEM_SUFFIXES)}"

    def organism(self) -> str:
        r = self.rng
        genus = self.word().capitalize()
        if r.random() < 0.3:
            return f"{genus} {self.word()} {r.choice(('subsp.', 'var.', 'strain'))} {self.word()}{r.randint(1, 999)}"
        return f"{genus} {self.word()}"

    def generic(self) -> str:
        r = self.rng
        head = f"{self.word().capitalize()} {r.choice(_GENERIC_HEADS)}"
        if r.random() < 0.4:
            head = f"{head} of {r.choice(_ORGANS)}{self.word()}"
        tail = r.choice(_GENERIC_TAILS)
        return f"{head} {tail}" if tail else head

    def of_kind(self, kind: str) -> str:
        return {"disease": self.disease, "chemical": self.chemical, "organism": self.organism}.get(
            kind, self.generic)()

    def variant(self, name: str, kind: str) -> str:
        """An entry term of `name`: inverted, abbreviated, respelled or another name altogether."""
        r = self.rng
        form = r.randrange(6)
        words = name.split(" ")
        if form == 0 and len(words) > 1:
            return f"{' '.join(words[1:])}, {words[0]}"
        if form == 1:
            letters = "".join(w[0] for w in words if w[:1].isalpha()).upper()
            return letters + (str(r.randint(1, 9)) if len(letters) < 3 else "")
        if form == 2:
            return name.replace("-", " ") if "-" in name else name.lower()
        if form == 3 and kind == "chemical":
            return f"{name} {r.choice(_SALTS)}"
        return self.of_kind(kind)

    def foreign(self, name: str, lat: str) -> str:
        """A non-English string for MRCONSO: accented, Cyrillic or Japanese forms of a name."""
        r = self.rng
        if lat == "RUS":
            table = str.maketrans("abcdeiklmnoprstuxyz", "абцдеиклмнопрстухыз")
            return name.lower().translate(table)
        if lat == "JPN":
            return "".join(chr(0x30A1 + (ord(ch) * 7) % 86) for ch in name if ch.isalpha())[:24] or "ア"
        words = name.split(" ")
        head = {"SPA": "enfermedad de", "POR": "doença de", "FRE": "maladie de", "ITA": "malattia di",
                "GER": "Krankheit", "DUT": "ziekte van", "CZE": "nemoc"}.get(lat, "")
        accented = " ".join(w.replace("e", "é", 1) if r.random() < 0.3 else w for w in words)
        return f"{head} {accented}".strip() if r.random() < 0.4 else accented


# -- MeSH XML --------------------------------------------------------------------------

# Tree letters with their share of descriptors (MeSH 2024: 10,541 in tree D,
# 5,155 in C or F03, about 3,700 organisms in B).
_TREES = (("A", 0.06), ("B", 0.12), ("C", 0.15), ("D", 0.34), ("E", 0.09), ("F", 0.04), ("G", 0.08),
          ("H", 0.015), ("I", 0.02), ("J", 0.02), ("K", 0.01), ("L", 0.015), ("M", 0.01), ("N", 0.06),
          ("V", 0.005), ("Z", 0.005))
_TREE_KIND = {"C": "disease", "D": "chemical", "B": "organism"}
# the 76 MeSH qualifiers: names of the same shape (lower case, '&' in a few)
_QUALIFIER_WORDS = ("administration & dosage", "adverse effects", "analysis", "anatomy & histology",
                    "antagonists & inhibitors", "biosynthesis", "blood", "chemistry", "classification",
                    "complications", "congenital", "diagnosis", "drug effects", "epidemiology", "etiology",
                    "genetics", "history", "immunology", "metabolism", "methods", "microbiology", "mortality",
                    "pathology", "pharmacology", "physiology", "prevention & control", "radiation effects",
                    "surgery", "therapeutic use", "therapy", "toxicity", "ultrastructure", "urine")
_RELATIONS = ("NRW", "BRD", "REL")
_LEXICAL_TAGS = ("NON", "NON", "NON", "ABB", "ACR", "EPO", "LAB", "NAM", "TRD")


def _date(tag: str, rng: random.Random, indent: str, first: int = 1960, last: int = 2024) -> str:
    return (f"{indent}<{tag}>\n{indent} <Year>{rng.randint(first, last)}</Year>\n"
            f"{indent} <Month>{rng.randint(1, 12):02d}</Month>\n{indent} <Day>{rng.randint(1, 28):02d}</Day>\n"
            f"{indent}</{tag}>\n")


def _sentence(names: NameGenerator, words: int) -> str:
    """Scope-note prose: filler words with a few names in capitals, as MeSH cross-references are."""
    r = names.rng
    out = []
    for _ in range(words):
        x = r.random()
        out.append(names.word().upper() if x < 0.05 else names.word() if x < 0.5 else
                   r.choice(("the", "of", "and", "in", "a", "by", "with", "to", "that", "is", "from", "or")))
    text = " ".join(out)
    return text[:1].upper() + text[1:] + "."


def _terms(names: NameGenerator, kind: str, strings: Sequence[str], preferred_concept: bool,
           record_name: Optional[str], next_term: List[int], indent: str) -> str:
    r = names.rng
    parts = [f"{indent}<TermList>\n"]
    for i, string in enumerate(strings):
        pref = "Y" if i == 0 else "N"
        rec = "Y" if (preferred_concept and i == 0 and string == record_name) else "N"
        next_term[0] += r.randint(1, 9)
        parts.append(
            f'{indent} <Term  ConceptPreferredTermYN="{pref}"  IsPermutedTermYN="N"  '
            f'LexicalTag="{r.choice(_LEXICAL_TAGS)}"  RecordPreferredTermYN="{rec}">\n'
            f"{indent}  <TermUI>T{next_term[0]:06d}</TermUI>\n"
            f"{indent}  <String>{escape(string)}</String>\n"
            + _date("DateCreated", r, indent + "  ", 1990)
            + f"{indent}  <ThesaurusIDlist>\n"
            + "".join(f"{indent}   <ThesaurusID>{r.choice(('NLM', 'FDA SRS', 'UNK', 'NLM', 'CAS'))} "
                      f"({r.randint(1970, 2024)})</ThesaurusID>\n" for _ in range(r.randint(1, 3)))
            + f"{indent}  </ThesaurusIDlist>\n{indent} </Term>\n")
    parts.append(f"{indent}</TermList>\n")
    return "".join(parts)


def _concepts(names: NameGenerator, kind: str, name: str, n_extra: int, next_concept: List[int],
              next_term: List[int], scope_words: int, indent: str,
              variants: Sequence[int] = (0, 0, 1, 1, 2, 3)) -> Tuple[str, int]:
    """A record's ConceptList: the preferred concept first (its first term the record's name);
    each concept has a number of entry terms drawn from `variants`."""
    r = names.rng
    parts = [f"{indent}<ConceptList>\n"]
    n_terms = 0
    first_ui = ""
    seen = set()  # a string is a term of one concept of a record only
    for c in range(1 + n_extra):
        next_concept[0] += r.randint(1, 5)
        ui = f"M{next_concept[0]:07d}"
        first_ui = first_ui or ui
        first = name if c == 0 else names.variant(name, kind)
        strings = [first] + [names.variant(first, kind) for _ in range(r.choice(variants))]
        strings = [s for s in dict.fromkeys(strings) if s and s not in seen]
        if not strings:
            continue
        head = strings[0]
        seen.update(strings)
        n_terms += len(strings)
        body = [f'{indent} <Concept PreferredConceptYN="{"Y" if c == 0 else "N"}">\n',
                f"{indent}  <ConceptUI>{ui}</ConceptUI>\n",
                f"{indent}  <ConceptName>\n{indent}   <String>{escape(head)}</String>\n{indent}  </ConceptName>\n"]
        if kind == "chemical" and r.random() < 0.6:
            body.append(f"{indent}  <CASN1Name>{escape(names.chemical())}, {r.randint(1, 9)}-"
                        f"({escape(names.chemical())})-</CASN1Name>\n")
            body.append(f"{indent}  <RegistryNumber>{r.randint(10, 99999)}-{r.randint(10, 99)}-"
                        f"{r.randint(0, 9)}</RegistryNumber>\n")
        if c == 0 and scope_words:
            body.append(f"{indent}  <ScopeNote>{escape(_sentence(names, scope_words))}\n{indent}  </ScopeNote>\n")
        if c > 0:
            body.append(f"{indent}  <ConceptRelationList>\n"
                        f'{indent}   <ConceptRelation RelationName="{r.choice(_RELATIONS)}">\n'
                        f"{indent}    <Concept1UI>{first_ui}</Concept1UI>\n"
                        f"{indent}    <Concept2UI>{ui}</Concept2UI>\n"
                        f"{indent}   </ConceptRelation>\n{indent}  </ConceptRelationList>\n")
        body.append(_terms(names, kind, strings, c == 0, name, next_term, indent + "  "))
        body.append(f"{indent} </Concept>\n")
        parts.extend(body)
    parts.append(f"{indent}</ConceptList>\n")
    return "".join(parts), n_terms


def _descriptor_ref(ui: str, name: str, indent: str) -> str:
    return (f"{indent}<DescriptorReferredTo>\n{indent} <DescriptorUI>{ui}</DescriptorUI>\n"
            f"{indent} <DescriptorName>\n{indent}  <String>{escape(name)}</String>\n{indent} </DescriptorName>\n"
            f"{indent}</DescriptorReferredTo>\n")


def _qualifier(i: int, indent: str) -> str:
    word = _QUALIFIER_WORDS[i % len(_QUALIFIER_WORDS)]
    return (f"{indent}<AllowableQualifier>\n{indent} <QualifierReferredTo>\n"
            f"{indent}  <QualifierUI>Q{i * 37 + 8:06d}</QualifierUI>\n"
            f"{indent}  <QualifierName>\n{indent}   <String>{escape(word)}</String>\n{indent}  </QualifierName>\n"
            f"{indent} </QualifierReferredTo>\n"
            f"{indent} <Abbreviation>{word[:2].upper()}</Abbreviation>\n{indent}</AllowableQualifier>\n")


_QUALIFIERS = [_qualifier(i, "   ") for i in range(76)]


class _Descriptor:
    __slots__ = ("ui", "name", "letter")

    def __init__(self, ui: str, name: str, letter: str) -> None:
        self.ui, self.name, self.letter = ui, name, letter


def _open_out(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf8", compresslevel=6)  # type: ignore[return-value]
    return open(path, "w", encoding="utf8", buffering=BUFFER)


def _tree_numbers(r: random.Random, letter: str) -> List[str]:
    out = []
    for i in range(r.choice((1, 1, 1, 2, 2, 3, 4))):
        tree = letter if i == 0 or r.random() < 0.85 else r.choice(("C", "D", "E", "G", "F"))
        if tree == "F" and r.random() < 0.5:
            top = "F03"
        else:
            top = f"{tree}{r.randint(1, 26):02d}"
        out.append(".".join([top] + [f"{r.randint(0, 999):03d}" for _ in range(r.randint(1, 6))]))
    return out


def write_mesh_descriptors(path: PathLike, n: int = FULL_DESCRIPTORS, seed: int = 0,
                           record_bytes: int = DESCRIPTOR_BYTES) -> Tuple[Dict[str, int], List[_Descriptor]]:
    """Write `desc*.xml` (or `.xml.gz`) with `n` DescriptorRecords; returns (counts, descriptors).

    The descriptors (UI, name, tree letter) come back for the SCRs to map to.
    Each record is padded with allowable qualifiers to a size drawn uniformly
    from 0.5 to 1.5 x `record_bytes` (records smaller than their content stay).
    """
    path = Path(path)
    r = random.Random(f"{seed}:mesh-descriptors")
    names = NameGenerator(r)
    letters = [t for t, _ in _TREES]
    weights = [w for _, w in _TREES]
    descriptors: List[_Descriptor] = []
    counts = {"records": 0, "terms": 0, "bytes": 0}
    next_concept, next_term = [0], [0]
    seen_names = set()
    with _open_out(path) as f:
        head = ('<?xml version="1.0"?>\n<!DOCTYPE DescriptorRecordSet SYSTEM '
                '"https://www.nlm.nih.gov/databases/dtd/nlmdescriptorrecordset_20250101.dtd">\n'
                '<DescriptorRecordSet LanguageCode = "eng">\n')
        f.write(head)
        counts["bytes"] += len(head.encode("utf8"))
        ui_number = 0
        for i in range(n):
            letter = r.choices(letters, weights)[0]
            kind = _TREE_KIND.get(letter, "generic")
            name = names.of_kind(kind)
            while name in seen_names:  # record names are unique in MeSH
                name = f"{names.of_kind(kind)}"
            seen_names.add(name)
            ui_number += r.randint(1, 3)
            ui = f"D{ui_number:06d}" if i < 0.7 * n else f"D{ui_number + 60_000:09d}"
            descriptors.append(_Descriptor(ui, name, letter))
            trees = _tree_numbers(r, letter)
            concept_list, n_terms = _concepts(names, kind, name, min(r.choice((0, 0, 1, 1, 2, 3, 5)), 6),
                                              next_concept, next_term, r.randint(20, 90), "  ")
            parts = [f"  <DescriptorUI>{ui}</DescriptorUI>\n",
                     f"  <DescriptorName>\n   <String>{escape(name)}</String>\n  </DescriptorName>\n",
                     _date("DateCreated", r, "  "), _date("DateRevised", r, "  ", 2000),
                     _date("DateEstablished", r, "  ")]
            tail = []
            if r.random() < 0.5:
                tail.append(f"  <Annotation>{escape(_sentence(names, r.randint(8, 40)))}\n  </Annotation>\n")
            tail.append(f"  <HistoryNote>{r.randint(60, 124)}; was {escape(names.word().upper())} "
                        f"{r.randint(1960, 2020)}\n  </HistoryNote>\n")
            if r.random() < 0.3:
                tail.append(f"  <OnlineNote>use {escape(name.upper())} to search {escape(names.word().upper())} "
                            f"{r.randint(1966, 2020)}\n  </OnlineNote>\n")
            tail.append(f"  <PublicMeSHNote>{r.randint(60, 124)}; was see under {escape(names.word().upper())}\n"
                        f"  </PublicMeSHNote>\n")
            if r.random() < 0.4:
                tail.append("  <PreviousIndexingList>\n" + "".join(
                    f"   <PreviousIndexing>{escape(names.of_kind(kind))} ({r.randint(1966, 2000)}-"
                    f"{r.randint(2001, 2024)})</PreviousIndexing>\n" for _ in range(r.randint(1, 4)))
                    + "  </PreviousIndexingList>\n")
            if descriptors and r.random() < 0.3:
                tail.append("  <SeeRelatedList>\n" + "".join(
                    "   <SeeRelatedDescriptor>\n" + _descriptor_ref(d.ui, d.name, "    ")
                    + "   </SeeRelatedDescriptor>\n" for d in r.sample(descriptors, min(len(descriptors), 2)))
                    + "  </SeeRelatedList>\n")
            if kind == "chemical" and len(descriptors) > 1 and r.random() < 0.5:
                tail.append("  <PharmacologicalActionList>\n" + "".join(
                    "   <PharmacologicalAction>\n" + _descriptor_ref(d.ui, d.name, "    ")
                    + "   </PharmacologicalAction>\n" for d in r.sample(descriptors, 2))
                    + "  </PharmacologicalActionList>\n")
            tail.append("  <TreeNumberList>\n" + "".join(f"   <TreeNumber>{t}</TreeNumber>\n" for t in trees)
                        + "  </TreeNumberList>\n")
            tail.append(concept_list)
            size = sum(len(p) for p in parts) + sum(len(p) for p in tail)
            target = int(record_bytes * (0.5 + r.random()))
            n_qual = max(0, min(76, (target - size) // len(_QUALIFIERS[0])))
            if n_qual:
                start = r.randrange(76)
                quals = [_QUALIFIERS[(start + j) % 76] for j in range(n_qual)]
                parts.append("  <AllowableQualifiersList>\n" + "".join(quals) + "  </AllowableQualifiersList>\n")
            record = (f'<DescriptorRecord DescriptorClass = "{r.choice("1111111234")}">\n' + "".join(parts)
                      + "".join(tail) + "</DescriptorRecord>\n")
            f.write(record)
            counts["records"] += 1
            counts["terms"] += n_terms
            counts["bytes"] += len(record.encode("utf8"))
        f.write("</DescriptorRecordSet>\n")
        counts["bytes"] += len("</DescriptorRecordSet>\n")
    return counts, descriptors


# SCR classes (1 chemical, 2 protocol, 3 disease, 4 organism) and their shares.
_SCR_CLASSES = (("1", 0.82), ("2", 0.01), ("3", 0.04), ("4", 0.13))
_SCR_KIND = {"1": "chemical", "2": "generic", "3": "disease", "4": "organism"}
_SCR_TREE = {"1": "D", "2": "E", "3": "C", "4": "B"}


def write_mesh_supplementals(path: PathLike, descriptors: Sequence[_Descriptor], n: int = FULL_SUPPLEMENTALS,
                             seed: int = 0) -> Dict[str, int]:
    """Write `supp*.xml` (or `.xml.gz`) with `n` SupplementalRecords mapped to `descriptors`.

    Each SCR maps to one to three descriptors of its class's tree (a
    chemical SCR to tree-D descriptors...); about a third of the mapped UIs
    carry the leading `*` of the real files and some mappings add a
    QualifierReferredTo, as the NLM's do.
    """
    path = Path(path)
    r = random.Random(f"{seed}:mesh-supplementals")
    names = NameGenerator(r)
    by_tree: Dict[str, List[_Descriptor]] = {}
    for d in descriptors:
        by_tree.setdefault(d.letter, []).append(d)
    classes = [c for c, _ in _SCR_CLASSES]
    weights = [w for _, w in _SCR_CLASSES]
    counts = {"records": 0, "terms": 0, "bytes": 0}
    next_concept, next_term = [2_000_000], [2_000_000]
    with _open_out(path) as f:
        head = ('<?xml version="1.0"?>\n<!DOCTYPE SupplementalRecordSet SYSTEM '
                '"https://www.nlm.nih.gov/databases/dtd/nlmsupplementalrecordset_20250101.dtd">\n'
                '<SupplementalRecordSet LanguageCode = "eng">\n')
        f.write(head)
        counts["bytes"] += len(head.encode("utf8"))
        ui_number = 0
        for i in range(n):
            scr_class = r.choices(classes, weights)[0]
            kind = _SCR_KIND[scr_class]
            name = names.of_kind(kind)
            ui_number += r.randint(1, 2)
            ui = f"C{ui_number:06d}" if i < 0.5 * n else f"C{ui_number + 500_000:09d}"
            pool = by_tree.get(_SCR_TREE[scr_class]) or list(descriptors)
            mapped = r.sample(pool, min(len(pool), r.choice((1, 1, 1, 2, 2, 3))))
            concept_list, n_terms = _concepts(names, kind, name, r.choice((0, 0, 0, 0, 1)), next_concept,
                                              next_term, 0, " ", variants=(0, 0, 0, 1, 1, 2))
            parts = [f'<SupplementalRecord SCRClass = "{scr_class}">\n',
                     f" <SupplementalRecordUI>{ui}</SupplementalRecordUI>\n",
                     f" <SupplementalRecordName>\n  <String>{escape(name)}</String>\n </SupplementalRecordName>\n",
                     _date("DateCreated", r, " ", 1970), _date("DateRevised", r, " ", 2000)]
            if r.random() < 0.5:
                parts.append(f" <Note>{escape(_sentence(names, r.randint(5, 25)))}\n </Note>\n")
            parts.append(f" <Frequency>{r.randint(1, 300)}</Frequency>\n")
            if r.random() < 0.3:
                parts.append(" <PreviousIndexingList>\n"
                             f"  <PreviousIndexing>{escape(names.of_kind(kind))} ({r.randint(1975, 2020)})"
                             "</PreviousIndexing>\n </PreviousIndexingList>\n")
            parts.append(" <HeadingMappedToList>\n")
            for d in mapped:
                star = "*" if r.random() < 0.35 else ""
                parts.append("  <HeadingMappedTo>\n" + _descriptor_ref(star + d.ui, d.name, "   "))
                if r.random() < 0.1:
                    parts.append("   <QualifierReferredTo>\n    <QualifierUI>Q000378</QualifierUI>\n"
                                 "    <QualifierName>\n     <String>metabolism</String>\n    </QualifierName>\n"
                                 "   </QualifierReferredTo>\n")
                parts.append("  </HeadingMappedTo>\n")
            parts.append(" </HeadingMappedToList>\n")
            if r.random() < 0.3:
                parts.append(" <IndexingInformationList>\n  <IndexingInformation>\n"
                             + _descriptor_ref(r.choice(pool).ui, r.choice(pool).name, "   ")
                             + "  </IndexingInformation>\n </IndexingInformationList>\n")
            if scr_class == "1" and r.random() < 0.3:
                d = r.choice(descriptors)
                parts.append(" <PharmacologicalActionList>\n  <PharmacologicalAction>\n"
                             + _descriptor_ref(d.ui, d.name, "   ") + "  </PharmacologicalAction>\n"
                             " </PharmacologicalActionList>\n")
            parts.append(" <SourceList>\n" + "".join(
                f"  <Source>{escape(names.word().capitalize())} {names.word().capitalize()} {r.randint(1970, 2024)};"
                f"{r.randint(1, 300)}({r.randint(1, 24)}):{r.randint(1, 9999)}</Source>\n"
                for _ in range(r.randint(1, 3))) + " </SourceList>\n")
            parts.append(concept_list)
            parts.append("</SupplementalRecord>\n")
            record = "".join(parts)
            f.write(record)
            counts["records"] += 1
            counts["terms"] += n_terms
            counts["bytes"] += len(record.encode("utf8"))
        f.write("</SupplementalRecordSet>\n")
        counts["bytes"] += len("</SupplementalRecordSet>\n")
    return counts


# -- UMLS RRF --------------------------------------------------------------------------

# 40 semantic types (TUI, Semantic Network tree number, name, rough share of CUIs): every
# st21pv type or an ancestor of it, and concept types that st21pv leaves out. Like a real
# release (127 types) they are more than the candidate index's 32, so that a UMLS KB is read
# with a type filter, as users must.
SEMANTIC_TYPES: Tuple[Tuple[str, str, str, float], ...] = (
    ("T109", "A1.4.1.2.1", "Organic Chemical", 0.12),
    ("T121", "A1.4.1.1.1", "Pharmacologic Substance", 0.10),
    ("T116", "A1.4.1.2.1.7", "Amino Acid, Peptide, or Protein", 0.07),
    ("T204", "A1.1.3", "Eukaryote", 0.10),
    ("T047", "B2.2.1.2.1", "Disease or Syndrome", 0.06),
    ("T033", "A2.2", "Finding", 0.06),
    ("T200", "A1.3.3", "Clinical Drug", 0.08),
    ("T059", "B1.3.1.1", "Laboratory Procedure", 0.05),
    ("T061", "B1.3.1.3", "Therapeutic or Preventive Procedure", 0.04),
    ("T023", "A1.2.3.1", "Body Part, Organ, or Organ Component", 0.03),
    ("T191", "B2.2.1.2.1.2", "Neoplastic Process", 0.02),
    ("T037", "B2.3", "Injury or Poisoning", 0.02),
    ("T184", "A2.2.2", "Sign or Symptom", 0.01),
    ("T046", "B2.2.1.2", "Pathologic Function", 0.01),
    ("T007", "A1.1.2", "Bacterium", 0.02),
    ("T005", "A1.1.4", "Virus", 0.01),
    ("T028", "A1.2.3.5", "Gene or Genome", 0.04),
    ("T074", "A1.3.1", "Medical Device", 0.02),
    ("T170", "A2.4", "Intellectual Product", 0.03),
    ("T201", "A2.3.1", "Clinical Attribute", 0.02),
    ("T060", "B1.3.1.2", "Diagnostic Procedure", 0.02),
    ("T017", "A1.2", "Anatomical Structure", 0.005),
    ("T022", "A2.1.4.1", "Body System", 0.002),
    ("T031", "A1.4.2", "Body Substance", 0.003),
    ("T038", "B2.2.1", "Biologic Function", 0.003),
    ("T058", "B1.3.1", "Health Care Activity", 0.005),
    ("T062", "B1.3.2", "Research Activity", 0.003),
    ("T082", "A2.1.5", "Spatial Concept", 0.005),
    ("T103", "A1.4.1", "Chemical", 0.004),
    ("T168", "A1.4.3", "Food", 0.005),
    ("T034", "A2.2.1", "Laboratory or Test Result", 0.02),
    ("T078", "A2.1", "Idea or Concept", 0.02),
    ("T080", "A2.1.2", "Qualitative Concept", 0.02),
    ("T081", "A2.1.3", "Quantitative Concept", 0.015),
    ("T169", "A2.1.4", "Functional Concept", 0.02),
    ("T067", "B2", "Phenomenon or Process", 0.005),
    ("T091", "A2.6.1", "Biomedical Occupation or Discipline", 0.002),
    ("T092", "A2.7", "Organization", 0.003),
    ("T097", "A2.9.2", "Professional or Occupational Group", 0.002),
    ("T098", "A2.9.4", "Population Group", 0.003),
)
_TUI_KIND = {"T109": "chemical", "T121": "chemical", "T116": "chemical", "T200": "chemical", "T103": "chemical",
             "T047": "disease", "T191": "disease", "T046": "disease", "T037": "disease", "T184": "disease",
             "T204": "organism", "T007": "organism", "T005": "organism"}
# Source vocabularies of English atoms: (SAB, share, term types, source restriction level).
_SABS = (("SNOMEDCT_US", 0.20, ("PT", "FN", "SY"), 9), ("MTH", 0.06, ("PN",), 0),
         ("MSH", 0.10, ("MH", "ET", "NM", "PEP", "ENT"), 0), ("NCI", 0.07, ("PT", "SY", "AB"), 0),
         ("RXNORM", 0.10, ("IN", "SCD", "SBD", "BN", "SY"), 0), ("LNC", 0.08, ("LN", "LC", "OSN"), 0),
         ("MEDCIN", 0.10, ("PT", "FN"), 3), ("MDR", 0.05, ("PT", "LLT"), 3), ("ICD10CM", 0.03, ("PT",), 4),
         ("HPO", 0.02, ("PT", "SY"), 0), ("GO", 0.03, ("PT", "SY", "ET"), 0), ("CHV", 0.06, ("SY", "PT"), 0),
         ("NCBI", 0.06, ("SCN", "SY", "CMN"), 0), ("OMIM", 0.04, ("PT", "ETAL"), 0))
_LANGUAGES = ("SPA", "FRE", "GER", "POR", "ITA", "DUT", "JPN", "CZE", "RUS", "SWE", "FIN")
_LANGUAGE_SABS = {lat: f"MSH{lat[:3]}" for lat in _LANGUAGES}


class _Ids:
    """Running UMLS identifiers (LUI, SUI, AUI, ATUI), each drawn with gaps."""

    def __init__(self, r: random.Random) -> None:
        self.r = r
        self.lui = self.sui = self.aui = self.atui = 0

    def next(self, field: str) -> int:
        value = getattr(self, field) + self.r.randint(1, 4)
        setattr(self, field, value)
        return value


def _atom(r: random.Random, ids: _Ids, cui: str, lat: str, string: str, lui: str, sui: str, status: str,
          sab: str, tty: str, srl: int, suppress: str) -> str:
    """One MRCONSO row; `status` is TS, STT and ISPREF joined by '|' (for example "P|PF|Y")."""
    code = {"SNOMEDCT_US": lambda: str(r.randint(10_000_000, 999_999_999_999)),
            "MSH": lambda: f"D{r.randint(1, 999_999):06d}", "NCI": lambda: f"C{r.randint(1, 199_999)}",
            "RXNORM": lambda: str(r.randint(1, 2_999_999)), "LNC": lambda: f"{r.randint(1, 99_999)}-{r.randint(0, 9)}",
            "ICD10CM": lambda: f"{chr(65 + r.randrange(26))}{r.randint(0, 99):02d}.{r.randint(0, 9)}",
            "HPO": lambda: f"HP:{r.randint(1, 5_000_000):07d}", "GO": lambda: f"GO:{r.randint(1, 2_000_000):07d}",
            "OMIM": lambda: str(r.randint(100_000, 620_000))}.get(sab, lambda: str(r.randint(1, 9_999_999)))()
    saui = str(r.randint(100_000, 9_999_999_999)) if sab in ("SNOMEDCT_US", "MDR", "NCI") else ""
    scui = code if sab not in ("MSH",) else f"M{r.randint(1, 9_999_999):07d}"
    sdui = code if sab in ("MSH", "GO", "MDR") else ""
    ts, stt, ispref = status.split("|")
    cvf = r.choice(("", "", "256", "4096", "8192"))
    aui = f"A{ids.next('aui'):08d}"
    return (f"{cui}|{lat}|{ts}|{lui}|{stt}|{sui}|{ispref}|{aui}|{saui}|{scui}|{sdui}|{sab}|{tty}|{code}|"
            f"{string}|{srl}|{suppress}|{cvf}|\n")


def write_umls(meta_dir: PathLike, english_rows: int = FULL_UMLS_ENGLISH_ROWS, seed: int = 0,
               non_english_share: float = NON_ENGLISH_SHARE,
               suppressed_share: float = SUPPRESSED_SHARE) -> Dict[str, int]:
    """Write `MRCONSO.RRF` and `MRSTY.RRF` into `meta_dir`; returns row counts and sizes.

    CUIs ascend, as in the real files. A concept has 1 + a geometric number
    of English atoms (2.65 on average), many of them the same string from
    another source or a case variant (one LUI, several SUIs and AUIs); one atom
    is its preferred (TS=P, STT=PF, ISPREF=Y). `suppressed_share` of English
    atoms are obsolete or suppressible (SUPPRESS O, E or Y) and
    `non_english_share` of all rows are in other languages, shuffled in with
    the English ones; 2% of concepts have no English atom at all.
    """
    meta = Path(meta_dir)
    meta.mkdir(parents=True, exist_ok=True)
    r = random.Random(f"{seed}:umls")
    names = NameGenerator(r)
    ids = _Ids(r)
    tuis = [t[0] for t in SEMANTIC_TYPES]
    tui_weights = [t[3] for t in SEMANTIC_TYPES]
    stn = {t[0]: (t[1], t[2]) for t in SEMANTIC_TYPES}
    sabs = [s[0] for s in _SABS]
    sab_weights = [s[1] for s in _SABS]
    sab_info = {s[0]: (s[2], s[3]) for s in _SABS}
    counts = {"mrconso_rows": 0, "english_rows": 0, "english_suppressed_rows": 0, "non_english_rows": 0,
              "concepts": 0, "concepts_with_english": 0, "mrsty_rows": 0, "mrconso_bytes": 0, "mrsty_bytes": 0}
    foreign_per_english = non_english_share / (1 - non_english_share)
    cui_number = 0
    with open(meta / "MRCONSO.RRF", "w", encoding="utf8", buffering=BUFFER) as conso, \
            open(meta / "MRSTY.RRF", "w", encoding="utf8", buffering=BUFFER) as sty:
        while counts["english_rows"] < english_rows:
            cui_number += r.randint(1, 3)
            cui = f"C{cui_number:07d}"
            types = [r.choices(tuis, tui_weights)[0]]
            if r.random() < 0.1:
                types.append(r.choices(tuis, tui_weights)[0])
            types = list(dict.fromkeys(types))
            kind = _TUI_KIND.get(types[0], "generic")
            rows: List[str] = []
            n_english = 0 if r.random() < 0.02 else 1
            while n_english and r.random() < 0.623:  # geometric: mean 1 / (1 - 0.623) = 2.65
                n_english += 1
            n_english = min(n_english, english_rows - counts["english_rows"])
            strings: List[Tuple[str, str, str]] = []  # (string, LUI, SUI)
            base = names.of_kind(kind)
            for j in range(n_english):
                x = r.random()
                stt, ispref = "PF", "Y"
                if j == 0 or not strings:
                    string = base
                    lui = f"L{ids.next('lui'):07d}"
                elif x < 0.45:  # the same string from another source
                    string, lui, _ = r.choice(strings)
                    ispref = "N"
                elif x < 0.55:  # a case variant: same LUI, another SUI
                    string, lui = strings[0][0].lower(), strings[0][1]
                    stt = "VC"
                else:
                    string = names.variant(base, kind)
                    lui = f"L{ids.next('lui'):07d}"
                    stt = r.choice(("PF", "PF", "VO", "VW", "VCW"))
                sui = next((s for t, _, s in strings if t == string), "") or f"S{ids.next('sui'):07d}"
                strings.append((string, lui, sui))
                status = f"{'P' if lui == strings[0][1] else 'S'}|{stt}|{ispref}"
                sab = "MTH" if j == 0 and r.random() < 0.3 else r.choices(sabs, sab_weights)[0]
                ttys, srl = sab_info[sab]
                suppressed = j > 0 and r.random() < suppressed_share / 0.62
                suppress = r.choice(("O", "O", "E", "Y")) if suppressed else "N"
                tty = ("OP" if suppress == "O" else r.choice(ttys)) if j else ttys[0]
                rows.append(_atom(r, ids, cui, "ENG", string, lui, sui, status, sab, tty, srl, suppress))
                counts["english_suppressed_rows"] += suppress != "N"
            n_foreign = 0
            expected = foreign_per_english * max(n_english, 1)
            while r.random() < expected / (1 + expected):
                n_foreign += 1
            for _ in range(n_foreign):
                lat = r.choice(_LANGUAGES)
                string = names.foreign(base, lat)
                rows.append(_atom(r, ids, cui, lat, string, f"L{ids.next('lui'):07d}", f"S{ids.next('sui'):07d}",
                                  "P|PF|Y", _LANGUAGE_SABS[lat], "MH", 3, "N"))
            if not rows:
                continue
            r.shuffle(rows)
            block = "".join(rows)
            conso.write(block)
            counts["mrconso_bytes"] += len(block.encode("utf8"))
            counts["mrconso_rows"] += len(rows)
            counts["english_rows"] += n_english
            counts["non_english_rows"] += n_foreign
            counts["concepts"] += 1
            counts["concepts_with_english"] += n_english > 0
            for tui in types:
                tree, sty_name = stn[tui]
                line = f"{cui}|{tui}|{tree}|{sty_name}|AT{ids.next('atui'):08d}|{r.choice(('', '256'))}|\n"
                sty.write(line)
                counts["mrsty_rows"] += 1
                counts["mrsty_bytes"] += len(line)
    return counts


# -- all sources -------------------------------------------------------------------------

SOURCE_FILES = {"mesh_descriptors": "desc2025.xml", "mesh_supplementals": "supp2025.xml",
                "umls": "META", "mrconso": "META/MRCONSO.RRF", "mrsty": "META/MRSTY.RRF"}


def write_sources(folder: PathLike, scale: float = 1.0, seed: int = 0) -> Dict[str, Dict[str, int]]:
    """desc2025.xml, supp2025.xml and META/{MRCONSO,MRSTY}.RRF in `folder`, at `scale` x the real sizes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_desc = max(1, round(FULL_DESCRIPTORS * scale))
    desc_counts, descriptors = write_mesh_descriptors(folder / SOURCE_FILES["mesh_descriptors"], n_desc, seed)
    supp_counts = write_mesh_supplementals(folder / SOURCE_FILES["mesh_supplementals"], descriptors,
                                           max(1, round(FULL_SUPPLEMENTALS * scale)), seed)
    umls_counts = write_umls(folder / SOURCE_FILES["umls"], max(1, round(FULL_UMLS_ENGLISH_ROWS * scale)), seed)
    return {"mesh_descriptors": desc_counts, "mesh_supplementals": supp_counts, "umls": umls_counts}


def iter_lines(path: PathLike) -> Iterator[str]:
    """The lines of a generated file, gzipped or not (for checks that stream it back)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf8") as f:  # type: ignore[operator]
        yield from f
