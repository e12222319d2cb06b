"""The machine's floor under send-to-first-step on PostgreSQL: the same hops, no engine.

`wake_latency.py` measures our idle worker; on a small VM most of that time is the machine
waking sleeping processes, not our code. This measures the bare path in the same conditions,
interleaved with our samples: a sender commits one row in an autocommit INSERT, a statement
trigger NOTIFYs on commit, and a listener process (LISTEN on one connection, work on another,
as our worker does) claims the row with one `UPDATE ... FOR UPDATE SKIP LOCKED`. No Django, no
engine: the time from before the INSERT to the claim coming back. Our figure minus this one is
what the engine adds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CHANNEL = "bench_latency_floor"
TABLE = "bench_latency_floor"

_SETUP = [
    f"DROP TABLE IF EXISTS {TABLE}",
    f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, sent double precision NOT NULL, "
    "claimed boolean NOT NULL DEFAULT false)",
    f"CREATE OR REPLACE FUNCTION {TABLE}_notify() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$",
    f"CREATE TRIGGER {TABLE}_notify AFTER INSERT ON {TABLE} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_notify()",
]
_CLAIM = (
    f"UPDATE {TABLE} SET claimed = true WHERE id = (SELECT id FROM {TABLE} WHERE NOT claimed "
    "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING sent"
)


class Floor:
    """The sender's side: a table, a listener process, and one sample at a time.

    Args:
        params: psycopg connect() arguments for the bench database.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        import psycopg

        self._sender = psycopg.connect(**params, autocommit=True)
        for statement in _SETUP:
            self._sender.execute(statement)
        self._listener = subprocess.Popen(
            [sys.executable, "-m", "bench.latency_floor", json.dumps(params)],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._listener.stdout.readline().strip() != "listening":
            raise SystemExit("the floor's listener did not start")

    def sample(self) -> float:
        """Send one row; return milliseconds from before its INSERT to the listener's claim."""
        self._sender.execute(f"INSERT INTO {TABLE} (sent) VALUES (%s)", [time.perf_counter()])
        line = self._listener.stdout.readline()
        if not line:
            raise SystemExit("the floor's listener exited")
        return float(line)

    def close(self) -> None:
        """Stop the listener and drop the table."""
        self._listener.terminate()
        self._listener.wait(timeout=10)
        self._sender.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self._sender.close()


def listen(params: dict[str, Any]) -> None:
    """The listener process: claim each notified row, print its latency in ms to stdout."""
    import psycopg

    heard = psycopg.connect(**params, autocommit=True)
    work = psycopg.connect(**params, autocommit=True)
    heard.execute(f"LISTEN {CHANNEL}")
    print("listening", flush=True)
    for _ in heard.notifies():
        row = work.execute(_CLAIM).fetchone()
        if row is not None:
            # time.perf_counter is CLOCK_MONOTONIC, one clock for every process on the machine.
            print(f"{(time.perf_counter() - row[0]) * 1000:.3f}", flush=True)


if __name__ == "__main__":
    listen(json.loads(sys.argv[1]))
