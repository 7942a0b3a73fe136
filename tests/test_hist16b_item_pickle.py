"""Items cross the process boundary as pickles (``Item.__reduce__``: the constructor's arguments). Every field
survives the round trip, for every kind of item, with every pickle protocol."""

from __future__ import annotations

import pickle

import pytest

from veritensor_fast.findings import Item


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_item_round_trip_keeps_every_field(protocol: int) -> None:
    items = [
        Item("blob", "0" * 40, "dir/a.py", 12, "/repo"),
        Item("commit", "f" * 64, "commit:" + "f" * 64, 300, "/repo"),
        Item("file", "/t/x.bin", "x.bin", 5, "", dev=7, ino=9, follow=True),
        Item("dir", "/t/d", "d", 30, "", entries=(("a", 10, 1, 2), ("b\udcff", 20, 1, 3))),
        Item("file", "/t/y", "y"),
    ]
    back = pickle.loads(pickle.dumps(items, protocol=protocol))
    assert back == items
    assert all(type(b) is Item for b in back)
