"""Command-line flags from a dataclass of arguments, cleanrl style: each field's docstring is its --help line.

    @dataclass(frozen=True)
    class Args:
        steps: int = 2000
        '''optimizer steps'''            (a string literal after a field is its docstring)
        data: tuple[str, ...] = ()
        '''recording folders (one or more)'''

    parser = argparse.ArgumentParser()
    add_arguments(parser, Args)
    args = from_namespace(Args, parser.parse_args())

Types understood: int, float, str, bool (``--flag / --no-flag``), their ``| None`` forms, and ``tuple[X, ...]``
(``nargs="+"``). A field without a default is a required flag.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap

_SCALARS = {"int": int, "float": float, "str": str}


def field_docs(cls: type) -> dict[str, str]:
    """The docstring of every field of dataclass `cls` (the string literal right after the field)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for a, b in zip(body, body[1:]):
            if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                    and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _parse_type(annotation: str) -> tuple[str, bool, bool]:
    """'int | None' -> ('int', optional=True, many=False); 'tuple[str, ...]' -> ('str', False, True)."""
    text = annotation.replace(" ", "")
    optional = text.endswith("|None") or text.startswith("None|")
    text = text.replace("|None", "").replace("None|", "")
    many = text.startswith("tuple[") and text.endswith(",...]")
    if many:
        text = text[len("tuple["):-len(",...]")]
    if text not in (*_SCALARS, "bool"):
        raise TypeError(f"cli_arguments cannot make a flag of type {annotation!r}")
    return text, optional, many


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--field-name`` flag per field of dataclass `cls` (except `skip`)."""
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        name, _, many = _parse_type(_annotation(f))
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else (f.default if f.default is not dataclasses.MISSING else f.default_factory())
        help_ = docs.get(f.name, "")
        if name == "bool" and not many:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_)
            continue
        kwargs = {"type": _SCALARS.get(name, str) if name != "bool" else _bool, "help": help_}
        if many:  # repeating the flag adds to the list; the dataclass default applies when it is absent
            kwargs["nargs"], kwargs["action"] = "+", "extend"
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = None if many else default
            if "default" not in help_:
                kwargs["help"] = f"{help_} (default: {_show(default)})"
        parser.add_argument(flag, **kwargs)


def from_namespace(cls: type, namespace: argparse.Namespace, **overrides):
    """Build `cls` from parsed flags (lists become tuples); `overrides` replace or add fields."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif hasattr(namespace, f.name):
            v = getattr(namespace, f.name)
            if isinstance(v, list):
                values[f.name] = tuple(v)
            elif v is not None or not _parse_type(_annotation(f))[2]:  # an absent list flag keeps the default
                values[f.name] = v
    return cls(**values)


def _annotation(f: dataclasses.Field) -> str:
    """A field's type as text, "int", "float | None", "tuple[str, ...]" (already text under
    ``from __future__ import annotations``)."""
    if isinstance(f.type, str):
        return f.type
    return f.type.__name__ if isinstance(f.type, type) else str(f.type)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _show(value) -> str:
    if isinstance(value, tuple):
        return " ".join(map(str, value)) if value else "none"
    return str(value)
