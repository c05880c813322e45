"""Every command's --help is for a user: a short description, options with defaults, 1-3 examples,
and none of the developer docs' markup (Sphinx roles, doctests, reStructuredText literals)."""

from __future__ import annotations

import argparse
import re

import pytest

from ssvqa import demo
from ssvqa.cli import COMMANDS, command_parser, main

MARKUP = re.compile(r":(class|func|meth|mod|data|attr):|>>>|``|::$", re.MULTILINE)


def _help(capsys, run) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_is_short_with_defaults_and_examples(name, capsys):
    text = _help(capsys, lambda: main([name, "--help"]))
    assert not MARKUP.search(text), MARKUP.search(text).group(0)
    description = text.split("\n\n")[1]
    assert 1 <= len(description.splitlines()) <= 4
    examples = text.split("examples:\n", 1)[1].strip().splitlines()
    assert 1 <= len(examples) <= 3 and all(line.strip().startswith(f"ssvqa {name}") for line in examples)
    # Every option with a default says what it is.
    parser, _ = command_parser(name)
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS, []):
            shown = parser.formatter_class(parser.prog)._get_help_string(action)
            assert "default" in shown.lower(), action.dest


def test_top_level_help_lists_every_command(capsys):
    text = _help(capsys, lambda: main(["--help"]))
    assert all(name in text for name in COMMANDS)


def test_demo_help(capsys):
    text = _help(capsys, lambda: demo.main(["--help"]))
    assert not MARKUP.search(text)
    assert "bash run.sh demo --rounds 1" in text and "default: 3" in text
