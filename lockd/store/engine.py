"""Storage: one interface (`Store`), two engines. SQLite (lockd/store/sqlite.py)
is the embedded zero-setup default; PostgreSQL (lockd/store/postgres.py) is
for a team server. `make_store` picks one from `lockd serve --db` / LOCKD_DB."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from lockd.store.tx import Clock, Tx

T = TypeVar("T")


class Store(Protocol):
    """What the registry needs: sync `Tx` jobs, written in group commits."""

    path: str
    clock: Clock  # the time its transactions and the services over it record

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def write(
        self, job: Callable[[Tx], T], after: Callable[[T], None] | None = None
    ) -> T: ...
    async def read(self, job: Callable[[Tx], T]) -> T: ...
    async def reclaim(self) -> None: ...
    async def usage(self) -> dict[str, int]: ...
    async def memory(self) -> dict[str, int]: ...


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def make_store(db: str) -> Store:
    """A PostgresStore for a postgresql:// URL, else a SqliteStore at that path.
    psycopg is imported only when asked for, so SQLite users never load it."""
    if is_postgres(db):
        from lockd.store.postgres import PostgresStore

        return PostgresStore(db)
    from lockd.store.sqlite import SqliteStore

    return SqliteStore(db)
