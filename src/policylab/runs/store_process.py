"""The store side of a run in its own process: `python -m policylab.runs.store_process`.

Reads length-prefixed JSON messages on stdin and answers on stdout (see `store_link.py`):
`init` → `ready`, `page` → `page`, `write` → `written` (after the commit), `close` → `closed`.
It ignores SIGINT and SIGTERM, which reach the whole process group when a user stops the run: the
parent decides when to stop and closes stdin. If the parent dies (even by `kill -9`), stdin ends and
every batch already received is committed before this process exits.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import IO, Any

import orjson

from policylab.runs.store_link import FRAME_HEADER, LinkConfig, StoreSide
from policylab.store.db import make_engine


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    size = FRAME_HEADER.unpack(header)[0]
    body = stream.read(size)
    if len(body) < size:
        return None
    return orjson.loads(body)


def _reply(stream: IO[bytes], message: list[Any]) -> None:
    blob = orjson.dumps(message)
    stream.write(FRAME_HEADER.pack(len(blob)) + blob)
    stream.flush()


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    side: StoreSide | None = None
    while (message := _read(inp)) is not None:
        kind = message[0]
        try:
            if kind == "init":
                side = StoreSide(make_engine(message[1]), LinkConfig(**message[2]))
                _reply(out, ["ready"])
            elif kind == "page":
                assert side is not None
                _reply(out, ["page", side.page(message[1], message[2])])
            elif kind == "write":
                assert side is not None
                side.write(message[1], message[2])
                _reply(out, ["written"])
            elif kind == "close":
                _reply(out, ["closed"])
                return
        except BrokenPipeError:
            return  # the parent is gone; what was received is committed
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            _reply(out, ["error", f"{type(exc).__name__}: {exc}"])
            return


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
