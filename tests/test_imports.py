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


def test_the_device_side_and_the_command_line_import_without_firmware_tools():
    """edge_slm outside its training side (corpus, model, convert) imports with the training
    packages and firmware_tools blocked: firmware_tools sits on edge_slm, not under it."""
    code = BLOCKER.replace("'transformers'}", "'transformers', 'firmware_tools'}") + (
        "import importlib, pkgutil, edge_slm, edge_slm.cli\n"
        "training = ('edge_slm.corpus', 'edge_slm.model', 'edge_slm.convert')\n"
        "names = [m.name for m in pkgutil.walk_packages(edge_slm.__path__, 'edge_slm.')\n"
        "         if not m.name.startswith(training)]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "edge_slm.cli.build_parser()\n"
        "print(len(names), 'firmware_tools' in sys.modules)\n")
    assert "'firmware_tools'}" in code  # the blocker does block it
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    count, imported = out.stdout.split()
    assert int(count) > 40 and imported == "False"


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
