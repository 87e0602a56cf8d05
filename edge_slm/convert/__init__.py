"""Conversion of a trained student to TFLite (float, int8, int4) with a task-level gate."""
