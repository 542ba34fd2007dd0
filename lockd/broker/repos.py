"""Repo ids over the store: every key a checkout is known by, kept as an alias
of one repo id (lockd.core.repos decides which), so that every route speaks
of a repo by the same id however a checkout names it today.

An alias, once kept, never changes: memory can cache every one it has seen,
and on a shared store (other brokers add aliases too) a key memory does not
know is looked up in the database, once it is known there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockd.core import repos as rules
from lockd.core.errors import invalid

if TYPE_CHECKING:
    from lockd.store.engine import Store
    from lockd.store.tx import Tx


class RepoIds:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.aliases: dict[str, str] = {}
        self.shared = bool(getattr(store, "shared", False))

    async def load(self) -> None:
        self.aliases = await self.store.read(lambda tx: tx.repo_aliases())

    async def canonical(self, repo_id: str) -> str:
        """The repo a key names: itself if no checkout has named it yet."""
        repo = self.aliases.get(repo_id)
        if repo is None and self.shared:
            found = await self.store.read(lambda tx: tx.repo_aliases([repo_id]))
            self.aliases.update(found)
            repo = found.get(repo_id)
        return repo or repo_id

    async def link(self, repo_id: str, keys: list[str]) -> str:
        """The repo of a checkout that gives `repo_id` and all its `keys`; keys
        not known yet are kept as its aliases. Most calls (every commit's hook)
        know every key already and write nothing."""
        if len(keys) > rules.MAX_KEYS:
            raise invalid(f"{len(keys)} repo keys; a checkout has at most {rules.MAX_KEYS}")
        wanted = list(dict.fromkeys([*keys, repo_id]))
        if all(k in self.aliases for k in wanted):
            return rules.unify(repo_id, keys, self.aliases)[0]

        def write(tx: Tx) -> dict[str, str]:
            known = tx.repo_aliases(wanted)  # what any broker kept, under the write lock
            _repo, new = rules.unify(repo_id, keys, known)
            tx.add_repo_aliases(new)
            return {**known, **new}

        self.aliases.update(await self.store.write(write))
        return rules.unify(repo_id, keys, self.aliases)[0]
