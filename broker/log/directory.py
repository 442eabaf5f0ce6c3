"""Where other agents are: registered addresses, cached briefly, and the store's clock.

Leader lookups run per request for partitions this agent does not lead, so they must not cost
a metadata query for the address every time. Lease expiry is judged by the metadata store's
clock; the offset between it and ours is measured once per lease round, which keeps lookups to
one query (the lease itself).
"""

from __future__ import annotations

import time

from streamhouse.broker.metadata import AgentInfo, MetadataStore

ADDRESS_CACHE_S = 2.0  # addresses change only when an agent restarts elsewhere
MISS_REFRESH_S = 0.2  # an agent not in the cache may just have registered: look again soon


class AgentDirectory:
    """Addresses of registered agents and an estimate of the metadata store's clock."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._metadata = metadata
        self._addresses: dict[str, str] = {}
        self._fetched_at = float("-inf")
        self._clock_offset_ms = 0

    def store_now_ms(self) -> int:
        """The store's clock, estimated from ours and the last measured offset."""
        return int(time.time() * 1000) + self._clock_offset_ms

    async def sync_clock(self) -> int:
        """Measures the store's clock (one query) and returns it."""
        now = await self._metadata.now_ms()
        self._clock_offset_ms = now - int(time.time() * 1000)
        return now

    def remember(self, agents: list[AgentInfo]) -> None:
        """Adds addresses the caller has just read (keeps the cache fresh for free)."""
        self._addresses.update((a.agent_id, a.address) for a in agents)

    async def address(self, agent_id: str) -> str:
        """The agent's registered address; empty if it is not registered."""
        age = time.monotonic() - self._fetched_at
        if age > ADDRESS_CACHE_S or (agent_id not in self._addresses and age > MISS_REFRESH_S):
            agents = await self._metadata.list_agents()
            self._addresses = {a.agent_id: a.address for a in agents}
            self._fetched_at = time.monotonic()
        return self._addresses.get(agent_id, "")
