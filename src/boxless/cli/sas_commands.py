"""``boxless verify <contact> --emoji``: compare 7 emoji with a contact, through `boxless up`.

Starts a flow (or accepts the contact's request), waits for the emoji on the
event WebSocket, asks the user whether they match and waits for the result.
Every wait is bounded; giving up (or Ctrl-C) cancels the flow on both sides.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import trio

from boxless.cli.safe import plain
from boxless.errors import BoxlessError

if TYPE_CHECKING:
    from trio_websocket import WebSocketConnection

    from boxless.cli.api_client import Api

RUNNING = ("requested", "waiting", "compare", "confirmed")
ENDED = ("verified", "cancelled")
REASONS = {
    "user": "stopped",
    "mismatch": "the emoji did not match (or a check failed): someone may be in the middle",
    "timeout": "it took too long",
    "unexpected": "a message came out of order",
    "replaced": "another verification replaced it",
}


class _GaveUp(Exception):
    """The other side did not answer in time, or stdin ended: cancel the flow."""


def _say(text: str = "") -> None:
    """Print a line; it may carry the contact's name or reason, so made safe first."""
    print(plain(text), flush=True)


def _ended(flow: dict[str, Any], name: str) -> str:
    who = "You" if flow["by"] == "us" else name
    return f"Cancelled by {who}: {REASONS.get(flow['reason'], flow['reason'])}."


def _ask(question: str) -> bool | None:
    """y/n from stdin; None at end of input."""
    while True:
        print(f"{question} [y/n] ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return None
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False


async def emoji_verification(api: Api, key: str, name: str, wait: float) -> bool:
    """Run the flow with contact ``key``; True once verified. Cancelled if we give up."""
    from trio_websocket import open_websocket_url

    ws_url = api.url.replace("http://", "ws://") + f"/api/v1/events?token={api.token}"
    async with open_websocket_url(ws_url) as ws:
        try:
            return await _run(api, ws, key, name, wait)
        except _GaveUp:
            await _cancel(api, key)
            return False
        except BaseException:  # Ctrl-C: cancel on both sides, then stop
            with trio.CancelScope(shield=True):
                await _cancel(api, key)
            raise


async def _cancel(api: Api, key: str) -> None:
    flow = await _call(api, "GET", f"/contacts/{key}/sas")
    if flow["state"] in RUNNING:
        await _call(api, "POST", f"/contacts/{key}/sas/cancel")
        _say("Verification cancelled.")


async def _call(api: Api, method: str, path: str) -> Any:
    return await trio.to_thread.run_sync(api.call, method, path)


async def _run(api: Api, ws: WebSocketConnection, key: str, name: str, wait: float) -> bool:
    flow = await _call(api, "GET", f"/contacts/{key}/sas")
    if flow["state"] == "requested":
        _say(f"{name} asked to compare emoji: accepting.")
        flow = await _call(api, "POST", f"/contacts/{key}/sas/accept")
    elif flow["state"] not in RUNNING:
        flow = await _call(api, "POST", f"/contacts/{key}/sas")
        _say(f"Asked {name} to compare emoji. They accept on their device.")
    if flow["state"] == "waiting":
        _say(f"Waiting for {name}…")
    while True:
        flow = await _until(api, ws, key, ("requested", *ENDED, "compare", "confirmed"), wait)
        if flow is None:
            _say(f"{name} did not answer within {wait:.0f} s.")
            raise _GaveUp
        if flow["state"] != "requested":
            break
        _say(f"{name} started over: accepting.")  # their new flow replaced ours
        await _call(api, "POST", f"/contacts/{key}/sas/accept")
    if flow["state"] == "compare":
        _say(f"Compare these emoji with the ones {name} sees (in person or on a call):")
        for e in flow["emoji"]:
            _say(f"  {e['emoji']}  {e['name']}")
        _say("or these numbers: " + " ".join(f"{n:04d}" for n in flow["decimals"]))
        answer = await trio.to_thread.run_sync(
            _ask,
            "Do they match?",
            abandon_on_cancel=True,  # type: ignore[call-arg]  # trio-stubs predate it
        )
        if answer is None:
            raise _GaveUp
        try:
            step = "confirm" if answer else "mismatch"
            flow = await _call(api, "POST", f"/contacts/{key}/sas/{step}")
        except BoxlessError:  # the flow ended meanwhile: say how
            flow = await _call(api, "GET", f"/contacts/{key}/sas")
        if flow["state"] == "confirmed":
            _say(f"Waiting for {name} to confirm…")
            flow = await _until(api, ws, key, ENDED, wait)
            if flow is None:
                _say(f"{name} did not confirm within {wait:.0f} s.")
                raise _GaveUp
    if flow["state"] == "verified":
        _say(f"✔ {name} is verified. You will be warned if their keys ever change.")
        return True
    _say(_ended(flow, name))
    return False


async def _until(
    api: Api, ws: WebSocketConnection, key: str, states: tuple[str, ...], wait: float
) -> dict[str, Any] | None:
    """The flow once its state is one of ``states`` (None after ``wait`` seconds)."""
    with trio.move_on_after(wait):
        flow: dict[str, Any] = await _call(api, "GET", f"/contacts/{key}/sas")
        while flow["state"] not in states:
            event = json.loads(await ws.get_message())
            if event.get("type") == "verification" and event.get("contact") == key:
                flow = event
        return flow
    return None
