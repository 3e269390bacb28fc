"""The schema of mailstack.toml: a frozen dataclass per table, and one loader.

A table's fields are its keys. Each field's type annotation says what the key
holds (bool, int, float, str, a `Literal` of choices, a tuple of those, a nested
table, an array of tables), its default is the default, and its metadata (set
with `option()` or `required()`) carries the text that documents it and its
range. From that one declaration come the validation (`load()`), the defaults
that `mailstack init` writes (`to_toml()`), and the check of
docs/configuration.md (tests/unit/test_config.py).

A value TOML cannot spell directly (`"HOST:PORT"`, a network, `"never"`) is an
`Annotated[T, Convert(load, dump)]`: `load` reads the TOML value or raises
`Invalid`, `dump` writes it back.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from mailstack.errors import ConfigError

T = TypeVar("T")

COMMENT_WIDTH = 86


class Invalid(ValueError):
    """A value the schema refuses; `key` names it when a whole table is judged."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Convert:
    """Paired conversions for a value TOML has no type for."""

    load: Callable[[Any], Any]
    dump: Callable[[Any], Any] = lambda value: value


def option(
    default: T,
    doc: str,
    *,
    key: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> T:
    """A key with its default, the text that documents it, and its range.

    `key` is the name in the file when it differs from the field's (a `zone`
    array of tables that is the `zones` field); `positive` refuses 0.
    """
    metadata = {"doc": doc, "key": key, "minimum": minimum, "maximum": maximum}
    return dataclasses.field(default=default, metadata=metadata | {"positive": positive})


def required(doc: str, *, key: str | None = None) -> Any:
    """A key with no default: a table without it is refused."""
    metadata = {"doc": doc, "key": key, "minimum": None, "maximum": None}
    return dataclasses.field(metadata=metadata | {"positive": False})


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a table: its name in the file, the field it fills, its type."""

    name: str
    field: dataclasses.Field[Any]
    hint: Any

    @property
    def doc(self) -> str:
        return str(self.field.metadata["doc"])

    @property
    def required(self) -> bool:
        no_default = dataclasses.MISSING
        return self.field.default is no_default and self.field.default_factory is no_default


# table class -> its keys; a schema is fixed once its classes are declared.
_KEYS: dict[type, tuple[Key, ...]] = {}


def keys(table: type) -> tuple[Key, ...]:
    """The keys of a table class, in declaration order."""
    if table not in _KEYS:
        hints = typing.get_type_hints(table, include_extras=True)
        _KEYS[table] = tuple(
            Key(f.metadata.get("key") or f.name, f, hints[f.name])
            for f in dataclasses.fields(table)
            if "doc" in f.metadata
        )
    return _KEYS[table]


def load(table: type[T], value: Any, where: str) -> T:
    """The table `where` (`dns.resolver`) read from its TOML value."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table")
    known = keys(table)
    names = [k.name for k in known]
    for name in value:
        if name not in names:
            raise ConfigError(f"{where}.{name}: unknown key (known: {', '.join(names)})")
    values = {}
    for key in known:
        if key.name in value:
            values[key.field.name] = _value(key.hint, value[key.name], f"{where}.{key.name}", key)
        elif key.required:
            raise ConfigError(f"{where}.{key.name}: missing")
    try:
        return table(**values)
    except Invalid as exc:
        raise ConfigError(f"{where}.{exc.key}: {exc}" if exc.key else f"{where}: {exc}") from None


