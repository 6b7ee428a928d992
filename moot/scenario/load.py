"""Load a scenario file: YAML with line numbers, validated by pydantic, errors as one line.

    scenarios/x.yaml:7: seats.judge.temprature: unknown field (did you mean 'temperature'?)
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from moot.errors import ConfigError
from moot.scenario.model import Scenario

Loc = tuple[str | int, ...]


def load_file(path: str | Path) -> tuple[Scenario, str]:
    """The validated scenario and the file's text (stored with the run)."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read ({exc})") from None
    return parse(text, str(p)), text


def parse(text: str, where: str = "<scenario>") -> Scenario:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Where the problem was noticed can be past the end of the file (an unclosed
        # bracket); the context mark points at what was left open.
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}{line}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a scenario is a YAML mapping of fields (name, protocol, ...)")
    lines = _line_index(node)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, lines, where)) from None


def describe(exc: ValidationError, lines: dict[Loc, int], where: str) -> str:
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc: Loc = tuple(err["loc"])
    path = _dotted(loc)
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
        hint = _suggest(loc)
        if hint:
            msg += f" (did you mean {hint!r}?)"
    elif err["type"] == "value_error":
        msg = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        named = re.match(r"([A-Za-z_][\w.]*): ", msg)
        if named:  # a check on a whole model that names the field it is about
            loc = (*loc, *named.group(1).split("."))
            path, msg = _dotted(loc), msg[named.end() :]
    else:
        msg = err["msg"]
        if "input" in err and err["type"] not in ("missing",) and _short(err["input"]):
            msg += f" (got {err['input']!r})"
    line = _line_for(loc, lines)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    prefix = f"{where}:{line}" if line else where
    # one line, whatever the file held (a key may contain a newline)
    return " ".join(f"{prefix}: {path + ': ' if path else ''}{msg}{more}".splitlines())


def _dotted(loc: Loc) -> str:
    """seats.judge.temperature; a key that is not a plain word is shown quoted."""
    return ".".join(
        str(p) if isinstance(p, int) or ((str(p).isprintable() and " " not in str(p)) and str(p))
        else repr(p)
        for p in loc
    )


def _short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _line_index(node: yaml.Node | None, loc: Loc = ()) -> dict[Loc, int]:
    """Map each key path in the document to its 1-based line."""
    out: dict[Loc, int] = {}
    if node is None:
        return out
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = (*loc, key.value)
            out[k] = key.start_mark.line + 1
            out.update({p: ln for p, ln in _line_index(value, k).items() if p != k})
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_line_index(item, (*loc, i)))
    return out


def _suggest(loc: Loc) -> str | None:
    """The closest field name that the model at loc's parent accepts."""
    current: Any = Scenario
    for part in loc[:-1]:
        if isinstance(current, tuple):  # ("dict", inner): this part is a key
            current = current[1]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = _inner_model(field.annotation) if field else None
        else:
            return None
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return None
    match = difflib.get_close_matches(str(loc[-1]), list(current.model_fields), n=1, cutoff=0.6)
    return match[0] if match else None


def _inner_model(annotation: Any) -> Any:
    import typing

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if origin is dict and len(args) == 2:
        return ("dict", _inner_model(args[1]))
    for arg in args:  # Optional[Model], Model | None
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None
