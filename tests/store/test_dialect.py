"""The dialect layer: a statement written once with ``?`` gets PostgreSQL's ``$n`` in the same order."""

from __future__ import annotations

from threadline.store import dialect
from threadline.store.dialect import Shared, numbered


def test_numbered_rewrites_placeholders_in_order() -> None:
    assert numbered("SELECT 1 FROM t WHERE a = ? AND (b = ? OR c = ?) LIMIT ?") == (
        "SELECT 1 FROM t WHERE a = $1 AND (b = $2 OR c = $3) LIMIT $4"
    )
    assert numbered("SELECT count(*) FROM t") == "SELECT count(*) FROM t"


def test_every_shared_statement_has_both_forms_with_the_same_arguments() -> None:
    shared = {name: value for name, value in vars(dialect).items() if isinstance(value, Shared)}
    assert len(shared) == 14
    for name, statement in shared.items():
        marks = statement.sqlite.count("?")
        assert marks > 0, name
        assert "$" not in statement.sqlite, name
        assert "?" not in statement.postgres, name
        assert [f"${n}" in statement.postgres for n in range(1, marks + 1)] == [True] * marks, name
        assert f"${marks + 1}" not in statement.postgres, name
    assert dialect.GET_ACCESS.postgres.endswith("p.user_id = $1 AND p.left_pos IS NULL WHERE t.id = $2")
