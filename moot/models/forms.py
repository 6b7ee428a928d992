"""The form a reply must take: one of given labels, a pattern, or a JSON schema.

A protocol declares a form on a phase (`moot.protocols.graph.Phase.form`) or a scenario on a
seat; the seat hands it to the gateway with the request. Here a form becomes what each kind
of model can use:

- `grammar(form)`: llama.cpp GBNF text, for the embedded model and any `local/*.gguf` (the
  sampler can then produce nothing else);
- `response_format(form)`: the `json_schema` response format, for providers that support it
  (a schema form only: labels and patterns have no portable API form);
- `problem(form, text)`: what is wrong with a reply, in a sentence the model is told when it
  is asked again, or None when the reply fits. Every model's reply is checked, constrained or
  not, so a form is honoured whatever the backend does.

A form is a plain value (like the request it goes with): models know nothing of protocols.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

FormKind = Literal["labels", "pattern", "schema"]
FORM_KINDS: tuple[str, ...] = ("labels", "pattern", "schema")
DEFAULT_RETRIES = 2  # asked again this many times after a reply out of form


class FormError(ValueError):
    """A form that cannot be used (a pattern that does not compile, a schema that is not one)."""


@dataclass(frozen=True, slots=True)
class Form:
    """labels: the reply is exactly one of them (surrounding blanks aside); pattern: the
    whole reply matches the regular expression; schema: the reply is JSON valid under it
    (kept as canonical JSON text, so a form is hashable and compares by content)."""

    kind: FormKind
    labels: tuple[str, ...] = ()
    pattern: str = ""
    schema: str = ""

    @staticmethod
    def of_labels(*labels: str) -> Form:
        return Form("labels", labels=tuple(labels))

    @staticmethod
    def of_pattern(pattern: str) -> Form:
        return Form("pattern", pattern=pattern)

    @staticmethod
    def of_schema(schema: dict[str, Any]) -> Form:
        return Form("schema", schema=json.dumps(schema, sort_keys=True))

    def problems(self) -> list[str]:
        """What makes the form unusable, in words a scenario author can act on."""
        if self.kind not in FORM_KINDS:
            return [f"unknown form {self.kind!r} (one of {', '.join(FORM_KINDS)})"]
        if self.kind == "labels":
            if not self.labels or any(not isinstance(x, str) or not x.strip() for x in self.labels):
                return ["a labels form needs at least one non-empty label"]
            return []
        if self.kind == "pattern":
            if not self.pattern:
                return ["a pattern form needs its pattern"]
            try:
                re.compile(self.pattern)
            except re.error as exc:
                return [f"pattern {self.pattern!r} does not compile: {exc}"]
            return []
        try:
            schema = json.loads(self.schema)
        except ValueError:
            return ["a schema form needs a JSON schema"]
        if not isinstance(schema, dict):
            return ["a JSON schema is an object"]
        from jsonschema import validators
        from jsonschema.exceptions import SchemaError

        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            return [f"not a valid JSON schema: {exc.message}"]
        return []

    def describe(self) -> str:
        """One line for `moot graph`, `moot plan` and the prompt."""
        if self.kind == "labels":
            return "one of " + " | ".join(self.labels)
        if self.kind == "pattern":
            return f"matching /{self.pattern}/"
        return "JSON matching " + self.schema

    def instruction(self) -> str:
        """What the seat is told about the form of its reply."""
        if self.kind == "labels":
            return "Reply with exactly one of: " + ", ".join(self.labels) + "."
        if self.kind == "pattern":
            return f"Your reply must match the regular expression {self.pattern}"
        return f"Reply with JSON only, valid under this JSON schema: {self.schema}"

    def record(self) -> dict[str, Any]:
        """As a scenario or a stored plan writes it."""
        if self.kind == "labels":
            return {"labels": list(self.labels)}
        if self.kind == "pattern":
            return {"pattern": self.pattern}
        return {"schema": json.loads(self.schema)}


def from_record(value: Any) -> Form:
    """A form as a scenario writes it: `{labels: [...]}`, `{pattern: "..."}` or
    `{schema: {...}}`. Raises FormError naming what is wrong."""
    if not isinstance(value, dict) or len(value) != 1:
        raise FormError("a form is one of {labels: [...]}, {pattern: '...'} or {schema: {...}}")
    (kind, arg), = value.items()
    if kind == "labels":
        if not isinstance(arg, list) or not all(isinstance(x, str) for x in arg):
            hint = " (quote yes, no, on, off: YAML reads them as true and false)" if isinstance(arg, list) and any(
                isinstance(x, bool) for x in arg) else ""  # fmt: skip
            raise FormError("labels is a list of strings" + hint)
        form = Form.of_labels(*arg)
    elif kind == "pattern":
        if not isinstance(arg, str):
            raise FormError("pattern is a string (a regular expression)")
        form = Form.of_pattern(arg)
    elif kind == "schema":
        if not isinstance(arg, dict):
            raise FormError("schema is a JSON schema (an object)")
        form = Form.of_schema(arg)
    else:
        raise FormError(f"unknown form {kind!r} (one of {', '.join(FORM_KINDS)})")
    found = form.problems()
    if found:
        raise FormError(found[0])
    return form


def up_to(n: int) -> str:
    """A pattern for the whole numbers 0..n, without leading zeros: up_to(250) is
    `(25[0-0]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])`, give or take the order."""
    s = str(max(0, int(n)))
    alts = []
    prefix = ""
    for i, ch in enumerate(s):
        lo = 1 if i == 0 and len(s) > 1 else 0
        d = int(ch)
        if d > lo:
            alts.append(prefix + f"[{lo}-{d - 1}]" + "[0-9]" * (len(s) - i - 1))
        prefix += ch
    alts.append(s)
    for k in range(len(s) - 1, 0, -1):
        alts.append("[0-9]" if k == 1 else "[1-9]" + "[0-9]" * (k - 1))
    return "(" + "|".join(alts) + ")"


# -- checking a reply ------------------------------------------------------------------------


def problem(form: Form, text: str) -> str | None:
    """Why `text` is not in `form` (a sentence for the model), or None when it is."""
    if form.kind == "labels":
        if text.strip() in form.labels:
            return None
        return f"the reply must be exactly one of {', '.join(form.labels)}, and nothing else"
    if form.kind == "pattern":
        if _compiled(form.pattern).fullmatch(text.strip()):
            return None
        return f"the whole reply must match the regular expression {form.pattern}"
    try:
        value = json.loads(_unfenced(text))
    except ValueError:
        return "the reply must be JSON only (no other text)"
    error = _validator(form.schema).best_match_error(value)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"the JSON is not valid under the schema{f' at {where}' if where else ''}: {error.message}"


def value(form: Form, text: str) -> Any:
    """A fitting reply's value: the label, the matched text, or the parsed JSON."""
    if form.kind == "schema":
        return json.loads(_unfenced(text))
    return text.strip()


