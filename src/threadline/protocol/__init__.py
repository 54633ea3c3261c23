"""Wire-level facts shared by the server and the SDK.

Nothing here does I/O: JSON models (:mod:`.wire`), raw identifiers (:mod:`.ids`),
error codes (:mod:`.errors`), API versions (:mod:`.versions`), the time
format (:mod:`.times`) and the bounded parsers of request input (:mod:`.inputs`).
"""
