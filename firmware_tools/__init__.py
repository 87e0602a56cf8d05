"""firmware_tools: get edge-slm bundles onto devices (signing, serial flashing, OTA, TFLM export).

Importing this package has no side effects.
"""

__version__ = "0.1.0"
