"""One TFLite student behind the LiteRT interpreter: token ids in, logits out.

Needs only numpy and `ai-edge-litert` (or, where a device has only it, `tflite_runtime`).
Outputs are mapped by name through the `serve` signature, never by position (their order in
`get_output_details()` is not the model's). Single-threaded by default: on a Pi the other
cores belong to the rest of the house.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, Protocol, Tuple

import numpy as np

from ..errors import ModelFormatError

SIGNATURE = "serve"
INPUT_NAME = "ids"
INTENT_OUTPUT = "intent_logits"
TAG_OUTPUT = "tag_logits"
#: Optional: models of labels format 1 have no frame head.
FRAME_OUTPUT = "frame_logits"


class SignatureRunner(Protocol):
    """What the model uses of a TFLite signature runner (tensor details by name)."""

    def get_input_details(self) -> Dict[str, Dict[str, Any]]: ...

    def get_output_details(self) -> Dict[str, Dict[str, Any]]: ...


class Interpreter(Protocol):
    """What the model uses of a TFLite interpreter (ai-edge-litert's or tflite-runtime's)."""

    def allocate_tensors(self) -> None: ...

    def get_signature_runner(self, signature_key: str) -> SignatureRunner: ...

    def set_tensor(self, tensor_index: int, value: np.ndarray) -> None: ...

    def invoke(self) -> None: ...

    def get_tensor(self, tensor_index: int) -> np.ndarray: ...


def interpreter_class() -> Tuple[Callable[..., Interpreter], str]:
    """(Interpreter class, "package version") of the runtime found on this machine."""
    try:
        from ai_edge_litert import interpreter as litert

        import ai_edge_litert

        return litert.Interpreter, f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}"
    except ImportError:
        pass
    try:
        import tflite_runtime
        from tflite_runtime import interpreter as tfl

        return tfl.Interpreter, f"tflite-runtime {getattr(tflite_runtime, '__version__', '?')}"
    except ImportError as err:
        raise ModelFormatError("no TFLite runtime: pip install ai-edge-litert") from err


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C++ logging) for the duration; Python errors still raise."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class TFLiteModel:
    """A loaded student: `run(ids)` -> (intent logits (I,), tag logits (T, K), frame logits
    (F,), empty for a model without a frame head)."""

    def __init__(self, flat: bytes, num_threads: int = 1) -> None:
        cls, self.runtime = interpreter_class()
        try:
            with _quiet_stderr():  # the runtime's "Created ... XNNPACK delegate" banner
                self._it = cls(model_content=bytes(flat), num_threads=num_threads)
                self._it.allocate_tensors()
            runner = self._it.get_signature_runner(SIGNATURE)
            inputs = runner.get_input_details()
            outputs = runner.get_output_details()
            self._in = inputs[INPUT_NAME]["index"]
            self._out_intent = outputs[INTENT_OUTPUT]["index"]
            self._out_tags = outputs[TAG_OUTPUT]["index"]
            self._out_frames = (outputs[FRAME_OUTPUT]["index"] if FRAME_OUTPUT in outputs
                                else None)
            self.max_len = int(inputs[INPUT_NAME]["shape"][-1])
        except (ValueError, RuntimeError, KeyError, TypeError) as err:
            raise ModelFormatError(f"the TFLite model cannot be loaded by {self.runtime}: "
                                   f"{err}") from err
        self._buf = np.zeros((1, self.max_len), np.int32)

    def run(self, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Logits for one row of `max_len` token ids ([CLS] first, 0-padded)."""
        self._buf[0, :] = ids
        self._it.set_tensor(self._in, self._buf)
        self._it.invoke()
        frames = (self._it.get_tensor(self._out_frames)[0].copy()
                  if self._out_frames is not None else np.zeros(0, np.float32))
        return (self._it.get_tensor(self._out_intent)[0].copy(),
                self._it.get_tensor(self._out_tags)[0].copy(), frames)

    def run_many(self, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Logits for each row of `ids` (N, max_len)."""
        outs = [self.run(row) for row in ids]
        return (np.stack([o[0] for o in outs]), np.stack([o[1] for o in outs]),
                np.stack([o[2] for o in outs]))
