"""Client-side pieces shared by :mod:`threadline.chat` and :mod:`threadline.identity`.

Identifiers, the HTTP call description and its error mapping, the azure-core
pipeline and token parsing. Nothing here is public API; the public names are
re-exported by the chat and identity packages.
"""
