import typer

app = typer.Typer(
    name="spacy-medlink",
    help="spacy-medlink: corpus conversion, knowledge bases and benchmarks.",
    no_args_is_help=True,
    add_completion=False,
)
benchmark_app = typer.Typer(help="Speed, memory and recall benchmarks (never run as timed tests).", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")
