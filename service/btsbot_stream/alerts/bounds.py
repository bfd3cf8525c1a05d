"""Bounds on what a datum can make fastavro build, checked before fastavro builds it.

fastavro trusts the counts in the data. An array of a zero-width type (``null``, an empty
record) costs no byte per item, so a one-byte count can demand 2^63 items; a small item
width lets a few MB hold millions of records to materialise; a recursive type lets a
datum nest deep enough to overflow the C stack (a segfault, not an exception).

Each writer schema gets a :class:`Layout` once. Items of width >= w can number at most
n / w per level of array nesting in a datum of n bytes, so most messages are provably
within ``max_array_items`` without looking at them (every official ZTF schema: items of
50 bytes or more, one level, so any datum up to ~500 kB). The others are walked first by
:meth:`Layout.check`, which reads counts and lengths without building anything and stops
at the first limit; each step of the walk consumes at least one byte or counts items, so
it ends in time proportional to the datum plus the items allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from btsbot_stream.alerts.exceptions import InvalidAlert

_WIDTH = {"null": 0, "boolean": 1, "int": 1, "long": 1, "float": 4, "double": 8}
_VARIABLE = {"bytes", "string"}  # a length, then that many bytes
_UNREACHABLE = 1 << 62  # the width of a back-edge of a recursive type: never minimal


@dataclass
class Layout:
    """What bounds a writer schema's data: item widths, nesting, recursion."""

    schema: Any  # fastavro's parsed writer schema
    max_depth: int
    recursive: bool = False
    min_item_bytes: int | None = None  # smallest array/map item; None: no array or map
    array_depth: int = 0  # most arrays and maps nested along one path
    _named: dict[str, Any] = field(default_factory=dict, repr=False)
    _by_name: dict[str, tuple[int, int, int]] = field(default_factory=dict, repr=False)
    _by_node: dict[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, schema: Any, max_depth: int) -> Layout:
        """The layout of a parsed writer schema.

        Raises :class:`InvalidAlert` ``avro_too_deep`` when its values can nest deeper
        than ``max_depth`` records, arrays and maps (named types included: a chain of
        them nests the data, not the JSON).
        """
        layout = cls(schema, max_depth)
        if isinstance(schema, dict):
            layout._named = schema.get("__named_schemas", {})
        layout.array_depth = layout._scan(schema, (), 0)[1]
        return layout

    def needs_walk(self, datum_bytes: int, max_items: int) -> bool:
        """Whether a datum of this size could break the limits without being walked."""
        if self.recursive:
            return True
        if self.min_item_bytes is None:
            return False
        if self.min_item_bytes == 0:
            return True
        return datum_bytes * self.array_depth > max_items * self.min_item_bytes

    def check(self, datum: bytes, start: int, max_items: int) -> int:
        """Walk one datum from ``start`` without building it; returns where it ends.

        Raises :class:`InvalidAlert`: ``array_too_long`` past ``max_items`` array/map
        items, ``avro_too_deep`` past ``max_depth`` nested values (recursive types),
        ``avro_malformed`` where the bytes do not follow the schema.
        """
        walk = _Walk(self, datum, start, max_items)
        walk.node(self.schema, 0)
        return walk.pos

    def width(self, node: Any) -> int:
        """The fewest bytes a value of ``node`` can take (0: zero-width)."""
        if isinstance(node, str):
            if node in _WIDTH:
                return _WIDTH[node]
            return 1 if node in _VARIABLE else self._scan(node, (), 0)[0]
        key = id(node)  # a node of the parsed schema, which this layout keeps alive
        if key not in self._by_node:
            self._by_node[key] = self._scan(node, (), 0)[0]
        return self._by_node[key]

    def too_deep(self) -> InvalidAlert:
        return InvalidAlert(
            "avro_too_deep", f"values nest deeper than limits.max_nesting_depth = {self.max_depth}"
        )

    def _scan(self, node: Any, stack: tuple[str, ...], level: int) -> tuple[int, int, int]:
        """(fewest bytes, arrays nested, values nested) of ``node`` at nesting ``level``.

        Notes array items and recursion on the way. A reference back to a type being
        scanned makes the schema recursive; it is never part of a shortest value (which
        need not repeat a type on its path), so it counts as unreachable.
        """
        if isinstance(node, str):
            if node in _WIDTH:
                return _WIDTH[node], 0, 0
            if node in _VARIABLE:
                return 1, 0, 0
            if node in stack:
                self.recursive = True
                return _UNREACHABLE, 0, 0
            if node not in self._by_name:
                self._by_name[node] = self._scan(self._named[node], (*stack, node), level)
            found = self._by_name[node]
            if level + found[2] > self.max_depth:
                raise self.too_deep()
            return found
        if isinstance(node, list):  # a union: the branch index, then the branch
            branches = [self._scan(branch, stack, level) for branch in node]
            return (
                1 + min(b[0] for b in branches),
                max(b[1] for b in branches),
                max(b[2] for b in branches),
            )
        kind = node["type"]
        if kind in ("record", "error", "array", "map") and level + 1 > self.max_depth:
            raise self.too_deep()
        if kind in ("record", "error"):
            inner = (*stack, node["name"])
            fields = [self._scan(f["type"], inner, level + 1) for f in node["fields"]]
            width = min(sum(f[0] for f in fields), _UNREACHABLE)
            return (
                width,
                max((f[1] for f in fields), default=0),
                1 + max((f[2] for f in fields), default=0),
            )
        if kind in ("array", "map"):
            item = node["items"] if kind == "array" else node["values"]
            item_width, arrays, nested = self._scan(item, stack, level + 1)
            item_width += kind == "map"  # a map entry has a key: at least its length byte
            if self.min_item_bytes is None or item_width < self.min_item_bytes:
                self.min_item_bytes = item_width
            return 1, arrays + 1, nested + 1  # an empty array is its zero count
        if kind == "enum":
            return 1, 0, 0
        if kind == "fixed":
            return int(node["size"]), 0, 0
        return self._scan(kind, stack, level)  # {"type": "long", "logicalType": ...}, a name