def _unfenced(text: str) -> str:
    """JSON as models often send it: alone, or in one ``` fence."""
    s = text.strip()
    m = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", s, re.S)
    return m.group(1) if m else s


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class _Validator:
    def __init__(self, schema: str) -> None:
        from jsonschema import validators

        raw = json.loads(schema)
        self._v = validators.validator_for(raw)(raw)

    def best_match_error(self, value: Any) -> Any:
        from jsonschema.exceptions import best_match

        return best_match(self._v.iter_errors(value))


@lru_cache(maxsize=256)
def _validator(schema: str) -> _Validator:
    return _Validator(schema)


# -- constraining a reply ----------------------------------------------------------------------


@lru_cache(maxsize=256)
def grammar(form: Form) -> str:
    """The form as llama.cpp GBNF (rule `root`). A pattern is converted by llama.cpp's own
    converter (character classes, groups, alternation, ?, *, +, {m,n}; no lookarounds)."""
    if form.kind == "labels":
        alts = " | ".join(_literal(x) for x in form.labels)
        return f"root ::= {alts}\n"
    from llama_cpp.llama_grammar import SchemaConverter

    if form.kind == "pattern":
        converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=True)
        pattern = _punctuation_as_classes(form.pattern)
        pattern = pattern if pattern.startswith("^") else "^" + pattern
        pattern = pattern if pattern.endswith("$") else pattern + "$"
        converter.visit({"type": "string", "pattern": pattern}, "")
        return converter.format_grammar() + "\n"
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    schema = converter.resolve_refs(json.loads(form.schema), "form")
    converter.visit(schema, "")
    return converter.format_grammar() + "\n"


