"""A shared room across two nodes behind nginx: presence and typing reach both, a removal ends the member's
socket wherever it is, and the sockets of a node killed with -9 stop counting once its liveness expires."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp

from tests.api import Account, Api
from tests.cluster.conftest import Cluster, running_cluster
from tests.fakes.groq import GroqFake
from tests.helpers import eventually
from tests.sio import Recorder

SESSIONS = "/api/v1/chat/sessions"
NODE_TTL = 2


def _here(recorder: Recorder) -> dict[str, int]:
    last = recorder.events["presence"][-1]["users"] if recorder.events["presence"] else []
    return {u["username"]: u["devices"] for u in last}


async def _on_other_node(cluster: Cluster, session_id: str, token: str) -> Recorder:
    """A socket on the node that does not hold the cluster's one socket so far (ip_hash by source address)."""
    for n in range(2, 40):
        candidate = await cluster.recorder(f"127.0.{n}.1", session_id, token, ["websocket"])
        if [await cluster.connections(node) for node in cluster.nodes] == [1, 1]:
            return candidate
        await candidate.close()
        cluster.recorders.remove(candidate)
        await asyncio.sleep(0.2)  # let the node count the disconnect
    raise AssertionError("ip_hash never picked the second node")


async def test_presence_typing_and_removal_across_nodes_behind_nginx(
    cluster_env: dict[str, str], http: aiohttp.ClientSession, tmp_path: Path, groq: GroqFake
) -> None:
    env = {**cluster_env, "PRESENCE_NODE_TTL_SECONDS": str(NODE_TTL)}
    async with running_cluster(env, http, tmp_path) as cluster:
        api = Api(cluster.url, cluster.http)
        olivia, max_, vera = [await api.register() for _ in range(3)]
        people: list[Account] = [olivia, max_, vera]
        session = await api.new_session(olivia, title="Across nodes")
        sid = session["id"]
        for person in people[1:]:
            invited = await api.call(
                "POST", f"{SESSIONS}/{sid}/members", {"username": person.username}, token=olivia.token
            )
            assert invited.status == 201, invited.body

        owner = await cluster.recorder("127.0.1.1", sid, olivia.token, ["websocket"])
        owners_node = await cluster.node_of(owner)
        member = await _on_other_node(cluster, sid, max_.token)
        both = {olivia.username: 1, max_.username: 1}
        await owner.wait_for(lambda: _here(owner) == both)
        await member.wait_for(lambda: _here(member) == both)
        await member.call("typing", {"is_typing": True})
        await owner.wait_for(lambda: any(t.get("username") == max_.username for t in owner.events["typing_indicator"]))

        # removed through nginx (whichever node takes the call): Max's socket ends with `removed`
        removed = await api.call("DELETE", f"{SESSIONS}/{sid}/members/{max_.id}", token=olivia.token)
        assert removed.status == 200
        await member.wait_for(lambda: any(e["code"] == "removed" for e in member.events["error"]))
        await owner.wait_for(lambda: _here(owner) == {olivia.username: 1})

        # Vera joins on the other node, which is then killed: her socket stops counting within the TTL
        guest = await _on_other_node(cluster, sid, vera.token)
        await owner.wait_for(lambda: _here(owner) == {olivia.username: 1, vera.username: 1})
        dying = next(node for node in cluster.nodes if node is not owners_node)
        dying.process.send_signal(signal.SIGKILL)
        await dying.process.wait()
        await guest.client.disconnect()  # the client side of the dead socket (Vera's browser would retry)

        async def ghost_gone() -> bool | None:
            probe = await cluster.recorder("127.0.1.1", sid, olivia.token, ["websocket"])  # olivia's node
            try:
                await probe.wait_for(lambda: bool(probe.events["presence"]))
                return True if _here(probe) == {olivia.username: 2} else None
            finally:
                await probe.close()
                cluster.recorders.remove(probe)

        await eventually(ghost_gone, seconds=30, every=NODE_TTL / 2)
