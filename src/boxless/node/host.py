"""Building the libp2p host a Waku node runs on.

Transports: TCP and WebSocket (``/ws``), chosen from the listen addresses; both
can share one port. Security: Noise only (py-libp2p also offers TLS, SECIO and
plaintext by default; SECIO and plaintext are insecure and Waku peers speak
Noise, so we offer nothing else). Muxers: yamux and mplex, both offered —
js-waku speaks mplex only, nwaku and go peers prefer yamux.
"""

from __future__ import annotations

from collections.abc import Sequence

import multiaddr
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport

from boxless.errors import ConfigError
from boxless.node.libp2p_shims import (
    ADDRESS_ERRORS,
    TrafficCounter,
    honour_muxer_classes,
    lift_leaking_limits,
    muxer_options,
)


def parse_multiaddrs(addrs: Sequence[str]) -> list[multiaddr.Multiaddr]:
    """Parse user-supplied multiaddrs, naming the one that is malformed."""
    out = []
    for text in addrs:
        try:
            out.append(multiaddr.Multiaddr(text))
        except ADDRESS_ERRORS as exc:
            raise ConfigError(f"not a valid multiaddr: {text!r} ({exc})") from exc
    return out


def build_host(
    key_pair: KeyPair,
    listen_addrs: Sequence[multiaddr.Multiaddr],
    *,
    prefer_mplex: bool = False,
    traffic: TrafficCounter | None = None,
) -> IHost:
    """Create (not start) a host; start it with ``host.run(listen_addrs)``.

    ``traffic``, if given, counts the bytes the host moves on its connections.
    """
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    sec_opt = {TProtocol(NOISE_PROTOCOL_ID): noise}
    muxers = muxer_options(prefer_mplex)
    host = new_host(
        key_pair=key_pair,
        sec_opt=sec_opt,
        muxer_opt=muxers,
        listen_addrs=_transport_probe_addrs(listen_addrs),
    )
    honour_muxer_classes(host, traffic)
    lift_leaking_limits(host)
    return host


# py-libp2p picks transports by inspecting the addresses given to new_host(), so
# a node listening on TCP alone could not dial a WebSocket peer and vice versa.
# We add a probe address of each missing kind. It is never listened on (the host
# listens on what is passed to host.run()); its unique loopback host keeps it
# out of py-libp2p's shared-port (TCP+WS on one port) detection.
_PROBE_TCP = multiaddr.Multiaddr("/ip4/127.255.255.254/tcp/0")
_PROBE_WS = multiaddr.Multiaddr("/ip4/127.255.255.254/tcp/0/ws")


def _is_ws(addr: multiaddr.Multiaddr) -> bool:
    return any(p.name in ("ws", "wss") for p in addr.protocols())


def _transport_probe_addrs(
    listen_addrs: Sequence[multiaddr.Multiaddr],
) -> list[multiaddr.Multiaddr]:
    addrs = list(listen_addrs)
    if not any(not _is_ws(a) for a in addrs):
        addrs.append(_PROBE_TCP)
    if not any(_is_ws(a) for a in addrs):
        addrs.append(_PROBE_WS)
    return addrs
