"""Visibility is enforced by the bus: blind judges and sealed simultaneous rounds."""

import time

import anyio
import pytest

from moot.agents.model_seat import ModelSeat
from moot.engine import Engine, EpisodeSpec
from moot.engine.bus import Bus, SeatSight
from moot.models.gateway import Model, ModelSettings
from moot.models.scripted import ScriptedModel
from moot.protocols import debate
from moot.transcript.events import EpisodeStarted, Message

pytestmark = pytest.mark.anyio

SOURCE = "The secret passage says the lighthouse was painted red in 1901."


def started(ep=0):
    return EpisodeStarted(
        episode=ep, question_id="q", question="What colour?", answers=("red", "blue"),
        correct=0, source=SOURCE, protocol="debate", assignments={"a": 0, "b": 1},
        seats={}, started_at=time.time(),
    )


SIGHT = {
    "a": SeatSight("debater", 0, sees_source=True),
    "b": SeatSight("debater", 1, sees_source=True),
    "judge": SeatSight("judge", None, sees_source=False),
}


def message(seq, seat, text, audience=None):
    return Message(0, seq, 1, "speeches", seat, "debater", 0, text, audience, time.time())


async def test_blind_judge_never_receives_the_source():
    bus = Bus()
    await bus.open_episode(started(), SIGHT)
    assert bus.view(0, "a").source == SOURCE
    assert bus.view(0, "judge").source is None


async def test_sealed_round_hides_speeches_until_released():
    bus = Bus()
    await bus.open_episode(started(), SIGHT)
    bus.seal(0)
    await bus.post(message(0, "a", "A's opening"))
    # B asks for its view after A has spoken, but inside the same simultaneous round.
    assert bus.view(0, "b").messages == ()
    assert bus.view(0, "judge").messages == ()
    bus.release(0)
    assert [m.content for m in bus.view(0, "b").messages] == ["A's opening"]


async def test_audience_limits_who_reads_a_message():
    bus = Bus()
    await bus.open_episode(started(), SIGHT)
    await bus.post(message(0, "a", "for the judge only", audience=frozenset({"judge"})))
    assert bus.view(0, "b").messages == ()
    assert [m.content for m in bus.view(0, "judge").messages] == ["for the judge only"]


async def test_subscribers_receive_every_event_in_order():
    bus = Bus()
    events = bus.subscribe(buffer=2)  # smaller than the stream: back-pressure, not loss
    received = []

    async def drain():
        async for e in events:
            received.append(e)

    async with anyio.create_task_group() as tg:
        tg.start_soon(drain)
        await bus.open_episode(started(), SIGHT)
        for i in range(10):
            await bus.post(message(i, "a", f"m{i}"))
        await bus.close()
    assert [type(e).__name__ for e in received] == ["EpisodeStarted"] + ["Message"] * 10
    assert [e.content for e in received[1:]] == [f"m{i}" for i in range(10)]


class Recorder:
    """A sink that keeps every model call's prompt, to see what each seat was shown."""

    def __init__(self, bus):
        self.bus = bus
        self.calls = []

    def next_call_seq(self, episode):
        return self.bus.next_call_seq(episode)

    async def publish(self, event):
        self.calls.append(event)
        await self.bus.publish(event)


async def run_debate(simultaneous: bool):
    bus = Bus()
    sink = Recorder(bus)
    # Debater B is slower, so in a sequential round it would see A's speech.
    fast = Model("scripted/a", ScriptedModel("scripted/a", replies=["SPEECH-FROM-A"]), ModelSettings(), sink)
    slow = Model("scripted/b", ScriptedModel("scripted/b", latency=0.01, replies=["SPEECH-FROM-B"]), ModelSettings(), sink)
    judge = Model("scripted", ScriptedModel(), ModelSettings(), sink)
    seats = {
        "debater_a": ModelSeat("debater_a", "debater", fast, temperature=0, max_tokens=50, seed=0),
        "debater_b": ModelSeat("debater_b", "debater", slow, temperature=0, max_tokens=50, seed=0),
        "judge": ModelSeat("judge", "judge", judge, temperature=0, max_tokens=5, seed=0),
    }
    protocol = debate.build(rounds=2, simultaneous=simultaneous).compile()
    engine = Engine(protocol, seats, bus, concurrency=1)
    await engine.run([EpisodeSpec(0, "q", "What colour?", ("red", "blue"), 0, SOURCE)])
    return sink.calls


def prompt(call):
    return "\n".join(m["content"] for m in call.request.messages)


async def test_engine_simultaneous_round_one_debater_never_sees_the_other_early():
    calls = await run_debate(simultaneous=True)
    by_seat = {}
    for c in calls:
        by_seat.setdefault(c.seat, []).append(prompt(c))
    a1, a2 = by_seat["debater_a"]
    b1, b2 = by_seat["debater_b"]
    assert "SPEECH-FROM-A" not in b1 and "SPEECH-FROM-B" not in a1
    assert "SPEECH-FROM-B" in a2 and "SPEECH-FROM-A" in b2  # released when round 1 closed
    (j,) = by_seat["judge"]
    assert SOURCE not in j and SOURCE in a1  # the judge is blind; debaters read the source
    assert "SPEECH-FROM-A" in j and "SPEECH-FROM-B" in j


async def test_engine_sequential_round_second_speaker_sees_the_first():
    calls = await run_debate(simultaneous=False)
    b1 = prompt(next(c for c in calls if c.seat == "debater_b"))
    assert "SPEECH-FROM-A" in b1
