"""The one exception tree of edge_slm; callers catch these at the CLI and daemon boundaries."""

from __future__ import annotations


class EdgeSlmError(Exception):
    """Base class of every error edge_slm raises on purpose."""


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
