"""ChunkListing's policy (pure logic, a fake listing storage and clock): when a listing is taken again."""

from __future__ import annotations

from ebook2audio.jobstore import WAV_HEADER, ChunkListing, chunk_key


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _ListingStorage:
    """Only what ChunkListing uses: ``sizes(prefix)``, which takes ``cost`` seconds of the clock."""

    def __init__(self, clock: _Clock, cost: float) -> None:
        self.clock, self.cost = clock, cost
        self.blobs: dict[str, int] = {}
        self.prefixes: list[str] = []

    def sizes(self, prefix: str) -> dict[str, int]:
        self.prefixes.append(prefix)
        self.clock.now += self.cost
        return {k: v for k, v in self.blobs.items() if k.startswith(prefix)}


def test_a_listing_is_taken_again_only_for_a_missing_chunk_and_not_too_often() -> None:
    clock = _Clock()
    st = _ListingStorage(clock, cost=0.1)
    st.blobs = {chunk_key("s", "aa01"): 100, chunk_key("s", "bb02"): WAV_HEADER - 1, chunk_key("t", "cc03"): 100}
    listing = ChunkListing(st, "s", clock)  # type: ignore[arg-type]
    assert listing.has_all(["aa01"], 0.25, 7.5)
    assert st.prefixes == ["s/chunks/"] and listing.took == 0.1
    assert listing.has_all(["aa01"], 0.25, 7.5)  # found in the last listing: no request
    assert not listing.has_all(["bb02"], 0.25, 7.5)  # shorter than a WAV header: not done
    assert not listing.has_all(["cc03"], 0.25, 7.5)  # another session's chunk does not count
    assert len(st.prefixes) == 1  # both within 0.4 s (4 x the listing's 0.1 s) of the listing
    clock.now += 0.4
    st.blobs[chunk_key("s", "bb02")] = 100
    assert listing.has_all(["aa01", "bb02"], 0.25, 7.5)
    assert len(st.prefixes) == 2


def test_a_slow_listing_is_taken_less_often_but_within_the_cap() -> None:
    clock = _Clock()
    st = _ListingStorage(clock, cost=3.0)  # a long book on a slow server
    listing = ChunkListing(st, "s", clock)  # type: ignore[arg-type]
    assert not listing.has_all(["aa01"], 0.25, 7.5)
    clock.now += 7.0
    assert not listing.has_all(["aa01"], 0.25, 7.5)  # 4 x 3 s would be 12 s: capped at 7.5 s
    assert len(st.prefixes) == 1
    clock.now += 0.5
    st.blobs[chunk_key("s", "aa01")] = 100
    assert listing.has_all(["aa01"], 0.25, 7.5)
    assert len(st.prefixes) == 2
