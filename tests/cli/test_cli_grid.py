"""``pardo.product`` / ``pardo.zip``: the grid order of GNU Parallel's ``:::`` and ``:::+``."""

from __future__ import annotations

import itertools

from pardo._grid import product, zip


class TestProduct:
    def test_first_source_varies_slowest(self) -> None:
        """``::: 0.1 1 ::: 0.2 2`` runs (0.1,0.2), (0.1,2), (1,0.2), (1,2)."""
        assert list(product([0.1, 1], [0.2, 2])) == [(0.1, 0.2), (0.1, 2), (1, 0.2), (1, 2)]

    def test_three_sources(self) -> None:
        """Same order as itertools.product for plain sources."""
        a, b, c = "xy", [1, 2, 3], (True, False)
        assert list(product(a, b, c)) == list(itertools.product(a, b, c))

    def test_no_source_is_one_empty_row(self) -> None:
        """No sources: one empty combination, like itertools.product()."""
        assert list(product()) == [()]

    def test_empty_source_gives_no_rows(self) -> None:
        """A source with no values makes the grid empty."""
        assert list(product([1, 2], [])) == []

    def test_first_source_is_read_lazily(self) -> None:
        """An endless first source works: rows come out as it is read."""
        rows = product(itertools.count(), "ab")
        assert list(itertools.islice(rows, 5)) == [(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "a")]

    def test_zip_source_is_spliced_into_rows(self) -> None:
        """``product(zip(a, b), c)`` is ``::: a :::+ b ::: c``: flat rows, linked a and b."""
        rows = list(product(zip([1, 2], "ab"), [0.1, 1]))
        assert rows == [(1, "a", 0.1), (1, "a", 1), (2, "b", 0.1), (2, "b", 1)]

    def test_zip_as_later_source(self) -> None:
        """A linked pair after a plain source varies fastest, together."""
        assert list(product("xy", zip([1, 2], "ab"))) == [
            ("x", 1, "a"),
            ("x", 2, "b"),
            ("y", 1, "a"),
            ("y", 2, "b"),
        ]

    def test_tuple_values_stay_whole(self) -> None:
        """Only zip() rows are spliced: a plain source's tuple value is one value."""
        assert list(product([(1, 2)], "a")) == [((1, 2), "a")]


class TestZip:
    def test_shortest_source_sets_length(self) -> None:
        """``::: a b c :::+ 1 2`` gives two jobs, as GNU Parallel does."""
        assert list(zip("abc", [1, 2])) == [("a", 1), ("b", 2)]

    def test_reiterable_over_lists(self) -> None:
        """A zip of lists can be iterated twice (product reads later sources up front)."""
        linked = zip([1, 2], "ab")
        assert list(linked) == list(linked) == [(1, "a"), (2, "b")]

    def test_repr_names_it(self) -> None:
        """The repr says what it is."""
        assert repr(zip([1], "a")) == "pardo.zip([1], 'a')"
