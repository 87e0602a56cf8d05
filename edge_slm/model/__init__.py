"""The small language model: tokenizer, teacher, student, distillation, pruning, calibration.

Needs the `train` extra (TensorFlow, PyTorch, tokenizers, transformers).
"""
