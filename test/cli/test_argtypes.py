"""Options derived from config dataclasses (cli/argtypes.py): a switch's help says which way it goes."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from dgslrm_ros.cli.argtypes import add_config_options, config_from_options
from dgslrm_ros.core.parameters import parameter


@dataclass(frozen=True)
class _Switches:
    classical: bool = parameter(True, "score the classical method")
    previews: bool = parameter(False, "write preview PNGs")


def test_bool_fields_become_switches_whose_help_says_what_they_do() -> None:
    parser = argparse.ArgumentParser()
    add_config_options(parser, _Switches)
    helps = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings[0].startswith("--") and a.dest != "help"}
    # --no-classical turns scoring off: its help must not read as if it switched scoring on
    assert helps["--no-classical"] == "score the classical method (on by default; this switch turns it off)"
    assert helps["--previews"] == "write preview PNGs (off by default)"
    assert config_from_options(_Switches, parser.parse_args(["--no-classical"])) == _Switches(classical=False)
    assert config_from_options(_Switches, parser.parse_args(["--previews"])) == _Switches(previews=True)
    assert config_from_options(_Switches, parser.parse_args([])) == _Switches()
