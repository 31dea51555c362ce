"""Dependencies of the routes: the database, a read connection, the clock, and the mapping of service
exceptions to HTTP statuses (conflicts 409, unknown jobs 404)."""

from __future__ import annotations

from typing import Callable, Iterator, TypeVar

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Connection

from lut_server.clock import Clock
from lut_server.db import Database
from lut_server.spaces import SpaceConflict
from lut_server.store.jobs import JobConflict, JobNotFound

T = TypeVar("T")


def get_db(request: Request) -> Database:
    return request.app.state.db


def read_conn(db: Database = Depends(get_db)) -> Iterator[Connection]:
    with db.read() as conn:
        yield conn


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


Db = Depends(get_db)
ReadConn = Depends(read_conn)
Now = Depends(get_clock)


def write(db: Database, fn: Callable[[Connection], T]) -> T:
    """One write transaction (retried on deadlock/serialization failure), conflicts mapped to HTTP."""
    try:
        return db.transact(fn)
    except JobNotFound as e:
        raise HTTPException(404, str(e)) from None
    except (JobConflict, SpaceConflict) as e:
        raise HTTPException(409, str(e)) from None


__all__ = ["Db", "Now", "ReadConn", "write"]