def is_table(hint: Any) -> bool:
    """Whether a type annotation is a table: a dataclass of the schema."""
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _value(hint: Any, value: Any, where: str, key: Key) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        convert = next(m for m in hint.__metadata__ if isinstance(m, Convert))
        try:
            return convert.load(value)
        except Invalid as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{where}: expected one of {', '.join(typing.get_args(hint))}")
        return value
    if origin in (types.UnionType, typing.Union):
        # `T | None`: None is the absence of the key, TOML cannot write it.
        (present,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(present, value, where, key)
    if origin is tuple:
        return _array(typing.get_args(hint)[0], value, where, key)
    if is_table(hint):
        return load(hint, value, where)
    return _in_range(_scalar(hint, value, where), where, key)


def _array(item: Any, value: Any, where: str, key: Key) -> tuple[Any, ...]:
    if is_table(item):
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{where}: expected [[{where}]] tables")
    elif not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    return tuple(_value(item, v, where, key) for v in value)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
    elif hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer")
    elif hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string")
    else:
        raise TypeError(f"{where}: the schema has no reader for {hint!r}")
    return value


def _in_range(value: Any, where: str, key: Key) -> Any:
    meta = key.field.metadata
    if meta["positive"] and value <= 0:
        raise ConfigError(f"{where}: expected a number above 0")
    if meta["minimum"] is not None and value < meta["minimum"]:
        raise ConfigError(f"{where}: expected at least {meta['minimum']}")
    if meta["maximum"] is not None and value > meta["maximum"]:
        raise ConfigError(f"{where}: expected at most {meta['maximum']}")
    return value


def to_toml(name: str, section: object) -> str:
    """`[name]` with every key of `section`, each under its documentation."""
    return _table(f"[{name}]", name, section)


def _table(header: str, name: str, section: object) -> str:
    lines = [header]
    undefined: list[str] = []
    subtables = []
    for key in keys(type(section)):
        value = getattr(section, key.field.name)
        where = f"{name}.{key.name}"
        if is_table(key.hint):
            subtables.append(to_toml(where, value))
        elif _is_array_of_tables(key.hint):
            undefined += [] if value else _undefined_tables(where, key)
            subtables += [_table(f"[[{where}]]", where, entry) for entry in value]
        elif (dumped := dump(key.hint, value)) is not None:
            lines += _comment(key.doc)
            lines.append(f"{key.name} = {_toml_value(dumped)}")
    return "\n\n".join(["\n".join(lines + undefined), *subtables])


def _is_array_of_tables(hint: Any) -> bool:
    args = typing.get_args(hint)
    return typing.get_origin(hint) is tuple and bool(args) and is_table(args[0])


def _undefined_tables(name: str, key: Key) -> list[str]:
    """An array of tables with no entry yet: its keys, documented, as comments."""
    lines = _comment(f"[[{name}]] tables: {key.doc}")
    for inner in keys(typing.get_args(key.hint)[0]):
        optional = "" if inner.required else " (optional)"
        lines += _comment(f"{inner.name}: {inner.doc}{optional}", indent="  ")
    return lines


def dump(hint: Any, value: Any) -> Any:
    """`value`, of type `hint`, as TOML writes it (None: TOML cannot)."""
    if typing.get_origin(hint) is typing.Annotated:
        convert = next(m for m in hint.__metadata__ if isinstance(m, Convert))
        return convert.dump(value)
    if typing.get_origin(hint) is tuple:
        return [dump(typing.get_args(hint)[0], v) for v in value]
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # A JSON string is a TOML basic string (TOML 1.0 §String: the same escapes).
    return json.dumps(str(value), ensure_ascii=False)


def _comment(text: str, indent: str = "") -> list[str]:
    return [f"# {indent}{line}" for line in textwrap.wrap(text, COMMENT_WIDTH - len(indent))]


def walk(table: type, prefix: str) -> Iterator[tuple[str, Key]]:
    """Every key under the table `prefix`, nested tables and arrays of tables
    included, as (`dns.resolver.port`, its Key)."""
    for key in keys(table):
        where = f"{prefix}.{key.name}"
        if is_table(key.hint):
            yield from walk(key.hint, where)
        elif _is_array_of_tables(key.hint):
            yield from walk(typing.get_args(key.hint)[0], where)
        else:
            yield where, key


def address_text(address: tuple[str, int]) -> str:
    """`HOST:PORT`, an IPv6 host in brackets (RFC 3986 §3.2.2)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _short_text(value: Any) -> str:
    if not isinstance(value, str) or not value.isprintable() or len(value) > 200:
        raise Invalid("expected a short printable string")
    return value


# Text a server sends a client (an IMPLEMENTATION or ID name): one short line.
ShortText = typing.Annotated[str, Convert(_short_text)]
