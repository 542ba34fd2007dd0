"""Which repo a checkout is, as data: the keys a checkout is known by and how
the broker unifies them into one repo id. Pure: lockd.local.repo asks git for
the facts, lockd.broker.repos keeps the aliases.

A checkout is known by up to three keys, in the order they stay the same for
it: its git common dir (`gitdir:`; shared by its worktrees, never changed by
anything done in it), its root commit (`root:`; shared by every clone, absent
before the first commit) and its normalized `origin` (`git:`; shared by clones
of one remote, absent or changed at will). Two checkouts sharing any key are
one repo. The broker keeps each key it has seen as an alias of one repo id:
the first key it already knows names the repo, so adding a remote or making
the first commit adds an alias and never moves a live session's repo.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the git hook identifies its repo on every commit: typing stays out
    from collections.abc import Mapping

MAX_KEYS = 8  # a checkout has three; room for what later versions add


def repo_id_for(origin: str | None, common_dir: str | None, directory: str) -> str:
    """The id a checkout gives the broker when it meets it first (a readable
    one): origin beats common dir beats plain directory."""
    if origin:
        return "git:" + origin
    if common_dir:
        return "gitdir:" + common_dir
    return "dir:" + directory


def keys_of(
    common_dir: str | None, root_commit: str | None, origin: str | None, directory: str
) -> tuple[str, ...]:
    """Every key of one checkout, the steadiest first (see the module docstring)."""
    if not common_dir:
        return ("dir:" + directory,)
    keys = ["gitdir:" + common_dir]
    if root_commit:
        keys.append("root:" + root_commit)
    if origin:
        keys.append("git:" + origin)
    return tuple(keys)


def unify(repo_id: str, keys: list[str], known: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """(the repo these keys name, the new aliases to keep for it).

    The first of `keys` the broker knows names the repo; none known: `repo_id`,
    the id the checkout gave. Keys not yet known become aliases of it. A key
    already known for another repo stays with it: two repos the broker has
    known apart are not merged under the sessions and claims each holds."""
    ordered = list(dict.fromkeys([*keys, repo_id]))
    repo = next((known[k] for k in ordered if k in known), repo_id)
    return repo, {k: repo for k in ordered if k not in known}
