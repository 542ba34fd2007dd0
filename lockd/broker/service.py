"""What the broker's services that act on peers, their messages and their claims
together (the sweeper, the replica) are built from: one constructor for them."""

from __future__ import annotations

from lockd.broker.intents import IntentRegistry
from lockd.broker.messaging import Mailbox
from lockd.broker.peers import PeerDirectory, Publish


class PeerService:
    def __init__(
        self, directory: PeerDirectory, mailbox: Mailbox, intents: IntentRegistry, publish: Publish
    ) -> None:
        self.directory = directory
        self.mailbox = mailbox
        self.intents = intents
        self.publish = publish
        self.store = directory.store