class _Walk:
    """One pass over one datum: reads only counts, lengths and union branches."""

    def __init__(self, layout: Layout, buf: bytes, pos: int, max_items: int) -> None:
        self.layout = layout
        self.buf = buf
        self.pos = pos
        self.items = 0
        self.max_items = max_items

    def long(self) -> int:
        shift = value = 0
        buf, pos = self.buf, self.pos
        while True:
            if pos >= len(buf):
                raise InvalidAlert("avro_malformed", "datum ends inside a number")
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return (value >> 1) ^ -(value & 1)
            shift += 7
            if shift > 63:
                raise InvalidAlert("avro_malformed", "varint longer than 64 bits")

    def skip(self, size: int) -> None:
        if size < 0 or self.pos + size > len(self.buf):
            raise InvalidAlert(
                "avro_malformed", f"datum needs {size} bytes at {self.pos} of {len(self.buf)}"
            )
        self.pos += size

    def node(self, node: Any, depth: int) -> None:
        if self.layout.width(node) == 0:
            return  # null, empty records...: no byte to read, no array inside
        if isinstance(node, str):
            if node in ("float", "double"):
                self.skip(_WIDTH[node])
            elif node in _VARIABLE:
                self.skip(self.long())
            elif node in _WIDTH:  # boolean, int, long
                self.long()
            else:
                self.node(self.layout._named[node], depth)
            return
        if isinstance(node, list):
            index = self.long()
            if not 0 <= index < len(node):
                raise InvalidAlert("avro_malformed", f"union branch {index} of {len(node)}")
            self.node(node[index], depth)
            return
        kind = node["type"]
        if kind in ("record", "error", "array", "map"):
            depth += 1
            if depth > self.layout.max_depth:
                raise self.layout.too_deep()
        if kind in ("record", "error"):
            for f in node["fields"]:
                self.node(f["type"], depth)
        elif kind in ("array", "map"):
            self.blocks(node, kind == "map", depth)
        elif kind == "enum":
            index = self.long()
            if not 0 <= index < len(node["symbols"]):
                raise InvalidAlert("avro_malformed", f"enum index {index} out of range")
        elif kind == "fixed":
            self.skip(int(node["size"]))
        else:
            self.node(kind, depth)

    def blocks(self, node: Any, keyed: bool, depth: int) -> None:
        item = node["values"] if keyed else node["items"]
        zero_width = not keyed and self.layout.width(item) == 0
        while True:
            count = self.long()
            if count == 0:
                return
            if count < 0:  # a block that also states its size in bytes
                count = -count
                self.long()
            self.items += count
            if self.items > self.max_items:
                raise InvalidAlert(
                    "array_too_long",
                    f"arrays and maps of one record hold over "
                    f"limits.max_array_items = {self.max_items} items",
                )
            if zero_width:  # the items take no byte and hold no array: nothing to read
                continue
            for _ in range(count):
                if keyed:
                    self.skip(self.long())
                self.node(item, depth)
