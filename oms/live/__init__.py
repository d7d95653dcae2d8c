"""Live order updates over Kraken's WebSocket v2 (``executions``): see ``docs/live.rst``.

:mod:`oms.live.stream` keeps one authenticated connection alive, :mod:`oms.live.events` parses
its entries and merges them into cached orders, :mod:`oms.live.follower` writes them to the
cache and hands them to strategy code, and :mod:`oms.live.sightings` lets a placement whose
answer was lost find its order on the stream. :meth:`oms.manager.OrderManager.follow` builds
them; nothing here imports ``websockets`` until a stream starts.
"""
