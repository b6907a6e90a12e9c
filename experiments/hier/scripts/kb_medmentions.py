"""MedMentions' KB: UMLS where a META folder is given, else the training mentions' names.

    python scripts/kb_medmentions.py OUTPUT TRAIN [UMLS_META] [UMLS_SAB]

With UMLS_META (a Metathesaurus release's META/ folder, or its MRCONSO.RRF beside
MRSTY.RRF), the KB holds every CUI of MedMentions' 21 st21pv semantic types, each
finer type typed as its st21pv ancestor (the labels the corpus uses), with the
training mentions as synonyms; UMLS_SAB, comma-separated, keeps the names of those
source vocabularies only. Without it (an empty argument: UMLS is licensed), the KB
is the CUIs of the training mentions, named by their strings. A project command
runs no shell, so this picks the `kb build` options.
"""
import subprocess
import sys


def main(output: str, train: str, umls_meta: str = "", umls_sab: str = "") -> int:
    args = [sys.executable, "-m", "spacy_medlink", "kb", "build", output,
            "--train-corpus", train, "--train-name", "medmentions"]
    if umls_meta.strip():
        args += ["--umls-meta", umls_meta.strip(), "--umls-types", "st21pv"]
        if umls_sab.strip():
            args += ["--umls-sab", umls_sab.strip()]
    print(" ".join(args[1:]), flush=True)
    return subprocess.run(args).returncode


if __name__ == "__main__":
    if not 3 <= len(sys.argv) <= 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
