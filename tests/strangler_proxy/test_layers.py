"""Every module of the proxy has its place in the layers contract that `make lint` checks."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import strangler_proxy

ROOT = Path(__file__).resolve().parents[2]


def test_every_proxy_module_is_placed_in_the_layers_contract():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    layers = config["importlinter:contract:proxy-layers"]["layers"]
    placed = set(re.findall(r"strangler_proxy\.(\w+)", layers))
    package = Path(strangler_proxy.__file__).parent
    modules = {path.stem for path in package.glob("*.py")} - {"__init__"}
    assert modules - placed == set(), "modules outside the layers: place them in setup.cfg"
    assert placed - modules == set(), "the layers name modules that do not exist"


def test_no_proxy_module_is_much_over_500_lines():
    package = Path(strangler_proxy.__file__).parent
    sizes = {path.name: len(path.read_text().splitlines()) for path in package.glob("*.py")}
    assert {name: lines for name, lines in sizes.items() if lines > 550} == {}
