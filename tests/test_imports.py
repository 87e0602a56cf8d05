"""The runtime side imports without TensorFlow, PyTorch or hassil, and imports do nothing."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import edge_slm
import firmware_tools

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'tensorflow', 'torch', 'hassil', 'home_assistant_intents',
                                  'keras', 'transformers'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_runtime_side_imports_without_training_packages():
    code = BLOCKER + (
        "import edge_slm, edge_slm.errors, edge_slm.cli, firmware_tools\n"
        "edge_slm.cli.build_parser()\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_every_module_imports_without_side_effects(capsys):
    import logging

    handlers = list(logging.getLogger().handlers)
    for pkg in (edge_slm, firmware_tools):
        for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(mod.name)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert logging.getLogger().handlers == handlers


def test_the_engine_and_daemon_run_without_training_packages():
    """What goes on a Pi: load the shipped bundle and parse, with the training stack blocked."""
    code = BLOCKER + (
        "import edge_slm.bundle, edge_slm.daemon.handlers, edge_slm.daemon.mqtt\n"
        "import edge_slm.protocols.hermes, edge_slm.protocols.native\n"
        "from edge_slm.runtime.engine import IntentEngine\n"
        "r = IntentEngine.load().parse('turn off the kitchen lights')\n"
        "print(r.intent, [s.name for s in r.slots])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "HassTurnOff ['area', 'domain']"
