"""The vendored spec files are byte-identical to the shared contract, when it is present."""

from __future__ import annotations

import pytest

from .conftest import ROOT

SHARED = ROOT.parent / "shared" / "spec"


def test_vendored_spec_files_match_the_shared_contract() -> None:
    copies = sorted(p for p in (ROOT / "spec").rglob("*.json"))
    assert len(copies) == 3
    if not SHARED.exists():
        pytest.skip(f"the shared contract is not beside this checkout ({SHARED})")
    for copy in copies:
        original = SHARED / copy.relative_to(ROOT / "spec")
        assert copy.read_bytes() == original.read_bytes(), copy
