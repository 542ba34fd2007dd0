"""Other brokers on one database (the feed: lockd/store/postgres.py): what
they committed, applied here. Messages are pushed to the streams held here;
peers, claims and tokens they changed are re-read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from lockd.broker.intents import IntentRegistry
from lockd.broker.messaging import Mailbox
from lockd.broker.peers import PeerDirectory, Publish
from lockd.broker.service import PeerService
from lockd.core import feed


class Replica(PeerService):
    def __init__(
        self, directory: PeerDirectory, mailbox: Mailbox, intents: IntentRegistry, publish: Publish
    ) -> None:
        super().__init__(directory, mailbox, intents, publish)
        # Set by whoever keeps users' tokens: re-read them when another broker changed them.
        self.on_users_changed: Callable[[], Awaitable[None]] | None = None

    async def apply_change(self, change: feed.Change) -> None:
        """What another broker committed: push its messages to the streams held
        here, and re-read the peers, claims or tokens it changed."""
        if isinstance(change, feed.MessageSent):
            await self._sent_elsewhere(change)
        elif isinstance(change, feed.PeerChanged):
            found = await self.store.read(lambda tx: tx.load_peer(change.peer_id))
            if found is not None:
                self.directory.remember(*found)
        elif isinstance(change, feed.ClaimPut | feed.ClaimDropped):
            await self.intents.apply(change)
            self.publish("claims", repo=change.repo_id, event="changed elsewhere")
        elif isinstance(change, feed.TokensChanged) and self.on_users_changed is not None:
            await self.on_users_changed()

    async def _sent_elsewhere(self, sent: feed.MessageSent) -> None:
        message, to = sent.message, sent.recipients
        if message is None or to is None:  # too big for the notice: the rows themselves
            found = await self.store.read(lambda tx: tx.message(sent.message_id))
            if found is None:
                return
            message, to = found[0], tuple(found[1])
        recipients = list(to)
        self.mailbox.push(message.as_dict(), recipients)
        if message.kind == "message":
            self.publish(
                "message",
                from_id=message.from_id,
                from_name=message.from_name,
                to=message.to,
                recipients=recipients,
                message_id=message.message_id,
            )

    async def resync(self) -> None:
        """After the change feed was down (notices may be lost): re-read all
        peers and claims, and re-push what streams held here have not had."""
        for peer, credential_hash in await self.store.read(lambda tx: tx.load_peers()):
            self.directory.remember(peer, credential_hash)
        await self.intents.reload()
        for peer_id in list(self.mailbox.streams):
            for message in await self.store.read(lambda tx, p=peer_id: tx.undelivered(p)):
                self.mailbox.push(message.as_dict(), [peer_id])
        if self.on_users_changed is not None:
            await self.on_users_changed()
