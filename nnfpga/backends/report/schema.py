"""The JSON schema of report.json (``schema.json``, package data) and a small validator.

`validate(report)` returns the list of violations (empty when valid).  It implements the
part of JSON Schema draft 7 that ``schema.json`` uses: ``type`` (one or a list),
``enum``, ``properties``, ``required``, ``additionalProperties`` (false or a schema),
``items``, ``minItems``, ``minimum``, ``exclusiveMinimum``, ``oneOf`` and local
``$ref`` (``#/definitions/...``); anything else in a schema is a ValueError, so the
validator never silently ignores a rule.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

_KNOWN = {"$schema", "$id", "title", "description", "type", "enum", "properties", "required",
          "additionalProperties", "items", "minItems", "minimum", "exclusiveMinimum", "oneOf", "$ref",
          "definitions"}


@lru_cache(maxsize=1)
def load_schema() -> dict:
    return json.loads(resources.files("nnfpga.backends.report").joinpath("schema.json").read_text())


def _is_type(value, t: str) -> bool:
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    raise ValueError(f"unknown schema type {t!r}")


def _check(value, schema: dict, root: dict, path: str, errors: list[str]) -> None:
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"schema at {path}: unsupported keywords {sorted(unknown)}")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/definitions/"):
            raise ValueError(f"schema at {path}: only local #/definitions refs are supported ({ref})")
        _check(value, root["definitions"][ref.split("/")[-1]], root, path, errors)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            errors.append(f"{path}: expected {' or '.join(types)}, got {type(value).__name__} {value!r:.60}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "oneOf" in schema:
        matches = 0
        for sub in schema["oneOf"]:
            sub_errors: list[str] = []
            _check(value, sub, root, path, sub_errors)
            matches += not sub_errors
        if matches != 1:
            errors.append(f"{path}: matches {matches} of the oneOf alternatives (needs exactly 1)")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < minimum {schema['minimum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{path}: {value} <= exclusive minimum {schema['exclusiveMinimum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required key {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            sub_path = f"{path}.{key}"
            if key in props:
                _check(v, props[key], root, sub_path, errors)
            elif extra is False:
                errors.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                _check(v, extra, root, sub_path, errors)
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: {len(value)} items, at least {schema['minItems']} needed")
        if "items" in schema:
            for i, v in enumerate(value):
                _check(v, schema["items"], root, f"{path}[{i}]", errors)


def validate(report: dict, schema: dict | None = None) -> list[str]:
    """Violations of ``schema`` (default: report.json's) by ``report``; [] when valid."""
    schema = schema or load_schema()
    errors: list[str] = []
    _check(report, schema, schema, "report", errors)
    return errors
