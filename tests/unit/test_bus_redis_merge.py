"""The Redis consumer's merge order, without Redis: entry-id order across a partition's topic
streams, up to the horizon of what is still unread, with pending entries merged in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trackd.bus.base import Message
from trackd.bus.redis.merge import MergeOrder, id_key

REQUESTS = "p:action-requests:0"
SYSTEM = "p:system-events:0"
RESULTS = "p:action-results:0"


def entry(stream: str, ms: int) -> tuple[str, Message]:
    entry_id = f"{ms}-0"
    return entry_id, Message(f"0:{entry_id}", stream.split(":")[1], f"{stream}@{ms}".encode())


def read(merge: MergeOrder, count: int, **by_stream: list[int]) -> None:
    """One read of the streams named (keyword = stream's topic) returning these ids."""
    streams = {REQUESTS: "requests", SYSTEM: "system", RESULTS: "results"}
    returned = {
        s: [entry(s, ms) for ms in by_stream[name]]
        for s, name in streams.items()
        if name in by_stream
    }
    merge.add_read(list(returned), count, returned)


def bodies(out: list[tuple[str, Message]]) -> list[bytes]:
    return [m.body for _, m in out]


def take_all(merge: MergeOrder) -> list[tuple[str, Message]]:
    return merge.take(10_000, lambda _s, _m: True)


def read_to_the_end(
    merge: MergeOrder, streams: dict[str, list[int]], cursor: dict[str, int], count: int
) -> list[tuple[str, Message]]:
    """Read COUNT at a time from `cursor` on, as the consumer does, taking all that is ready
    after each read, until every stream is read (one read per entry, and two more)."""
    out: list[tuple[str, Message]] = []
    for _ in range(sum(len(v) for v in streams.values()) + 2):
        readable = merge.readable(streams)
        returned = {
            s: [entry(s, ms) for ms in streams[s][cursor[s] : cursor[s] + count]] for s in readable
        }
        for s in readable:
            cursor[s] += len(returned[s])
        merge.add_read(readable, count, returned)
        out += take_all(merge)
    return out


def test_a_dense_streams_read_is_held_beyond_the_sparse_streams_horizon() -> None:
    merge = MergeOrder()
    # COUNT 3: the progress stream is cut short at id 3 (more may follow), the result
    # stream is caught up; the result at 5 must wait for progress 4, still unread.
    read(merge, 3, system=[1, 2, 3], results=[5])
    assert bodies(take_all(merge)) == [f"{SYSTEM}@{i}".encode() for i in (1, 2, 3)]
    assert merge.holding
    assert merge.readable([SYSTEM, RESULTS]) == [SYSTEM, RESULTS]
    read(merge, 3, system=[4, 6], results=[])
    assert bodies(take_all(merge)) == [
        f"{SYSTEM}@4".encode(),
        f"{RESULTS}@5".encode(),
        f"{SYSTEM}@6".encode(),
    ]
    assert not merge.holding and not merge.has_ready


def test_a_stream_read_beyond_the_horizon_is_not_read_again_until_it_is_reached() -> None:
    merge = MergeOrder()
    read(merge, 2, system=[1, 2], results=[7, 9])
    assert merge.horizon() == (2, 0)
    # results is held up to 9 and the horizon is 2: reading it again would hold more.
    assert merge.readable([SYSTEM, RESULTS]) == [SYSTEM]


def test_pending_entries_of_a_dead_owner_merge_with_new_ones_by_id() -> None:
    """The dead owner had read results further than requests: its pending result (id 10)
    must not overtake the request (id 8) it never read."""
    merge = MergeOrder()
    entry_id, result = entry(RESULTS, 10)
    merge.add_pending([(RESULTS, entry_id, result)])
    assert not merge.has_ready
    read(merge, 5, requests=[8, 12])
    assert bodies(take_all(merge)) == [
        f"{REQUESTS}@8".encode(),
        f"{RESULTS}@10".encode(),
        f"{REQUESTS}@12".encode(),
    ]


def test_an_entry_with_nothing_to_deliver_counts_towards_count_and_the_cut() -> None:
    merge = MergeOrder()
    deleted: list[tuple[str, Message | None]] = [("2-0", None)]
    merge.add_read([SYSTEM], 2, {SYSTEM: [entry(SYSTEM, 1), *deleted]})
    assert merge.horizon() == (2, 0)
    assert bodies(take_all(merge)) == [f"{SYSTEM}@1".encode()]


def test_take_keeps_unusable_entries_ready_in_order_ahead_of_the_rest() -> None:
    merge = MergeOrder()
    read(merge, 10, system=[1, 3], results=[2, 4])
    first = merge.take(10, lambda stream, _m: stream == SYSTEM)
    assert bodies(first) == [f"{SYSTEM}@1".encode(), f"{SYSTEM}@3".encode()]
    assert bodies(merge.take(1, lambda _s, _m: True)) == [f"{RESULTS}@2".encode()]
    assert bodies(take_all(merge)) == [f"{RESULTS}@4".encode()]


def test_forget_drops_only_the_streams_given() -> None:
    merge = MergeOrder()
    read(merge, 2, system=[1, 2], results=[3])
    dropped = merge.forget({SYSTEM})
    assert sorted(m.body for m in dropped) == [f"{SYSTEM}@1".encode(), f"{SYSTEM}@2".encode()]
    assert merge.horizon() is None  # the cut of a forgotten stream goes with it
    assert bodies(take_all(merge)) == []  # results@3 stays held until the next read
    read(merge, 2, results=[])
    assert bodies(take_all(merge)) == [f"{RESULTS}@3".encode()]
    assert merge.forget() == []


def test_id_key_orders_ids_numerically() -> None:
    assert id_key("10-0") > id_key("9-5") > id_key("9-0") == id_key("9")


# Cheap: a few dozen small ints split over three streams.
@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(st.integers(1, 10_000), min_size=0, max_size=40, unique=True),
    assignment=st.lists(st.sampled_from([REQUESTS, SYSTEM, RESULTS]), min_size=40, max_size=40),
    count=st.integers(1, 5),
    pending=st.integers(0, 40),
)
def test_reading_count_at_a_time_hands_everything_out_in_id_order(
    ids: list[int], assignment: list[str], count: int, pending: int
) -> None:
    """Whatever the streams' densities and COUNT, and whichever entries were left pending by
    an earlier owner, every entry is handed out once, in id order."""
    ordered = sorted(ids)
    streams: dict[str, list[int]] = {REQUESTS: [], SYSTEM: [], RESULTS: []}
    for ms, stream in zip(ordered, assignment, strict=False):
        streams[stream].append(ms)
    merge = MergeOrder()
    # What an earlier owner had read (the first `pending` of each stream) comes back pending.
    cursor = {s: min(pending, len(v)) for s, v in streams.items()}
    merge.add_pending((s, *entry(s, ms)) for s, v in streams.items() for ms in v[: cursor[s]])
    out = read_to_the_end(merge, streams, cursor, count)
    assert [int(m.id.split(":")[1].split("-")[0]) for _, m in out] == ordered
    assert not merge.holding and not merge.has_ready


