"""The engine a daemon serves, shared by every front end of one process.

    source = ServedEngine(engine)
    result = source.parse("turn off the lights", area="Kitchen")   # any thread
    source.reload(loader)                                           # SIGHUP: load, check, swap

`edge-slm serve` answers MQTT (the daemon's loop) and Wyoming (its own threads) with ONE
engine. The TFLite interpreter is not thread-safe, so every parse goes through one lock; a
reload swaps the engine, its model id and language in one assignment, so an answer never
mixes two models, and every front end serves the new one from its next query on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import EdgeSlmError
from ..runtime.engine import IntentEngine
from ..runtime.result import ParseResult

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """What a front end serves with: swapped as one object when the bundle is reloaded."""

    engine: IntentEngine
    """The loaded engine."""
    model_id: str
    """Its bundle's model id."""
    lang: Optional[str]
    """Its language ("en"), or None when the bundle does not say."""

    @classmethod
    def of(cls, engine: IntentEngine) -> "Served":
        """The engine with the model id and language its bundle declares."""
        return cls(engine, str(engine.bundle.model_id), engine.manifest.get("lang"))


class ServedEngine:
    """The served engine behind one lock (see module doc)."""

    def __init__(self, engine: IntentEngine) -> None:
        self.served = Served.of(engine)
        """The engine with its model id and language; replaced whole by `swap()`."""
        self.lock = threading.Lock()
        """Held while the engine parses (one interpreter, one query at a time)."""

    @property
    def engine(self) -> IntentEngine:
        """The engine served now."""
        return self.served.engine

    def parse(self, text: str, area: Optional[str] = None) -> ParseResult:
        """`IntentEngine.parse` under the lock (InputError for a text it cannot take)."""
        with self.lock:
            return self.served.engine.parse(text, area=area)

    def swap(self, engine: IntentEngine) -> str:
        """Serve `engine` from the next query on; returns the model id it replaced. The caller
        checked the engine."""
        old = self.served.model_id
        self.served = Served.of(engine)
        return old

    def reload(self, loader: Optional[Callable[[], IntentEngine]]) -> bool:
        """Load, check and swap in a new engine; False, with the old one still serving, when
        there is no loader or it fails (logged)."""
        old = self.served.model_id
        if loader is None:
            _LOGGER.error("reload refused: this daemon has no bundle loader")
            return False
        try:
            engine = loader()
        except (EdgeSlmError, OSError, ValueError) as err:  # a bad or missing bundle
            _LOGGER.error("reload refused, still serving %s: %s", old, err)
            return False
        except Exception:  # the loop boundary: never let a reload stop serving
            _LOGGER.exception("reload refused, still serving %s", old)
            return False
        self.swap(engine)
        _LOGGER.warning("reloaded: serving %s (was %s)", self.served.model_id, old)
        return True
