"""What runs on the device: decoding model outputs and resolving them against the home.

Needs only the standard library, numpy and a TFLite interpreter (never TensorFlow or PyTorch).
"""
