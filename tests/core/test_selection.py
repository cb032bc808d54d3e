"""Selections (dastrax.core.rowfilter): masks equal numpy's, `&`/`|` bind as in pandas.eval,
chunk minima/maxima never rule out a chunk holding a matching row, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from dastrax.core.rowfilter import Selection, chunk_stats, chunks_may_match
from dastrax.errors import InvalidRequest

DTYPE = [("time", "i8"), ("area", "f4"), ("channel", "i2"), ("width", "f8"), ("flag", "?")]


def make_rows(rng, n=2000):
    x = np.zeros(n, DTYPE)
    x["time"] = np.sort(rng.integers(0, 10**12, n))
    x["area"] = rng.normal(50, 40, n).astype("f4")
    x["channel"] = rng.integers(0, 10, n)
    x["width"] = rng.exponential(100, n)
    x["flag"] = rng.random(n) < 0.3
    return x


# (selection, the numpy mask it means)
CASES = [
    ("area > 100 & channel < 3", lambda x: (x["area"] > 100) & (x["channel"] < 3)),
    ("area < 10 | channel == 7", lambda x: (x["area"] < 10) | (x["channel"] == 7)),
    ("~(area > 0)", lambda x: ~(x["area"] > 0)),
    ("~flag & width >= 50", lambda x: ~x["flag"] & (x["width"] >= 50)),
    ("area * 2 - width / 4 > channel", lambda x: x["area"] * 2 - x["width"] / 4 > x["channel"]),
    ("10 < area <= 60", lambda x: (x["area"] > 10) & (x["area"] <= 60)),
    ("abs(area - 50) < 5", lambda x: np.abs(x["area"] - 50) < 5),
    (
        "channel != 3 & (flag | area > 90)",
        lambda x: (x["channel"] != 3) & (x["flag"] | (x["area"] > 90)),
    ),
    ("sqrt(width) > 12 | -area > 20", lambda x: (np.sqrt(x["width"]) > 12) | (-x["area"] > 20)),
    ("channel * 1000000000 > 5000000000", lambda x: x["channel"].astype("i8") * 10**9 > 5 * 10**9),
]


@pytest.mark.parametrize("expr,want", CASES, ids=[c[0] for c in CASES])
def test_masks_equal_numpy(expr, want):
    x = make_rows(np.random.default_rng(1))
    got = Selection(expr, fields=x.dtype.names).mask(x)
    expected = want(x)
    assert got.dtype == bool and np.array_equal(got, expected)
    assert 0 < expected.sum() < len(x) or expr.startswith("channel *")


def test_list_of_selections_is_anded():
    x = make_rows(np.random.default_rng(2))
    sel = Selection(["area > 20", "channel < 5 | flag"])
    assert sel.columns == ["area", "channel", "flag"]
    want = (x["area"] > 20) & ((x["channel"] < 5) | x["flag"])
    assert np.array_equal(sel.mask(x), want)


def test_string_columns_use_pandas():
    x = np.array([("ab", 1.0), ("cd", 2.0), ("ab", 3.0)], [("name", "U4"), ("area", "f8")])
    assert Selection("name == 'ab' & area > 1").mask(x).tolist() == [False, False, True]


@pytest.mark.parametrize(
    "expr,match",
    [
        ("energy > 3", r"unknown column\(s\) \['energy'\].*available columns are \['time'"),
        ("area > 1 & foo < bar", r"\['foo', 'bar'\]"),
        ("area >", "not an expression"),
        ("__import__('os').system('true')", "not allowed"),
        ("area.real > 1", "not allowed"),
        ("", "non-empty string"),
    ],
)
def test_bad_selections_refused(expr, match):
    with pytest.raises(InvalidRequest, match=match):
        Selection(expr, fields=[name for name, _ in DTYPE])


def test_non_boolean_selection_refused():
    x = make_rows(np.random.default_rng(3), 10)
    with pytest.raises(InvalidRequest, match="not true/false"):
        Selection("area * 2").mask(x)


def test_chunk_stats():
    x = make_rows(np.random.default_rng(4), 50)
    x["width"][3] = np.nan
    stats = chunk_stats(x)
    assert stats["area"] == [float(x["area"].min()), float(x["area"].max())]
    assert stats["channel"] == [int(x["channel"].min()), int(x["channel"].max())]
    assert stats["flag"] == [0, 1]
    assert "width" not in stats  # NaN: unknown, so a selection on it reads the chunk
    assert chunk_stats(x[:0]) == {}
    assert all(isinstance(v, (int, float)) for pair in stats.values() for v in pair)


def test_may_match_rules_out_chunks():
    sel = Selection("area > 100 & channel < 3")
    assert not sel.may_match({"area": (0.0, 99.0), "channel": (0, 9)})
    assert not sel.may_match({"area": (0.0, 200.0), "channel": (3, 9)})
    assert sel.may_match({"area": (0.0, 200.0), "channel": (0, 9)})
    assert sel.may_match({"channel": (0, 9)})  # area unknown: may
    assert sel.may_match({})
    assert not Selection("channel == 4").may_match({"channel": (5, 9)})
    assert not Selection("channel != 4").may_match({"channel": (4, 4)})
    assert Selection("~(channel == 4)").may_match({"channel": (4, 5)})
    assert not Selection("time >= 1600000000000000001").may_match(
        {"time": (0, 1600000000000000000)}
    )


@pytest.mark.parametrize("seed", range(6))
def test_may_match_never_misses_a_matching_chunk(seed):
    """Property: for random data cut into chunks and random selections, a chunk holding
    a matching row always may match; and the check rules out some chunks."""
    rng = np.random.default_rng(seed)
    x = make_rows(rng, 4000)
    x["area"] = np.round(x["area"])  # ties with the constants below
    cuts = np.sort(rng.choice(np.arange(1, len(x)), 60, replace=False))
    chunks = np.split(x, cuts)
    ops = ["<", "<=", ">", ">=", "==", "!="]
    terms = [
        lambda: f"area {rng.choice(ops)} {int(rng.integers(-50, 150))}",
        lambda: f"channel {rng.choice(ops)} {int(rng.integers(0, 10))}",
        lambda: f"width * {rng.uniform(0.5, 2):.3f} {rng.choice(ops)} {rng.uniform(0, 300):.2f}",
        lambda: f"area - channel {rng.choice(ops)} {int(rng.integers(-20, 120))}",
        lambda: f"abs(area) {rng.choice(ops)} {int(rng.integers(0, 100))}",
        lambda: "flag",
        lambda: f"time {rng.choice(ops)} {int(rng.integers(0, 10**12))}",
    ]
    ruled_out = 0
    for _ in range(40):
        parts = [terms[i]() for i in rng.integers(0, len(terms), rng.integers(1, 4))]
        expr = parts[0]
        for p in parts[1:]:
            expr = f"{expr} {rng.choice(['&', '|'])} {'~' if rng.random() < 0.3 else ''}({p})"
        sel = Selection(expr)
        table = [{"stats": chunk_stats(c)} for c in chunks]
        may = chunks_may_match(sel, table)
        for c, m in zip(chunks, may):
            if sel.mask(c).any():
                assert m, f"{expr} ruled out a chunk with a matching row"
            ruled_out += not m
    assert ruled_out > 0
