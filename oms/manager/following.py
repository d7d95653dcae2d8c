"""Following orders live for one manager: where the stream connects, and the
:class:`~oms.live.follower.Follower` built from the manager's parts (see
:meth:`oms.manager.OrderManager.follow`)."""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from oms.cache import Group
from oms.client import KrakenClient
from oms.errors import ValidationError
from oms.manager.counts import RequestCounts
from oms.manager.lookup import OrderLookup
from oms.manager.timing import KrakenTime

if TYPE_CHECKING:  # loaded when a stream starts: a manager that never follows pays nothing
    from oms.live.follower import Follower, Subscription
    from oms.live.sightings import Sightings
    from oms.live.stream import StreamStatus
    from oms.models import Order

__all__ = ["WS_URL_ENV", "Following", "default_ws_url"]

#: The environment variable naming the WebSocket v2 URL (e.g. a sandbox's).
WS_URL_ENV = "OMS_WS_URL"


def default_ws_url(base_url: str) -> str:
    """Where the stream of the exchange at ``base_url`` is: ``$OMS_WS_URL`` if set, Kraken's
    authenticated endpoint for Kraken's REST host, a local sandbox's own WebSocket server
    (its admin API says where); any other exchange must be named."""
    named = os.environ.get(WS_URL_ENV)
    if named:
        return named
    host = urllib.parse.urlsplit(base_url).hostname or ""
    if host == "api.kraken.com":
        from oms.live.stream import KRAKEN_WS_AUTH_URL

        return KRAKEN_WS_AUTH_URL
    from oms.sandbox.server import admin_request, is_loopback_host

    if is_loopback_host(host):
        try:
            served = admin_request(base_url, "", timeout=5.0).get("ws_url")
        except (OSError, RuntimeError, ValueError, AttributeError):
            served = None
        if served:
            return str(served)
    raise ValidationError(
        f"which WebSocket v2 URL serves {base_url}? Pass ws_url= (a served sandbox has "
        f"sb.ws_url) or set {WS_URL_ENV}",
        field="ws_url",
        rule="ws-url",
    )


class Following:
    """The manager's live stream, started on the first :meth:`follow` and stopped with it."""

    def __init__(
        self,
        *,
        client: KrakenClient,
        cache: Any,
        time: KrakenTime,
        counts: RequestCounts,
        lookup: OrderLookup,
        sync: Callable[[Sequence[Order] | None], object],
        ws_url: str | None,
        stream_options: Mapping[str, Any] | None = None,
    ):
        self.client = client
        self.cache = cache
        self.time = time
        self.counts = counts
        self.lookup = lookup
        self.sightings: Sightings = lookup.sightings
        self._sync = sync
        self.ws_url = ws_url
        self.stream_options = dict(stream_options or {})
        self._follower: Follower | None = None
        self._unresolved: set[str] = set()
        self._lock = threading.Lock()

    @property
    def status(self) -> StreamStatus | None:
        follower = self._follower
        return None if follower is None else follower.status

    def _token(self) -> str:
        self.counts.add("GetWebSocketsToken")
        return self.client.websockets_token().token

    def _query(self, txids: Iterable[str]) -> list[Any]:
        found, _ = self.lookup.query_known(list(txids))
        return found

    def _pair(self, symbol: str) -> str | None:
        from oms.live.follower import rest_pair_name

        pairs = self.client.pairs

        def known(name: str) -> Any:
            return pairs.known(name)

        name = rest_pair_name(symbol, known)
        if name is None and symbol not in self._unresolved:
            # Learn every pair once (public AssetPairs), then name it; a symbol that stays
            # unknown is not asked about again (its orders are read through REST).
            pairs.learn(self.client.asset_pairs().values())
            name = rest_pair_name(symbol, known)
            if name is None:
                self._unresolved.add(symbol)
        return name

    def start(self) -> Follower:
        from oms.live.follower import Follower

        with self._lock:
            if self._follower is None:
                url = self.ws_url or default_ws_url(self.client.base_url)
                self._follower = Follower(
                    cache=self.cache,
                    url=url,
                    token=self._token,
                    now=self.time.local_now,
                    reconcile=self._sync,
                    query=self._query,
                    rest_pair=self._pair,
                    sightings=self.sightings,
                    stream_options=self.stream_options,
                )
                self._follower.start()
            return self._follower

    def follow(
        self,
        callback: Callable[[Any], object] | None,
        *,
        group: Group | int | None,
        userref: int | None,
        wait: float | None,
    ) -> Subscription:
        if group is not None and userref is not None:
            raise ValidationError("give group= or userref=, not both", field="group")
        chosen = group.userref if isinstance(group, Group) else group
        if userref is not None:
            chosen = userref
        follower = self.start()
        subscription = follower.subscribe(callback, userrefs=None if chosen is None else [chosen])
        if wait:
            follower.stream.wait_live(wait)
        return subscription

    def stop(self) -> None:
        with self._lock:
            follower, self._follower = self._follower, None
        if follower is not None:
            follower.stop()
