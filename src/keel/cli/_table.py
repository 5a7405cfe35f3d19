"""CLI tables that stay readable at any terminal width, 80 columns included.

Every column has a kind, and the kind says what may give way when the terminal is
narrow. Rich alone squeezes every column evenly as a last resort, cutting ids and
numbers to "…"; this table never lets it get that far:

- ``id``, ``status`` and ``number`` cells are never wrapped nor cut: users paste ids
  and names back into commands, and a cut number is a wrong number;
- a ``time`` cell may break at its space, the date over the time;
- ``text`` cells wrap down to a floor: their header, ``TEXT_FLOOR`` characters, or their
  longest word up to ``WORD_FLOOR`` (so "controller" does not break), whichever is widest;
  a word longer than the column folds.

When that does not fit, the borders go (a compact layout, as kubectl prints), and when
even that does not fit, the rows are printed one record at a time, ``header value`` per
line (psql's expanded display): a narrow terminal still shows every cell in full rather
than silently dropping columns.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rich import box
from rich.measure import Measurement
from rich.table import Table as RichTable
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

__all__ = ["TEXT_FLOOR", "WORD_FLOOR", "Kind", "Table"]

TEXT_FLOOR = 8
WORD_FLOOR = 16
_UNBOUNDED = 100_000  # a width no cell reaches: measures a cell's natural width


class Kind(StrEnum):
    """What a column holds, and so how it may give way on a narrow terminal."""

    ID = "id"
    STATUS = "status"
    NUMBER = "number"
    TIME = "time"
    TEXT = "text"


_RIGID = frozenset({Kind.ID, Kind.STATUS, Kind.NUMBER})


class Table(RichTable):
    """A Rich table whose columns have a :class:`Kind`; ``add_column(..., kind="id")``.

    It prints like any Rich table (``console.print(table)``); only the layout differs.
    """

    def __init__(self, *headers: Any, **kwargs: Any) -> None:
        self._kinds: list[Kind] = []  # before super(): it adds columns named in headers
        super().__init__(*headers, **kwargs)

    def add_column(  # type: ignore[override]
        self,
        header: RenderableType = "",
        footer: RenderableType = "",
        *,
        kind: Kind | str = Kind.TEXT,
        **kwargs: Any,
    ) -> None:
        """Add a column of ``kind`` (id, status, number, time or text); Rich options pass on."""
        try:
            parsed = Kind(kind)
        except ValueError:
            from keel.errors import InvalidInput

            kinds = ", ".join(k.value for k in Kind)
            raise InvalidInput(f"a table column kind is one of {kinds}, not {kind!r}") from None
        if parsed in _RIGID:
            kwargs.setdefault("no_wrap", True)
        else:
            kwargs.setdefault("overflow", "fold")
        if parsed is Kind.NUMBER:
            kwargs.setdefault("justify", "right")
        super().add_column(header, footer, **kwargs)
        self._kinds.append(parsed)

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The kind of each column, in order."""
        return tuple(self._kinds)

    def fits(self, console: Console, width: int | None = None) -> bool:
        """Return whether the rows fit ``width`` (default: the console's) as a table."""
        options = console.options
        return self._layout(console, options, width or options.max_width) is not None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width if self.width is not None else options.max_width
        layout = self._layout(console, options, width)
        if layout is None:
            yield from self._records(console, options)
            return
        table, widths = layout
        fitted = copy.copy(table)
        fitted.columns = [
            dataclasses.replace(column, width=w)
            for column, w in zip(table.columns, widths, strict=True)
        ]
        yield from RichTable.__rich_console__(fitted, console, options)

    def _layout(
        self, console: Console, options: ConsoleOptions, width: int
    ) -> tuple[Table, list[int]] | None:
        """Return the table to draw (this one, or it without borders) and its column widths."""
        sizes = self._sizes(console, options)
        widths = self._fit(sizes, width)
        if widths is not None:
            return self, widths
        if self.box is None:
            return None
        compact = self._compact()
        widths = compact._fit(sizes, width)
        return None if widths is None else (compact, widths)

    def _compact(self) -> Table:
        """Return a copy with no borders, a rule under the header and two spaces between."""
        compact = copy.copy(self)
        compact.box = box.SIMPLE_HEAD
        compact.show_edge = False
        compact.pad_edge = False
        compact.padding = (0, 1, 0, 0)
        return compact

    def _sizes(self, console: Console, options: ConsoleOptions) -> _Sizes:
        """Measure each column's content once: its natural width and how far it may shrink."""
        wide = options.update_width(_UNBOUNDED)
        sizes = _Sizes()
        for index, (column, kind) in enumerate(zip(self.columns, self._kinds, strict=True)):
            if column.width is not None:  # the caller fixed it: it stays
                sizes.naturals.append(column.width)
                sizes.floors.append(column.width)
                continue
            header = Measurement.get(console, wide, column.header) if self.show_header else None
            measured = [Measurement.get(console, wide, cell) for cell in column._cells]
            if header is not None:
                measured.append(header)
            natural = max([m.maximum for m in measured] + [1])
            longest_word = max([m.minimum for m in measured] + [1])
            titled = 0 if header is None else header.maximum
            if kind in _RIGID:
                floor = natural
            elif kind is Kind.TIME:
                floor = max(longest_word, titled)
                sizes.times.append(index)
            else:
                floor = min(natural, max(TEXT_FLOOR, titled, min(longest_word, WORD_FLOOR)))
                sizes.texts.append(index)
            if column.min_width is not None:
                floor = min(max(floor, column.min_width), natural)
            sizes.naturals.append(natural)
            sizes.floors.append(floor)
        return sizes

    def _fit(self, sizes: _Sizes, width: int) -> list[int] | None:
        """Return each column's content width in a table ``width`` wide, or None."""
        paddings = sum(self._get_padding_width(c._index) for c in self.columns)
        room = width - self._extra_width - paddings
        # Texts give way first; then times break, one column at a time, from the left.
        for broken in range(len(sizes.times) + 1):
            widths = list(sizes.naturals)
            for index in sizes.times[:broken]:
                widths[index] = sizes.floors[index]
            if _shrink(widths, sizes.floors, sizes.texts, sum(widths) - room):
                return widths
        return None

    def _records(self, console: Console, options: ConsoleOptions) -> Iterable[RenderableType]:
        """Yield the rows as records: one ``header  value`` line per column."""
        if self.title:
            title = self.title
            yield Text(title, style="bold") if isinstance(title, str) else title
        labels = [_label(column.header) for column in self.columns]
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        cells = [column._cells for column in self.columns]
        for row in range(len(self.rows)):
            if row:
                grid.add_row("", "")
            for label, column in zip(labels, cells, strict=True):
                grid.add_row(label, column[row])
        yield grid


@dataclasses.dataclass
class _Sizes:
    """Content widths per column (no padding): natural, and the least it may be given."""

    naturals: list[int] = dataclasses.field(default_factory=list)
    floors: list[int] = dataclasses.field(default_factory=list)
    times: list[int] = dataclasses.field(default_factory=list)
    texts: list[int] = dataclasses.field(default_factory=list)


def _shrink(widths: list[int], floors: Sequence[int], indexes: Sequence[int], excess: int) -> bool:
    """Take ``excess`` characters from the widest of ``indexes``, none below its floor."""
    while excess > 0:
        shrinkable = [i for i in indexes if widths[i] > floors[i]]
        if not shrinkable:
            return False
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return True


def _label(header: Any) -> str:
    text = header.plain if isinstance(header, Text) else str(header)
    label = ""
    for line in text.splitlines():  # a two-line header reads as one: "metrics.auc"
        label += line if not label or label.endswith(".") else f" {line}"
    return label