def _punctuation_as_classes(pattern: str) -> str:
    """`\\.` as `[.]` outside character classes: llama.cpp's converter (0.3.36) copies an
    escaped punctuation mark into a GBNF literal as it is, which llama.cpp then rejects."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if not in_class and not nxt.isalnum():
                out.append("[\\" + nxt + "]" if nxt in "^]\\-" else "[" + nxt + "]")
            else:
                out.append(ch + nxt)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


def _literal(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def response_format(form: Form) -> dict[str, Any] | None:
    """The OpenAI-style `response_format` for a schema form (None for the others)."""
    if form.kind != "schema":
        return None
    return {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": json.loads(form.schema), "strict": False},
    }


def retry_messages(messages: list[dict[str, Any]], reply: str, why: str, form: Form) -> list[dict[str, Any]]:
    """The conversation asked again: the reply out of form, then what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": f"That reply is not in the required form: {why}. "
                                    f"{form.instruction()} Reply again."},
    ]  # fmt: skip


# -- a reply in the form, made up (the scripted stand-in's constrained replies) ---------------


def example(form: Form, seed: int = 0) -> str:
    """A reply that fits `form`, varied by `seed`: what a constrained decoder could produce,
    for the scripted model (a label, a shortest string the pattern matches, a smallest
    instance of the schema)."""
    if form.kind == "labels":
        return form.labels[seed % len(form.labels)]
    if form.kind == "pattern":
        import re._parser as sre  # the standard library's own reading of a pattern

        return _from_pattern(sre.parse(form.pattern), random_of(seed))
    return json.dumps(_instance(json.loads(form.schema), seed))


def random_of(seed: int) -> Any:
    import random

    return random.Random(seed)


def _from_pattern(items: Any, rng: Any) -> str:
    import re._constants as c

    out = []
    for op, arg in items:
        if op is c.LITERAL:
            out.append(chr(arg))
        elif op is c.NOT_LITERAL:
            out.append("x" if chr(arg) != "x" else "y")
        elif op is c.ANY:
            out.append("x")
        elif op is c.IN:
            out.append(_from_class(arg, rng))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            lo, hi, sub = arg
            n = lo if hi == lo else rng.randint(lo, min(hi, lo + 2))
            out.extend(_from_pattern(sub, rng) for _ in range(n))
        elif op is c.SUBPATTERN:
            out.append(_from_pattern(arg[-1], rng))
        elif op is c.BRANCH:
            out.append(_from_pattern(rng.choice(arg[1]), rng))
        elif op is c.CATEGORY:
            out.append(_from_category(arg))
        # AT (anchors) and the like add nothing
    return "".join(out)


def _from_class(items: Any, rng: Any) -> str:
    import re._constants as c

    if items and items[0][0] is c.NEGATE:
        banned = set()
        for op, arg in items[1:]:
            if op is c.LITERAL:
                banned.add(chr(arg))
            elif op is c.RANGE:
                banned.update(chr(k) for k in range(arg[0], arg[1] + 1))
        return next(ch for ch in "xyz abc" if ch not in banned)
    op, arg = rng.choice(items)
    if op is c.LITERAL:
        return chr(arg)
    if op is c.RANGE:
        return chr(rng.randint(arg[0], arg[1]))
    if op is c.CATEGORY:
        return _from_category(arg)
    return "x"


def _from_category(arg: Any) -> str:
    import re._constants as c

    return {c.CATEGORY_DIGIT: "7", c.CATEGORY_SPACE: " ", c.CATEGORY_WORD: "w"}.get(arg, "x")


def _instance(schema: Any, seed: int) -> Any:
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][seed % len(schema["enum"])]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return _instance(schema[key][0], seed)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _instance(props.get(k, {}), seed) for k in schema.get("required", list(props))}
    if kind == "array":
        return [_instance(schema.get("items", {}), seed) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        base = lo if lo is not None else 0
        return base + (seed % (hi - base + 1) if hi is not None and kind == "integer" else 0)
    if kind == "boolean":
        return bool(seed % 2)
    if kind == "string":
        if "pattern" in schema:
            return example(Form.of_pattern(schema["pattern"]), seed)
        return "x" * schema.get("minLength", 1)
    return None
