"""What a params file means: the JSON Schema (workflow/schemas/params.schema.yaml, draft 2020-12,
its defaults filled in) and then the cross-field rules (msga.grid.rules). Every params file, merged
set of files and run override passes here before anything runs. Torch-free."""

from __future__ import annotations

import copy
import functools
import math
import re
from pathlib import Path

import jsonschema
import yaml

from msga.grid.reading import ParamsError, merge_files
from msga.grid.rules import cross_field_problems

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "params.schema.yaml"


def load_params(paths: str | Path | list) -> dict:
    """Read, merge (merge_files) and validate params files."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    return validate_params(merge_files(paths), source=" + ".join(str(p) for p in paths))


# ---------------------------------------------------------------- validation


@functools.cache
def load_schema() -> dict:
    """The JSON Schema of params files (workflow/schemas/params.schema.yaml)."""
    if not SCHEMA_PATH.exists():
        raise ParamsError(f"schema {SCHEMA_PATH} not found: msga runs from a checkout of the repository "
                          "(pip install -e .), which holds workflow/schemas/")
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _is_integer(checker, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # 2.0 is not an integer here


def is_finite_number(value) -> bool:
    """A JSON number that is finite: not a bool, not NaN or an infinity."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern:
    """A schema pattern as ECMA-262 reads it (JSON Schema's dialect): its `$` is the end of the text, where
    Python's `$` also matches before a final newline (which let "MD5\\n" pass ^[0-9a-f]{32}$)."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _validator_class():
    """Draft 2020-12 with strict integers, finite numbers and ECMA-262 patterns, filling the schema's
    defaults in.

    Defaults are written before a mapping's own properties are checked, so a default is
    validated like a written value; the schema is the one place defaults live.
    """
    base = jsonschema.Draft202012Validator
    types = base.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": lambda checker, value: is_finite_number(value)})
    check_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": properties_with_defaults, "pattern": _pattern},
                                        type_checker=types)


@functools.cache
def _validator():
    return _validator_class()(load_schema())


def validate_params(params: dict, source: str = "params") -> dict:
    """The schema (defaults filled in), then the cross-field rules; returns a validated copy."""
    params = copy.deepcopy(params)
    errors = sorted(_validator().iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_of(e)}: {_describe(e)}" for e in errors[:10]]
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ParamsError(f"{source} is invalid:\n" + "\n".join(lines) + more)
    problems = cross_field_problems(params)
    if problems:
        raise ParamsError(f"{source} is invalid:\n" + "\n".join(f"  {p}" for p in problems))
    return params


def _key_of(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    value = error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return error.message + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if error.validator == "pattern" and "description" in error.schema:
        return f"{error.message}: {error.schema['description']}"
    if error.validator == "type" and isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if error.validator == "type" and error.validator_value == "integer" and isinstance(value, float) and value.is_integer():
        return f"{value} is not of type 'integer' (write {int(value)}, without a decimal point)"
    return error.message

