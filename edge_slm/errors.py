"""The one exception tree of edge_slm; callers catch these at the CLI and daemon boundaries."""

from __future__ import annotations


class EdgeSlmError(Exception):
    """Base class of every error edge_slm raises on purpose.

    The command lines catch these, and only these: the message is printed on one line and
    the exit status is 2. Any other exception is a bug and shows its traceback."""


class ConfigError(EdgeSlmError, ValueError):
    """A setting or argument the user gave is wrong: a command-line flag, an environment
    variable, a key of a settings file, that file itself (missing, unreadable, not TOML), or
    a file a flag names (`eval --data`).

    The message names the setting and where it came from. It is also a ValueError, the type
    these errors had before they had a class of their own, so code that caught ValueError
    around a config (`DaemonConfig(...)`, `load_settings(...)`) still catches them.
    """


class CorpusInputError(EdgeSlmError):
    """A user-supplied corpus input (inventory, sentences file) is malformed.

    The message names the file and the problem, so the user knows what to fix.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        """The file that is wrong."""
        self.problem = problem
        """What is wrong with it."""


class HomeError(CorpusInputError):
    """A home file (the user's `--home`, an inventory, a bundle's `home.json`) is malformed.

    A corpus input too (the corpus samples names from a home), hence the parent class.
    """


class TemplateError(EdgeSlmError):
    """A sentence template cannot be sampled (unknown list or rule, bad syntax)."""


class ModelFormatError(EdgeSlmError):
    """A checkpoint or model file is missing, corrupt or of an unknown format."""


class ProtocolError(EdgeSlmError):
    """A protocol message payload that is not what its protocol says: empty, not UTF-8, not
    a JSON object, a field missing or of the wrong type. The daemon answers it with an error
    message and keeps serving."""
