"""The real-time package's layering: one core, two wire protocols that do not know each other.

Read from the source with :mod:`ast`, so a stray import fails here rather
than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "threadline" / "server" / "realtime"
CORE = {"core", "cursor"}
NATIVE = {"native", "native_stream", "native_wire"}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, as dotted names relative to ``threadline.server.realtime``."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)]) if node.level > 1 else list(package)
                name = ".".join([*base, *(node.module.split(".") if node.module else [])])
                found.add(name)
                found.update(f"{name}.{alias.name}".lstrip(".") for alias in node.names)
            elif node.module and node.module.startswith("threadline.server.realtime"):
                name = node.module.removeprefix("threadline.server.realtime").lstrip(".")
                found.add(name)
                found.update(f"{name}.{alias.name}".lstrip(".") for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("threadline.server.realtime"):
                    found.add(alias.name.removeprefix("threadline.server.realtime").lstrip("."))
    return found


def _touches(imports: set[str], modules: set[str]) -> set[str]:
    return {name for name in imports if name.split(".")[0] in modules}


def test_the_core_knows_neither_protocol() -> None:
    for name in CORE:
        imports = _imports(ROOT / f"{name}.py")
        assert _touches(imports, NATIVE | {"browser"}) == set(), name


def test_the_protocols_do_not_know_each_other() -> None:
    for name in NATIVE:
        assert _touches(_imports(ROOT / f"{name}.py"), {"browser"}) == set(), name
    browser_files = sorted((ROOT / "browser").glob("*.py"))
    assert len(browser_files) >= 6
    for path in browser_files:
        imports = _imports(path)
        assert _touches(imports, NATIVE) == set(), path.name
        if path.stem in {"session", "manager"}:
            assert _touches(imports, CORE), path.name  # streams and checks come from the core


def test_both_protocols_build_on_the_core_stream() -> None:
    from threadline.server.realtime.browser.session import Session
    from threadline.server.realtime.core import Stream
    from threadline.server.realtime.native_stream import Connection

    assert issubclass(Connection, Stream) and issubclass(Session, Stream)
    for cls in (Connection, Session):
        assert "on_event" not in vars(cls) and "replay" not in vars(cls) and "fresh" not in vars(cls)