OTHER_SYSTEM = "p:system-events:1"


def _partition(stream: str) -> str:
    return stream.rsplit(":", 1)[1]


def test_each_partition_holds_back_only_its_own_entries() -> None:
    merge = MergeOrder(_partition)
    # Partition 0's progress stream is cut short at 2; partition 1 is caught up: its later
    # entries need not wait for partition 0's unread ones.
    returned = {
        SYSTEM: [entry(SYSTEM, 1), entry(SYSTEM, 2)],
        RESULTS: [entry(RESULTS, 5)],
        OTHER_SYSTEM: [entry(OTHER_SYSTEM, 3), entry(OTHER_SYSTEM, 9)],
    }
    merge.add_read([SYSTEM, RESULTS, OTHER_SYSTEM], 2, returned)
    # Partition 1 was cut short too (a full COUNT): its horizon is its own last id, 9.
    assert merge.horizon(SYSTEM) == (2, 0) and merge.horizon(OTHER_SYSTEM) == (9, 0)
    assert bodies(take_all(merge)) == [
        f"{SYSTEM}@1".encode(),
        f"{SYSTEM}@2".encode(),
        f"{OTHER_SYSTEM}@3".encode(),
        f"{OTHER_SYSTEM}@9".encode(),
    ]
    # The result at 5 is held, but its stream was caught up: it may be read again.
    assert merge.holding
    assert merge.readable([SYSTEM, RESULTS, OTHER_SYSTEM]) == [SYSTEM, RESULTS, OTHER_SYSTEM]
    merge.add_read([SYSTEM, RESULTS, OTHER_SYSTEM], 2, {SYSTEM: [entry(SYSTEM, 4)]})
    assert bodies(take_all(merge)) == [f"{SYSTEM}@4".encode(), f"{RESULTS}@5".encode()]
    assert not merge.holding


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(st.integers(1, 10_000), min_size=0, max_size=60, unique=True),
    assignment=st.lists(
        st.sampled_from([REQUESTS, SYSTEM, RESULTS, OTHER_SYSTEM, "p:action-results:1"]),
        min_size=60,
        max_size=60,
    ),
    count=st.integers(1, 5),
)
def test_per_partition_horizons_keep_each_partitions_id_order(
    ids: list[int], assignment: list[str], count: int
) -> None:
    """Read COUNT at a time over two partitions: every entry once, each partition's in id
    order."""
    streams: dict[str, list[int]] = {s: [] for s in set(assignment)}
    for ms, stream in zip(sorted(ids), assignment, strict=False):
        streams[stream].append(ms)
    merge = MergeOrder(_partition)
    cursor = dict.fromkeys(streams, 0)
    out = read_to_the_end(merge, streams, cursor, count)
    assert sorted(m.body for _, m in out) == sorted(
        f"{s}@{ms}".encode() for s, v in streams.items() for ms in v
    )
    for part in ("0", "1"):
        got = [int(m.id.split(":")[1].split("-")[0]) for s, m in out if _partition(s) == part]
        assert got == sorted(got)
    assert not merge.holding and not merge.has_ready
