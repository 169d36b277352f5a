"""Params files read strictly: YAML without aliases, merge keys, duplicate keys, deep nesting or
scalars that YAML 1.1 and 1.2 read apart; several files merged as Snakemake merges --configfile
files; `--config KEY=VALUE` read as the user wrote it. What the files mean is checked by
msga.grid.params. Torch-free."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import yaml

MAX_PARAMS_BYTES = 1 << 20  # a params file is a few kB; a bigger one is a mistake or an attack


class ParamsError(ValueError):
    """A params file or an override breaks the schema or a cross-field rule."""


MAX_DEPTH = 32  # levels of nesting; a params file has five (models.crossvit.depth[0][1])

# How YAML 1.2's core schema reads an untagged plain scalar (what DVC reads params.yaml with); any other
# text is a string. PyYAML reads YAML 1.1, which differs: 010 is octal 8 (1.2: 10), 1:30 is 90 (1.2: the
# text), yes/on are true, 1_000 is 1000, 1e3 is text (1.2: 1000.0).
_CORE_SCHEMA = [(re.compile(pattern), read) for pattern, read in (
    (r"null|Null|NULL|~|", lambda text: None),
    (r"true|True|TRUE", lambda text: True),
    (r"false|False|FALSE", lambda text: False),
    (r"[-+]?[0-9]+", int),
    (r"0o[0-7]+", lambda text: int(text[2:], 8)),
    (r"0x[0-9a-fA-F]+", lambda text: int(text[2:], 16)),
    (r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", float),
    (r"[-+]?\.(inf|Inf|INF)", lambda text: float(text.replace(".", ""))),
    (r"\.nan|\.NaN|\.NAN", lambda text: math.nan),
)]


def _yaml12(text: str):
    return next((read(text) for pattern, read in _CORE_SCHEMA if pattern.fullmatch(text)), text)


def _same(a, b) -> bool:
    nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return type(a) is type(b) and (a == b or nan)


def unambiguous(value) -> str:
    """`value` written so that YAML 1.1 and 1.2 read it alike."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        mantissa, e, exponent = repr(value).partition("e")
        mantissa += "" if "." in mantissa or not math.isfinite(value) else ".0"  # 1.1 floats need a point
        return mantissa + e + exponent  # repr gives the exponent its sign, as 1.1 needs
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # quoted: text


class _StrictLoader(yaml.SafeLoader):
    """YAML without aliases, merge keys, duplicate keys, deep nesting, or scalars YAML versions read apart.

    An alias makes one node count many times (a few lines can expand to gigabytes when validated),
    and a duplicate key silently keeps the last value: in a params file both are mistakes. A plain
    scalar that YAML 1.1 (PyYAML, read here) and YAML 1.2 (DVC's reading of params) take for different
    values (010: 8 or 10) is refused, naming both readings, rather than read as either.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, f"found the alias *{event.anchor}: YAML aliases are not allowed in params; "
                "write the value out", event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nests deeper than {MAX_DEPTH} levels; a params file nests five", event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_scalar_node(self, anchor):
        event = self.peek_event()
        node = super().compose_scalar_node(anchor)
        if event.style is None and event.implicit[0]:  # plain and untagged: its type is the reader's guess
            self._check_plain(node)
        return node

    def _check_plain(self, node) -> None:
        def refuse(problem: str):
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)

        if node.tag == "tag:yaml.org,2002:merge":
            refuse("found a merge key (<<): merge keys are not allowed in params; write the keys out")
        if node.tag not in self.yaml_constructors:
            refuse(f"{node.value!r} is a YAML 1.1 {node.tag.rsplit(':', 1)[-1]}, which params do not use; quote it")
        old, new = self.yaml_constructors[node.tag](self, node), _yaml12(node.value)
        if not _same(old, new):
            written = dict.fromkeys((unambiguous(new), unambiguous(old)))
            refuse(f"{node.value} reads as {old!r} in YAML 1.1 (PyYAML) but as {new!r} in YAML 1.2 (DVC): write "
                   f"{' or '.join(written)}, whichever is meant")

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"found the key {key!r} twice; keep one", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} does not exist; pass the path of a params file such as params.yaml")
    if path.stat().st_size > MAX_PARAMS_BYTES:
        raise ParamsError(f"{path} is {path.stat().st_size} bytes; a params file is a few kB (limit {MAX_PARAMS_BYTES})")
    try:
        with open(path, encoding="utf-8") as stream:  # read from the file, its errors name it, not "<unicode string>"
            params = yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from err
    except RecursionError:  # a backstop: MAX_DEPTH stops nesting long before Python's stack would
        raise ParamsError(f"{path} nests too deeply to be read; a params file nests five levels") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path} must hold a mapping of sections (data, models, train, noise, experiments)")
    return params


def merge(base: dict, update: dict) -> dict:
    """Recursive dict update, as Snakemake merges several --configfile files."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_config_args(entries: list[str] | None) -> dict:
    """`snakemake --config KEY=VALUE ...` as the user wrote it: each VALUE read as YAML, strictly,
    so a quoted value stays text ('data={tarball: "2024"}' gives the text 2024) and 2 is a number.
    Snakemake's own reading gives every nested value as text, its quotes gone, so the type the
    user chose cannot be told from it. Later entries win key by key, as in Snakemake."""
    out: dict = {}
    for entry in entries or []:
        key, sep, text = entry.partition("=")
        if not sep or not key:
            raise ParamsError(f"--config {entry!r}: expected KEY=VALUE, e.g. 'train={{epochs: 2}}'")
        try:
            value = yaml.load(text, Loader=_StrictLoader) if text else None  # noqa: S506 (a safe loader)
        except yaml.YAMLError as err:
            raise ParamsError(f"--config {entry!r}: its value is not valid YAML: {err}") from None
        out = merge(out, {key: value})
    return out


SECTIONS = ("data", "models", "train", "noise", "experiments")  # what a complete params file holds


def merge_files(paths: list) -> dict:
    """Params files merged in order, later ones winning key by key; a COMPLETE file (one with every
    section, as workflow/demo.yaml) starts afresh, so nothing of an earlier file (an experiment or a
    per-model recipe the complete one leaves out) leaks into it."""
    params: dict = {}
    for path in paths:
        text = read_yaml(path)
        params = dict(text) if all(section in text for section in SECTIONS) else merge(params, text)
    return params

