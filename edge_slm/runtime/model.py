"""One TFLite student behind the LiteRT interpreter: token ids in, logits out.

Needs only numpy and `ai-edge-litert` (or, where a device has only it, `tflite_runtime`).
Outputs are mapped by name through the `serve` signature, never by position (their order in
`get_output_details()` is not the model's). Single-threaded by default: on a Pi the other
cores belong to the rest of the house.
"""

from __future__ import annotations

import contextlib
import os
from typing import (Any, Callable, Dict, Iterator, List, Optional, Protocol, Sequence,
                    Tuple, Union)

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

    def __call__(self, **inputs: np.ndarray) -> Dict[str, np.ndarray]: ...


class Interpreter(Protocol):
    """What the model uses of a TFLite interpreter (ai-edge-litert's or tflite-runtime's)."""

    def allocate_tensors(self) -> None: ...

    def get_signature_list(self) -> Dict[str, Dict[str, List[str]]]: ...

    def get_signature_runner(self, signature_key: str) -> SignatureRunner: ...


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
    (F,), empty for a model without a frame head), T the tokens of the length it ran at.

    A model may hold several lengths, each a signature over the same weights (`serve` the
    longest, `serve_<n>` shorter ones: convert/signatures.py); a sentence runs at the
    shortest that holds it, so a ten-token command does not pay for 32."""

    def __init__(self, flat: bytes, num_threads: int = 1) -> None:
        cls, self.runtime = interpreter_class()
        try:
            with _quiet_stderr():  # the runtime's "Created ... XNNPACK delegate" banner
                self._it = cls(model_content=bytes(flat), num_threads=num_threads)
                self._it.allocate_tensors()
            keys = list(self._it.get_signature_list())
            if SIGNATURE not in keys:
                raise KeyError(f"no {SIGNATURE!r} signature (it has {keys})")
            self._runners: List[Tuple[int, Any]] = []
            self.max_len = 0
            for length, key in _lengths(keys, self._length_of(SIGNATURE)):
                runner = self._it.get_signature_runner(key)
                inputs, outputs = runner.get_input_details(), runner.get_output_details()
                if length != int(inputs[INPUT_NAME]["shape"][-1]):
                    raise ValueError(f"signature {key!r} takes "
                                     f"{inputs[INPUT_NAME]['shape']} tokens, not {length}")
                missing = {INTENT_OUTPUT, TAG_OUTPUT} - set(outputs)
                if missing:
                    raise KeyError(f"signature {key!r} lacks {sorted(missing)}")
                self._runners.append((length, runner))
                self.max_len = max(self.max_len, length)
        except (ValueError, RuntimeError, KeyError, TypeError) as err:
            raise ModelFormatError(f"the TFLite model cannot be loaded by {self.runtime}: "
                                   f"{err}") from err
        self.lengths = [n for n, _ in self._runners]
        """Sentence lengths (tokens) the model has a signature for, shortest first."""
        self._direct = [_direct(runner) for _, runner in self._runners]

    def _length_of(self, key: str) -> int:
        return int(self._it.get_signature_runner(key).get_input_details()[INPUT_NAME]
                   ["shape"][-1])

    def run(self, ids: np.ndarray, length: Optional[int] = None
            ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Logits for one row of token ids ([CLS] first, 0-padded, at most `max_len`), run at
        `length` tokens (one of `lengths`; default: the shortest that holds the row)."""
        if len(ids) > self.max_len:
            raise ValueError(f"a row of {len(ids)} ids is longer than the model's "
                             f"{self.max_len}")
        used = np.flatnonzero(ids)
        return self.run_tokens(ids[:int(used[-1]) + 1 if used.size else 1], length)

    def run_tokens(self, ids: Union[Sequence[int], np.ndarray], length: Optional[int] = None
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Logits for the token ids of one sentence ([CLS] first, no padding), run at
        `length` tokens (default: the shortest length that holds them)."""
        n = len(ids)
        if length is None:
            length = next((m for m in self.lengths if m >= n), 0)
        if length not in self.lengths or length < n:
            raise ValueError(f"a row of {n} tokens cannot run at length {length} "
                             f"(the model has {self.lengths})")
        row = np.zeros((1, length), np.int32)
        row[0, :n] = ids
        direct = self._direct[self.lengths.index(length)]
        if direct is not None:
            wrapper, graph, inp, outs = direct
            wrapper.SetTensor(inp, row, graph)
            wrapper.Invoke(graph)
            li, lt, lf = (wrapper.GetTensor(i, graph)[0] if i is not None
                          else np.zeros(0, np.float32) for i in outs)
            return li, lt, lf
        out = dict(self._runners[self.lengths.index(length)][1](**{INPUT_NAME: row}))
        frames = (out[FRAME_OUTPUT][0] if FRAME_OUTPUT in out else np.zeros(0, np.float32))
        return out[INTENT_OUTPUT][0], out[TAG_OUTPUT][0], frames

    def run_many(self, ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Logits for each row of `ids` (N, max_len), every row at the longest length (the
        tag logits of all rows then have one shape)."""
        outs = [self.run(row, self.max_len) for row in ids]
        return (np.stack([o[0] for o in outs]), np.stack([o[1] for o in outs]),
                np.stack([o[2] for o in outs]))


def _direct(runner: Any) -> Optional[Tuple[Any, int, int, Tuple[Optional[int], ...]]]:
    """(wrapper, subgraph, input tensor, output tensors) behind a signature runner, allocated
    once, so that a parse sets, invokes and reads the tensors itself: the runner's own call
    resizes and re-allocates on every call (a few microseconds of a 50-microsecond model).
    These are ai-edge-litert's (and tflite-runtime's) private names: None where they differ,
    and the runner's call is used."""
    try:
        wrapper, graph = runner._interpreter_wrapper, int(runner._subgraph_index)
        outs = dict(runner._outputs)
        wrapper.AllocateTensors(graph)
        return (wrapper, graph, int(runner._inputs[INPUT_NAME]),
                (outs[INTENT_OUTPUT], outs[TAG_OUTPUT], outs.get(FRAME_OUTPUT)))
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError):
        return None


def _lengths(keys: List[str], longest: int) -> List[Tuple[int, str]]:
    """(length, signature key) of a model's length signatures, shortest first: `serve` is
    `longest` tokens long, `serve_<n>` n (other signatures are not lengths)."""
    out = []
    for key in keys:
        if key == SIGNATURE:
            out.append((longest, key))
        elif key.startswith(SIGNATURE + "_") and key[len(SIGNATURE) + 1:].isdigit():
            n = int(key[len(SIGNATURE) + 1:])
            if 0 < n < longest:
                out.append((n, key))
    return sorted(out)
