"""Linked devices: the sender's cost to a contact with 3 devices vs 1, and linking
a device with 30 days of history (5,000 messages).

Sender cost (CPU seconds per 1:1 message on the sender, network excluded): real
clients (SQLCipher databases) over the in-memory network; Bob's extra devices are
real certified devices in a roster Alice holds (as if fetched from his bundle
topic); each message goes through ``DirectChannel.send_contact``: Olm-encrypt
(an established session per device after the first message), seal, push — once
per device (fan-out).

Link: Alice's account holds 5,000 messages of the last 30 days with 50 contacts;
``DeviceManager.link`` (certify, snapshot, compress, Olm header + sealed chunks
published) and, on the new device, ``receive_link`` + account creation + snapshot
import, timed end to end (wall clock, both in this process).

    python bench/bench_devices.py [--messages 200] [--history 5000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import trio

from boxless.chat import envelope as env
from boxless.client import devices_store as dstore
from boxless.client import store as db
from boxless.client.core import Client
from boxless.client.devices import create_linked_account, receive_link
from boxless.client.devices_core import PendingDevice
from boxless.client.memory_transport import MemoryNetwork
from boxless.identity.account import LocalAccount, create_account, open_account
from boxless.identity.device_certs import DeviceLink, first_roster
from boxless.identity.keys import Device, Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from boxless.storage.userdb import KdfParams

FAST_KDF = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
PASS = "bench passphrase"


def _account(home: Path, name: str) -> tuple[LocalAccount, Identity]:
    now = time.time()
    identity = Identity.from_phrase(generate_phrase())
    create_account(
        home, PASS, identity, Profile(display_name=name, updated_at=int(now)), now, kdf=FAST_KDF
    ).close()
    return open_account(home, PASS), identity


def _contact(alice: Client, bob: LocalAccount) -> db.ContactRow:
    code = bob.contact_code(time.time())
    row = db.ContactRow(
        bob.identity.public_key, "Bob", code.to_bytes(), code.bundle.curve25519, "accepted", "",
        f"/boxless/1/chat-{os.urandom(16).hex()}/proto", None, 0, 0, 0,
    )  # fmt: skip
    with alice.db.transaction() as cur:
        db.put_contact(cur, row)
    return row


def _give_devices(alice: Client, bob: LocalAccount, bob_id: Identity, extra: int) -> None:
    """Alice holds Bob's roster with ``extra`` more certified devices and their bundles."""
    now = int(time.time())
    link = DeviceLink.issue(bob_id, bob.device.certificate, "Phone", "android", now)
    roster = first_roster(bob_id, link, now)
    bundles = []
    for i in range(extra):
        dev = Device.create(bob_id, now)
        roster = roster.with_device(
            bob_id, DeviceLink.issue(bob_id, dev.certificate, f"Laptop {i}", "linux", now), now
        )
        bundles.append(dev.bundle(now))
    with alice.db.transaction() as cur:
        dstore.put_roster(cur, roster, now * 1000)
        for b in bundles:
            dstore.put_device_bundle(cur, b)


async def sender_cost(root: Path, messages: int, devices: int) -> float:
    alice_acc, _ = _account(root / f"alice{devices}", "Alice")
    bob_acc, bob_id = _account(root / f"bob{devices}", "Bob")
    net = MemoryNetwork(max_drift_ns=None)
    alice = Client(alice_acc, net.transport("alice"), clock=time.time)
    contact = _contact(alice, bob_acc)
    _give_devices(alice, bob_acc, bob_id, devices - 1)
    payload = env.encode(env.new_message(env.Text("x" * 100), lamport=1, sent_at_ms=1))
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        await alice.channel.send_contact(contact, contact.conversation_topic, payload)  # sessions
        assert len(alice.devices.others(bob_id.public_key, contact.device_key)) == devices - 1
        t = time.process_time()
        for _ in range(messages):
            await alice.channel.send_contact(contact, contact.conversation_topic, payload)
        spent = time.process_time() - t
        nursery.cancel_scope.cancel()
    alice_acc.close()
    bob_acc.close()
    return spent / messages


def _history(client: Client, messages: int, contacts: int) -> None:
    now_ms = int(time.time() * 1000)
    keys = [os.urandom(32) for _ in range(contacts)]
    with client.db.transaction() as cur:
        for i, key in enumerate(keys):
            db.put_contact(
                cur,
                db.ContactRow(
                    key, f"Contact {i}", b"", os.urandom(32), "accepted", "",
                    f"/boxless/1/chat-{os.urandom(16).hex()}/proto", None, 0, 0, 0,
                ),
            )  # fmt: skip
        for n in range(messages):
            db.add_message(
                cur,
                db.MessageRow(
                    os.urandom(16), keys[n % contacts], n % 2 == 0, n,
                    now_ms - (n * 29 * 86_400_000) // messages, now_ms,
                    f"message {n}: " + "some ordinary words of a chat " * 2,
                    None, False, False, "read", {},
                ),
            )  # fmt: skip


async def link_time(root: Path, messages: int) -> tuple[float, int, int]:
    alice_acc, _ = _account(root / "alice-link", "Alice")
    net = MemoryNetwork(max_drift_ns=None)
    alice = Client(alice_acc, net.transport("alice"), clock=time.time)
    _history(alice, messages, 50)
    pending = PendingDevice.create("New laptop", "linux", time.time())
    frames: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        t = time.perf_counter()
        got = []
        done = trio.Event()

        async def new_device() -> None:
            got.append(await receive_link(net.transport("alice2"), pending, time.time))
            done.set()

        nursery.start_soon(new_device)
        await alice.devices.link(pending.offer.link)
        await done.wait()
        linked = got[0]
        account = create_linked_account(root / "alice2", PASS, linked, time.time(), kdf=FAST_KDF)
        rows = Client(account, net.transport("alice2b"), clock=time.time).devices.import_snapshot(
            linked.snapshot
        )
        spent = time.perf_counter() - t
        frames.append(len(linked.snapshot))
        with account.db.transaction() as cur:
            cur.execute("SELECT count(*) FROM client_messages")
            copied = int(cur.fetchone()[0])
        assert copied == messages, copied
        account.close()
        nursery.cancel_scope.cancel()
    alice_acc.close()
    return spent, rows, frames[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--history", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one = trio.run(sender_cost, root, args.messages, 1)
        three = trio.run(sender_cost, root, args.messages, 3)
        print(
            f"sender CPU per message: 1 device {one * 1000:.2f} ms, 3 devices {three * 1000:.2f} ms, ratio {three / one:.2f}"
        )
        spent, rows, size = trio.run(link_time, root, args.history)
        print(
            f"link with {args.history} messages: {spent:.2f} s ({rows} rows, snapshot {size / 1e6:.2f} MB)"
        )


if __name__ == "__main__":
    main()
