"""`python -m spacy_medlink ...`: one typer app, one module per command group."""
from ._app import app, benchmark_app  # noqa: F401

# Importing a module registers its commands on `app` / `benchmark_app`.
from . import assets  # noqa: F401,E402
from . import convert, ensemble, partial, silver, split  # noqa: F401,E402
from . import vectors  # noqa: F401,E402
from . import annotate, evaluate, kb, kb_attach, benchmark_annotate, benchmark_crosscorpus, benchmark_kb, benchmark_linking, benchmark_load, benchmark_nested, benchmark_pipeline, benchmark_tokenizer, benchmark_zeroshot, tune  # noqa: F401,E402
