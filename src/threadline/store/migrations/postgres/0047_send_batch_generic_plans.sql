-- threadline_send_batch (0046) always runs its statements with their cached generic plans.
--
-- PL/pgSQL keeps one plan per statement, but by default (plan_cache_mode = auto) the plan cache
-- plans a statement afresh for each call's values (a custom plan) whenever its estimates say that
-- pays; for some of this function's statements they say so, and it never does here: the inputs
-- are arrays of at most 32 sends (store/pg_send.py, MAX_BATCH), whose sizes the planner cannot see
-- in either plan. Planning them again on every call was about 5% of the function's instructions.
-- Plans decide how rows are found, never which: the locks (taken in id order by ORDER BY ... FOR
-- UPDATE), the rows written and the rows returned are the same.
--
-- Measured with PostgreSQL under callgrind, instructions per call of a batch of 32 sends, one busy
-- thread / 32 threads: with an event each 8.71M -> 8.36M / 10.59M -> 10.18M; without events
-- 7.04M -> 6.61M / 8.32M -> 7.82M. (force_custom_plan: 12.78M / 14.91M with events.)
ALTER FUNCTION threadline_send_batch(
    text[], text[], text[], text[], text[], text[], text[], text[], bigint[], text[], text[], text[], text[],
    bytea[], bigint[], int[], int
) SET plan_cache_mode = force_generic_plan;
