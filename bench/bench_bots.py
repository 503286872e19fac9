"""Mini-app bridge round trip to a bot, through two service nodes on loopback.

One process: service nodes S1–S2 (relay, store, filter, light push), Alice on
S1 and the shop bot (Bob's Coffee on the bot SDK) on S2 as light clients with
their own encrypted databases. Alice has the Coffee app installed (its manifest
names the bot) and sends N ``menu`` requests one after another, as the web
UI's bridge does for ``backend.request``; each one's latency is from
``send_app_message`` until her client emits the bot's ``app_message`` response:
Olm + light push → relay → filter → the bot decrypts, its inbox and handler,
Olm + light push back → Alice decrypts. (The browser's postMessage hop and the
local API call around it add well under a millisecond and are not in it.)

    python bench/bench_bots.py [-n 200]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopback import latency_main, two_light_clients  # noqa: E402

from boxless.bot import Bot  # noqa: E402
from boxless.bot.inbox import Limits  # noqa: E402
from boxless.cli.shop_demo import coffee_bundle  # noqa: E402
from boxless.identity.keys import Identity  # noqa: E402
from examples.coffee import bot as coffee  # noqa: E402


async def run(base: Path, n: int) -> list[float]:
    lat: list[float] = []
    async with trio.open_nursery() as nursery:
        async with two_light_clients(nursery, base, "alice", "shop") as (alice, shop):
            # a latency bench, not a flood: above the per-user rate (5/s) the inbox would
            # drop requests once the round trip is under 200 ms
            limits = Limits(rate=1000.0, burst=1000)
            await nursery.start(Bot(coffee.app, shop, limits=limits).run)
            await alice.add_contact(shop.account.contact_code(time.time()).link)
            with trio.fail_after(30):  # the bot accepts by itself
                while not alice.contacts() or alice.contacts()[0].state != "accepted":  # noqa: ASYNC110
                    await trio.sleep(0.05)
            alice.miniapps.install(
                coffee_bundle(Identity.from_private_bytes(os.urandom(32)), shop.me)
            )
            payload = json.dumps({"op": "menu"}).encode()
            async with alice.events() as events:
                for _ in range(n):
                    rid = os.urandom(16)
                    t0 = time.perf_counter()
                    await alice.miniapps.send_app_message(
                        shop.me, coffee.APP_ID, "request", rid, payload
                    )
                    with trio.fail_after(30):
                        while True:
                            e = await events.receive()
                            if e.type == "app_message" and e.request_id == rid.hex():
                                break
                    lat.append((time.perf_counter() - t0) * 1000)
        nursery.cancel_scope.cancel()
    return lat


def main() -> None:
    latency_main(run, "requests", (50, 90, 99))


if __name__ == "__main__":
    main()
