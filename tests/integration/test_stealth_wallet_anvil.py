"""Stealth receiving in the Wallet pane over the local API, on anvil: the meta-address
(and its QR), scanning an announcer in steps with the last block remembered, only our
announcements found (a stranger's and a forged one are not), a sweep only after the
user's confirm, to the wallet's main address, and not twice."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.client import stealth as stealth_mod
from boxless.payments.devnet import Anvil
from boxless.payments.evmcall import Signer, call_data
from boxless.payments.hdwallet import checksum_address
from boxless.payments.rpc import Rpc
from boxless.payments.stealth import MetaAddress, StealthKeys
from boxless.payments.stealth_chain import Announcer
from boxless.payments.store import ChainConfig, PaymentStore
from tests.asgi_api import api_client as _api
from tests.memnet_fixtures import memnet

pytestmark = pytest.mark.slow


async def _mined(check: Callable[[], bool]) -> None:
    """anvil mines every second (real time): wait for it, at most 15 s."""
    for _ in range(60):
        if await trio.to_thread.run_sync(check):
            return
        await trio.to_thread.run_sync(time.sleep, 0.25)
    raise AssertionError("not mined in 15 s")


async def test_stealth_address_scan_and_sweep(
    tmp_path: Path,
    anvil: Anvil,  # noqa: F811
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rpc = Rpc(anvil.url, anvil.chain_id)
    payer = Signer(rpc, secrets.token_bytes(32))
    rpc.call("anvil_setBalance", [checksum_address(payer.address), hex(10**20)])
    announcer = await trio.to_thread.run_sync(Announcer.deploy, payer)
    async with memnet(tmp_path, ("alice",)) as (_net, (alice,)), _api(alice.client) as api:
        info = (await api.get("/wallet/stealth")).json()
        keys = StealthKeys.from_seed(alice.account.keystore.load_wallet_seed())
        assert info["meta_address"] == keys.meta.uri() and "error" in info  # no chain yet
        PaymentStore(alice.client.db).set_chain(ChainConfig(anvil.url, anvil.chain_id, 1))
        r = await api.post("/wallet/stealth/scan")
        assert r.status_code == 400 and "announcer" in r.json()["error"]["message"]
        qr = await api.get("/wallet/stealth/qr.png")
        assert qr.status_code == 200 and qr.content.startswith(b"\x89PNG")
        r = await api.put("/wallet/stealth", json={"announcer": "0x" + announcer.address.hex()})
        assert r.status_code == 200 and r.json()["scanned_block"] == -1

        meta = MetaAddress.parse(info["meta_address"])
        stranger = StealthKeys.from_seed(secrets.token_bytes(64)).meta
        paid = [announcer.pay(meta, 10**17) for _ in range(2)]
        announcer.pay(stranger, 10**17)  # someone else's
        forged = call_data(  # a forged announcement to our address from an attacker
            "announce(uint256,address,bytes,bytes)",
            [1, paid[0].address, b"\x02" + secrets.token_bytes(32), b"\x00"],
        )
        payer.transact(announcer.address, forged)
        # the session's chain is shared with other tests: scan it in about five steps
        head = int(rpc.call("eth_blockNumber", []), 16)
        monkeypatch.setattr(stealth_mod, "SCAN_STEP", max(3, head // 5 + 1))

        steps, done = 0, False
        while not done and steps < 50:
            r = await api.post("/wallet/stealth/scan")
            assert r.status_code == 200, r.text
            done, steps = r.json()["done"], steps + 1
        assert done and steps > 1  # in steps, each remembering its last block
        head = r.json()["head"]
        info = (await api.get("/wallet/stealth")).json()
        assert info["scanned_block"] == head
        found = {f["address"] for f in info["found"]}
        assert found == {checksum_address(p.address) for p in paid}
        assert all(f["balance"] == "0.1" for f in info["found"])
        r = await api.post("/wallet/stealth/scan")  # nothing new: nothing rescanned
        assert r.json()["new"] == 0 and r.json()["done"]

        main = alice.client.payments.address()
        before = payer.balance(main)
        r = await api.post("/wallet/stealth/sweep", json={})
        assert r.status_code == 409  # never without the user's confirm
        r = await api.post("/wallet/stealth/sweep", json={"confirmed": True})
        assert r.status_code == 200, r.text
        assert r.json()["to"] == checksum_address(main) and len(r.json()["swept"]) == 2
        await _mined(lambda: payer.balance(main) > before + 19 * 10**16)  # 0.2 ETH - 2 fees
        info = (await api.get("/wallet/stealth")).json()
        assert all(f["swept"] and int(f["balance_wei"]) < 10**15 for f in info["found"])  # dust
        r = await api.post("/wallet/stealth/sweep", json={"confirmed": True})
        assert r.json()["swept"] == []
    rpc.close()
