"""edge-slm: offline smart-home language understanding with tiny transformers.

Importing this package has no side effects and needs neither TensorFlow nor PyTorch.
"""

__version__ = "0.1.0"
