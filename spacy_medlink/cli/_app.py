"""The typer app every command module registers on, and how `--help` groups its commands."""
import inspect
from typing import Any, Dict, List, Optional, Tuple

import click
import typer
from typer.core import HAS_RICH, TyperGroup

from ..corpora.report import CorpusFormatError

# `--help` lists the commands under these headings, in this order: what a user of a
# pipeline needs first, then what training one needs, then the tools behind the
# project's benchmarks and experiments.
COMMAND_PANELS: Dict[str, Tuple[str, ...]] = {
    "Use a pipeline": ("annotate", "evaluate"),
    "Train a pipeline": ("convert", "kb", "vectors", "tune", "ensemble", "assets"),
    "Research tools": ("benchmark", "silver", "complete", "partial", "split", "merge"),
}
OTHER_PANEL = "Other commands"  # after the others, for a command not listed above
PANEL_OF: Dict[str, str] = {name: panel for panel, names in COMMAND_PANELS.items() for name in names}
ORDER: Dict[str, int] = {name: i for i, name in enumerate(PANEL_OF)}


class PanelGroup(TyperGroup):
    """The root group: each command under its `COMMAND_PANELS` heading, the headings in order,
    with rich (typer's `rich_help_panel`) and without it (click's plain sections)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, cmd in self.commands.items():
            _place(name, cmd)

    def add_command(self, cmd: click.Command, name: Optional[str] = None) -> None:
        super().add_command(cmd, name)
        _place(name or cmd.name or "", cmd)

    def list_commands(self, ctx: click.Context) -> List[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: ORDER.get(name, len(ORDER)))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Without rich: one section per heading (typer's own fallback lists all under one)."""
        by_panel: Dict[str, List[Tuple[str, click.Command]]] = {}
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                by_panel.setdefault(getattr(cmd, "rich_help_panel", None) or OTHER_PANEL, []).append((name, cmd))
        if not by_panel:
            return
        limit = formatter.width - 6 - max(len(name) for rows in by_panel.values() for name, _ in rows)
        for panel, rows in by_panel.items():
            with formatter.section(panel):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


def _place(name: str, cmd: click.Command) -> None:
    """Put `cmd` under its heading. With rich, its summary is its docstring's first paragraph
    as one line: rich keeps the paragraph's line breaks, which break the commands table
    (without rich, click cuts every summary to one line itself)."""
    if not getattr(cmd, "rich_help_panel", None):  # unset is typer's falsy placeholder
        cmd.rich_help_panel = PANEL_OF.get(name, OTHER_PANEL)  # type: ignore[attr-defined]
    if HAS_RICH and cmd.short_help is None and cmd.help:
        first = inspect.cleandoc(cmd.help).split("\n\n")[0]
        if "\n" in first:
            cmd.short_help = " ".join(first.split())


class App(typer.Typer):
    """The command line (`python -m spacy_medlink`, `spacy-medlink`): an input file that cannot
    be read (`CorpusFormatError`, which names the file and line) ends the command with that
    message and exit status 1 instead of a traceback. Tests that invoke the click command
    directly still see the exception."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except CorpusFormatError as err:
            typer.echo(f"Error: {err}", err=True)
            raise SystemExit(1) from None


app = App(
    name="spacy-medlink",
    cls=PanelGroup,
    help="Biomedical entities and their concept IDs with spaCy: annotate documents with a trained "
    "pipeline, evaluate it, or train your own from a corpus and a knowledge base.",
    no_args_is_help=True,
    add_completion=False,
)
benchmark_app = typer.Typer(help="Speed, memory and recall benchmarks (never run as timed tests).", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")
