"""Boxless: a self-sovereign, private, peer-to-peer messenger on Waku v2."""

from boxless.errors import BoxlessError

__all__ = ["BoxlessError", "__version__"]
__version__ = "0.1.0"
