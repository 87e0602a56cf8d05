"""The layers of docs/architecture.md hold: every import of every module of `edge_slm` and
`firmware_tools` (top level and inside functions, relative ones resolved) is one its layer may
make. The device side (core, runtime, protocols, daemon) imports neither the training side,
the command line, `firmware_tools` nor a training package; `firmware_tools` uses the device
side, never the other way round. The checker is shown to catch deliberate violations."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("edge_slm", "firmware_tools")

MODULES = {  # single modules (exact names)
    "edge_slm": "core", "edge_slm.errors": "core", "edge_slm.bundle": "core",
    "edge_slm.home": "core", "edge_slm.tokenizer": "core", "edge_slm.signature": "core",
    "edge_slm.__main__": "cli",
}
SUBPACKAGES = {  # a package and everything in it
    "edge_slm.runtime": "runtime", "edge_slm.protocols": "protocols",
    "edge_slm.daemon": "daemon", "edge_slm.cli": "cli", "edge_slm.corpus": "training",
    "edge_slm.model": "training", "edge_slm.convert": "training",
    "firmware_tools": "firmware_tools",
}
MAY_IMPORT = {  # layer -> the layers its modules may import (docs/architecture.md, Layers)
    "core": {"core"},
    "runtime": {"core", "runtime"},
    "protocols": {"core", "protocols"},
    "daemon": {"core", "runtime", "protocols", "daemon"},
    "training": {"core", "runtime", "training"},
    "cli": {"core", "runtime", "protocols", "daemon", "training", "cli"},
    "firmware_tools": {"core", "runtime", "protocols", "daemon", "firmware_tools"},
}
TRAINING_PACKAGES = {"torch", "tensorflow", "keras", "transformers", "tokenizers", "hassil",
                     "home_assistant_intents", "chatterbot", "chatterbot_corpus",
                     "matplotlib", "ai_edge_quantizer"}
"""Third-party packages of the train extra: no device-side module or firmware_tools imports
them (they are not installed on a Pi)."""
NO_TRAINING_PACKAGES = {"core", "runtime", "protocols", "daemon", "firmware_tools"}

Source = Tuple[str, bool]  # (module source, is it a package's __init__)


def layer_of(module: str) -> Optional[str]:
    """The layer of a module of ours (None: it has none)."""
    if module in MODULES:
        return MODULES[module]
    for package, layer in SUBPACKAGES.items():
        if module == package or module.startswith(package + "."):
            return layer
    return None


def imports_of(source: str, module: str, is_package: bool,
               known: Set[str]) -> List[Tuple[int, str]]:
    """(line, imported module) of every import in `source`, anywhere in it; `from X import
    name` counts as X.name when that is a module in `known`, else as X."""
    package = module if is_package else module.rpartition(".")[0]
    out: List[Tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                name = f"{base}.{alias.name}"
                out.append((node.lineno, name if name in known else base))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                   or (isinstance(node.func, ast.Attribute)
                       and node.func.attr == "import_module"))):
            out.append((node.lineno, node.args[0].value))
    return out


def violations(modules: Dict[str, Source]) -> List[str]:
    """Every import some module's layer may not make, and every module without a layer."""
    known = set(modules)
    found = []
    for module, (source, is_package) in sorted(modules.items()):
        layer = layer_of(module)
        if layer is None:
            found.append(f"{module}: no layer (give it one in docs/architecture.md, Layers)")
            continue
        for line, target in sorted(set(imports_of(source, module, is_package, known))):
            top = target.split(".")[0]
            if top in PACKAGES:
                target_layer = layer_of(target)
                if target_layer not in MAY_IMPORT[layer]:
                    found.append(f"{module}:{line} ({layer}) imports {target} ({target_layer})")
            elif top in TRAINING_PACKAGES and layer in NO_TRAINING_PACKAGES:
                found.append(f"{module}:{line} ({layer}) imports {target} (training package)")
    return found


def our_modules() -> Dict[str, Source]:
    """Every module of the two packages: name -> (source, is it a package's __init__)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = (path.read_text(encoding="utf-8"), is_package)
    return modules


def test_every_import_is_one_its_layer_may_make():
    modules = our_modules()
    assert "edge_slm.runtime.engine" in modules and "firmware_tools.agent" in modules
    assert violations(modules) == []


def test_deliberate_violations_are_reported():
    leaks = {
        # the leak serial_lines had: the daemon answering through the command line
        "edge_slm.daemon.leak": ("def answer():\n    from ..cli.parse import answer_line\n",
                                 False),
        "edge_slm.runtime.leak": ("import json\nfrom ..corpus import build\n", False),
        "edge_slm.runtime.sneak": ("from edge_slm import cli\n", False),
        "edge_slm.home_leak": ("import yaml\n", False),
        "edge_slm.protocols.leak": (
            "import importlib\n\ndef f():\n    importlib.import_module('firmware_tools.flash')\n",
            False),
        "edge_slm.signature": ("def keys():\n    import firmware_tools.signing\n", False),
        "edge_slm.daemon.heavy": ("def f():\n    import torch.nn\n", False),
        "firmware_tools.leak": ("from edge_slm.model.pipeline import run_training\n", False),
        # allowed: firmware_tools uses the device side
        "firmware_tools.fine": ("from edge_slm.signature import verify_bundle\n"
                                "from edge_slm.daemon import serial_port\n", False),
    }
    found = violations({**our_modules(), **leaks})
    assert found == [
        "edge_slm.daemon.heavy:2 (daemon) imports torch.nn (training package)",
        "edge_slm.daemon.leak:2 (daemon) imports edge_slm.cli.parse (cli)",
        "edge_slm.home_leak: no layer (give it one in docs/architecture.md, Layers)",
        "edge_slm.protocols.leak:4 (protocols) imports firmware_tools.flash (firmware_tools)",
        "edge_slm.runtime.leak:2 (runtime) imports edge_slm.corpus.build (training)",
        "edge_slm.runtime.sneak:1 (runtime) imports edge_slm.cli (cli)",
        "edge_slm.signature:2 (core) imports firmware_tools.signing (firmware_tools)",
        "firmware_tools.leak:1 (firmware_tools) imports edge_slm.model.pipeline (training)",
    ]


def test_relative_imports_resolve_from_modules_and_packages():
    known = {"edge_slm.runtime.tidy", "edge_slm.cli"}
    assert imports_of("from . import tidy\nfrom .. import __version__, cli\n",
                      "edge_slm.runtime.answer", False, known) == [
        (1, "edge_slm.runtime.tidy"), (2, "edge_slm"), (2, "edge_slm.cli")]
    assert imports_of("from .base import Message\nfrom ..errors import ProtocolError\n",
                      "edge_slm.protocols", True, known) == [
        (1, "edge_slm.protocols.base"), (2, "edge_slm.errors")]


def test_the_architecture_document_draws_the_same_layers():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    drawn = {}
    for row in re.findall(r"^\| \*\*(\w+)\*\* \|.*\| ([\w, ]+) \|$", section, re.M):
        drawn[row[0]] = {name.strip() for name in row[1].split(",")}
    assert drawn == MAY_IMPORT
