"""The srcset parser against the HTML standard's tricky cases."""

from __future__ import annotations

import pytest
from support.guards import finishes

from loader.discovery.srcset import parse_srcset


def parsed(value: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.url, c.descriptors) for c in parse_srcset(value)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a.png", [("a.png", ())]),
        ("a.png 1x, b.png 2x", [("a.png", ("1x",)), ("b.png", ("2x",))]),
        # A comma right after a descriptor ends the candidate.
        ("a.png 1x,b.png 2x", [("a.png", ("1x",)), ("b.png", ("2x",))]),
        # URLs run to whitespace, so they may contain commas ...
        ("image,1.png 1x, image,2.png 2x", [("image,1.png", ("1x",)), ("image,2.png", ("2x",))]),
        (
            "/w_100,h_50/a.jpg 100w, /w_200,h_100/a.jpg 200w",
            [("/w_100,h_50/a.jpg", ("100w",)), ("/w_200,h_100/a.jpg", ("200w",))],
        ),
        (
            "data:image/png;base64,iVBORw0KGgo= 1x, b.png 2x",
            [("data:image/png;base64,iVBORw0KGgo=", ("1x",)), ("b.png", ("2x",))],
        ),
        # ... and "a.png,b.png" is one URL: no whitespace separates them.
        ("a.png,b.png", [("a.png,b.png", ())]),
        # ... but trailing commas end a URL.
        ("a.png,, b.png", [("a.png", ()), ("b.png", ())]),
        (",a.png", [("a.png", ())]),
        ("  a.png   2x  ,  b.png  ", [("a.png", ("2x",)), ("b.png", ())]),
        ("\ta.png\n1x,\fb.png\r2x", [("a.png", ("1x",)), ("b.png", ("2x",))]),
        ("a.png 100w 50h", [("a.png", ("100w", "50h"))]),
        (
            "a.png 1.5x, b.png .5x, c.png 1e2x, d.png 0x",
            [("a.png", ("1.5x",)), ("b.png", (".5x",)), ("c.png", ("1e2x",)), ("d.png", ("0x",))],
        ),
        ("", []),
        (" , , ", []),
    ],
)
def test_candidates(value: str, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert parsed(value) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "x.png 50h",  # height without width
        "x.png 1x 2x",  # two densities
        "x.png 100w 1x",  # width and density
        "x.png -1x",  # negative density
        "x.png 0w",  # zero width
        "x.png 1.5w",  # width must be an integer
        "x.png +1x",  # not a valid floating-point number
        "x.png 1.x",
        "x.png 1q",  # unknown descriptor
        "x.png 1x (foo, bar)",  # parenthesised junk is one (invalid) descriptor
        "x.png 1x (unterminated, y.png 2x",
    ],
)
def test_invalid_descriptors_drop_the_candidate(bad: str) -> None:
    assert parsed(bad + ", ok.png 3x") == [("ok.png", ("3x",))] or parsed(bad) == []


def test_parentheses_protect_commas_in_descriptors() -> None:
    candidates = parse_srcset("a.png 1x (x, y), b.png 2x", keep_invalid=True)
    assert [(c.url, c.descriptors, c.valid) for c in candidates] == [
        ("a.png", ("1x", "(x, y)"), False),
        ("b.png", ("2x",), True),
    ]


def test_spans_locate_each_url_in_the_value() -> None:
    value = " a.png 1x,  image,2.png 2x,data:x,y 3x"
    for candidate in parse_srcset(value):
        assert value[candidate.start : candidate.end] == candidate.url


def test_width_and_density_accessors() -> None:
    a, b = parse_srcset("a.png 400w, b.png 1.5x")
    assert (a.width, a.density, b.width, b.density) == (400, None, None, 1.5)


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 1_000_000,
        "a " + "x" * 1_000_000,
        ", " * 500_000,
        "a 1x, " * 150_000,
        "a (" + "," * 1_000_000,
        "a " + "1x " * 300_000,
    ],
    ids=lambda value: f"{value[:12]!r}..{len(value)}",
)
def test_megabyte_values_parse_in_linear_time(hostile: str) -> None:
    finishes(parse_srcset, hostile)  # a hang guard: quadratic work on a megabyte takes hours
