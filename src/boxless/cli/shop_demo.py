"""The demo's shop: "Bob's Coffee", a bot account run by ``boxless demo`` (issue 16).

Bob owns the shop: the Coffee mini app (``examples/coffee/app``) is signed with
Bob's identity and names the shop bot's account as its backend. The bot
(``examples/coffee/bot.py``, on the bot SDK) runs headless on its own light node,
with an escrow contract deployed on the demo's anvil when there is one. It asks
Alice to be a contact (the demo accepts for her, as it does Bob's request) and
sends her the signed bundle as a ``.boxapp`` attachment: the app card she
installs from the chat to order a coffee.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import trio

from boxless.bot import Bot
from boxless.chat.requests import ContactEvent
from boxless.cli.demo_chain import DemoChain
from boxless.client.core import Client
from boxless.client.transport import LightTransport
from boxless.errors import ConfigError
from boxless.identity.account import create_account
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from boxless.node.light import LightNode

SHOP_NAME = "Bob's Coffee"
CAPTION = "Bob's Coffee: install the app from this card and order a coffee."


def examples_dir() -> Path:
    """The source tree's ``examples/`` (the demo runs from a checkout)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "examples" / "coffee" / "app" / "manifest.json").is_file():
        raise ConfigError(f"the shop needs the source tree's examples/ (not found under {root})")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root / "examples"


def coffee_bundle(developer: Identity, bot_key: bytes) -> bytes:
    """The Coffee app, its manifest naming ``developer`` and ``bot_key``, signed."""
    from boxless.miniapps.bundle import pack_files

    app_dir = examples_dir() / "coffee" / "app"
    files = {p.name: p.read_bytes() for p in sorted(app_dir.iterdir()) if p.is_file()}
    manifest: dict[str, Any] = json.loads(files["manifest.json"])
    manifest.update(developer=developer.public_key.hex(), bot=bot_key.hex())
    files["manifest.json"] = json.dumps(manifest, indent=1).encode()
    return pack_files(files, developer)


async def _wait(check: Any, timeout: float = 60) -> None:
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110  (demo setup: a few polls, then done)
            await trio.sleep(0.1)


async def start_shop(
    nursery: trio.Nursery,
    base: Path,
    service_peers: list[str],
    alice: Client,
    bob: Client,
    chain: DemoChain | None,
) -> Client:
    """Run the shop bot and share the Coffee app with Alice; the bot's client."""
    from boxless.cli.attachment_commands import start_blobs
    from boxless.client.attachment_transfer import FileInfo
    from boxless.client.escrow import Escrow

    examples_dir()  # puts the source tree on the path for:
    from examples.coffee import bot as coffee
    home = base / "shop"
    account = create_account(
        home,
        secrets.token_urlsafe(16),
        Identity.from_phrase(generate_phrase()),
        Profile(display_name=SHOP_NAME),
        time.time(),
    )
    light = LightNode(home / "node", service_peers)
    await nursery.start(light.run)
    client: Client = await nursery.start(Client(account, LightTransport(light)).run)
    await start_blobs(nursery, client, light.host, home, service_peers)
    escrow = None
    if chain is not None and chain.anvil is not None:
        await trio.to_thread.run_sync(chain.set_up, [client])
        from boxless.bot.chain import wallet_signer

        escrow = await trio.to_thread.run_sync(lambda: Escrow.deploy(wallet_signer(account)))
        print(f"{SHOP_NAME}: escrow contract at 0x{escrow.address.hex()}", flush=True)
        from boxless.client.miniapp_pay import set_escrow_address

        # Alice's mini apps pay into it (as `boxless wallet escrow 0x…` would set)
        set_escrow_address(alice.db, escrow.signer.rpc.chain_id, escrow.address)
    await nursery.start(Bot(coffee.app, client, escrow=escrow).run)
    await client.add_contact(alice.account.contact_code(time.time()).link, "Hi, it's Bob's Coffee")
    await _wait(lambda: any(c.identity_key == client.me for c in alice.contacts()))
    await alice.respond(client.me, ContactEvent.ACCEPT)
    await _wait(lambda: any(c.state == "accepted" for c in client.contacts()))
    data = coffee_bundle(bob.account.identity, client.me)

    async def chunks() -> Any:
        yield data

    await client.attachments.send(
        alice.me, [(chunks(), FileInfo("bobs-coffee.boxapp"))], caption=CAPTION
    )
    return client
