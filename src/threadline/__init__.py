"""Threadline: a self-hostable chat service that speaks the ACS Chat wire protocol.

The server lives in :mod:`threadline.server`, the SDK in :mod:`threadline.chat`
(sync) and :mod:`threadline.chat.aio` (async), and the identity client in
:mod:`threadline.identity`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
