"""The dialect layer: a statement written once with ``?`` gets PostgreSQL's ``$n`` in the same order."""

from __future__ import annotations

from threadline.store import dialect, webhooks
from threadline.store.dialect import POSTGRES, SQLITE, VISIBLE_ACTIVITY, LogRead, Shared, numbered, thread_page


def test_numbered_rewrites_placeholders_in_order() -> None:
    assert numbered("SELECT 1 FROM t WHERE a = ? AND (b = ? OR c = ?) LIMIT ?") == (
        "SELECT 1 FROM t WHERE a = $1 AND (b = $2 OR c = $3) LIMIT $4"
    )
    assert numbered("SELECT count(*) FROM t") == "SELECT count(*) FROM t"
    assert numbered("a = ? AND b = ?", 3) == "a = $3 AND b = $4"


def test_every_shared_statement_has_both_forms_with_the_same_arguments() -> None:
    shared = {name: value for name, value in vars(dialect).items() if isinstance(value, Shared)}
    assert len(shared) == 18
    hooks = {name: value for name, value in vars(webhooks).items() if isinstance(value, Shared)}
    assert len(hooks) == 14
    for name, statement in {**shared, **hooks}.items():
        marks = statement.sqlite.count("?")
        assert marks > 0, name
        assert "$" not in statement.sqlite, name
        assert "?" not in statement.postgres, name
        assert [f"${n}" in statement.postgres for n in range(1, marks + 1)] == [True] * marks, name
        assert f"${marks + 1}" not in statement.postgres, name
        assert statement.postgres.startswith(statement.sqlite.split("?")[0]), name
    assert dialect.GET_ACCESS.postgres.endswith("p.user_id = $1 AND p.left_pos IS NULL WHERE t.id = $2")


def test_a_lock_clause_goes_to_postgres_only() -> None:
    statement = Shared.of("SELECT cursor FROM s WHERE id = ?", lock=" FOR UPDATE")
    assert statement.sqlite == "SELECT cursor FROM s WHERE id = ?"
    assert statement.postgres == "SELECT cursor FROM s WHERE id = $1 FOR UPDATE"
    assert webhooks.GET_CURSOR.postgres.endswith("WHERE id = $1 FOR UPDATE")


def test_a_log_read_is_one_partition_on_sqlite_and_each_partition_on_postgres() -> None:
    read = LogRead("SELECT e.position FROM events e WHERE {after} AND e.thread_id = ? ORDER BY e.position LIMIT ?")
    assert read.sqlite == (
        "SELECT e.position FROM events e WHERE e.position > ? AND e.thread_id = ? ORDER BY e.position LIMIT ?"
    )
    assert read.postgres(4) == (
        "SELECT x.* FROM unnest($1::bigint[]) WITH ORDINALITY AS b(after, k) CROSS JOIN LATERAL ("
        "SELECT e.position FROM events e WHERE e.position % 4 = b.k - 1 AND e.position > b.after "
        "AND e.thread_id = $2 ORDER BY e.position LIMIT $3) x ORDER BY x.position LIMIT $3"
    )
    assert read.postgres(4) is read.postgres(4)  # rendered once per partition count
    # the store's two reads: the user's recipient test takes the second argument, the limit the last
    assert "p.user_id = $2" in dialect.EVENTS_SINCE.postgres(32)
    assert dialect.EVENTS_SINCE.postgres(32).endswith("LIMIT $3) x ORDER BY x.position LIMIT $3")
    assert dialect.EVENTS_AFTER.postgres(32).endswith("LIMIT $2) x ORDER BY x.position LIMIT $2")
    assert dialect.EVENTS_AFTER.sqlite.count("?") == 2


def test_a_thread_page_is_one_statement_spelled_per_engine() -> None:
    sql, args = thread_page(SQLITE, "u", start_ms=5, limit=3, after=(9, "t"))
    assert args == ["u", 5, 9, 9, "t", 3]
    # the activity a member may know of (VISIBLE_ACTIVITY) filters, pages and orders the list
    seen = VISIBLE_ACTIVITY
    assert sql.endswith(
        f"AND {seen} >= ? AND ({seen} < ? OR ({seen} = ? AND t.id < ?)) ORDER BY {seen} DESC, t.id DESC LIMIT ?"
    )
    assert f"{seen} AS last_message_ms" in sql
    pg, pg_args = thread_page(POSTGRES, "u", start_ms=None, limit=3, after=None)
    assert pg_args == ["u", 3]
    assert pg.endswith(f'p.left_pos IS NULL ORDER BY {seen} DESC, t.id COLLATE "C" DESC LIMIT $2')
