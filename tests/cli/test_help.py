"""`--help`: a user's commands first, the research tools under their own heading, with rich and without."""
import os
import subprocess
import sys

import typer
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli._app import COMMAND_PANELS, OTHER_PANEL

USER_PANEL, TRAIN_PANEL, RESEARCH_PANEL = "Use a pipeline", "Train a pipeline", "Research tools"


def _check_order(text: str) -> None:
    headings = [text.index(panel) for panel in (USER_PANEL, TRAIN_PANEL, RESEARCH_PANEL)]
    assert headings == sorted(headings)
    research = text.index(RESEARCH_PANEL)
    for name in ("annotate", "evaluate", "convert", "kb", "tune"):
        assert f" {name} " in text[:research], name
    for name in ("benchmark", "silver", "complete", "split", "merge"):
        assert f" {name} " in text[research:], name


def test_every_command_has_a_heading():
    names = set(typer.main.get_command(app).commands)
    placed = {name for names_ in COMMAND_PANELS.values() for name in names_}
    assert not names - placed, "add the command to a heading in cli/_app.py's COMMAND_PANELS"


def test_help_lists_user_commands_before_research_tools():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "Biomedical entities" in result.output
    _check_order(result.output)
    assert "Commands" not in result.output and OTHER_PANEL not in result.output  # every command has its heading


def test_help_without_rich():
    env = {**os.environ, "TYPER_USE_RICH": "0"}
    result = subprocess.run([sys.executable, "-m", "spacy_medlink", "--help"], capture_output=True, text=True,
                            env=env, check=True)
    assert "╭" not in result.stdout
    assert f"\n{USER_PANEL}:\n" in result.stdout and f"\n{RESEARCH_PANEL}:\n" in result.stdout
    _check_order(result.stdout)
