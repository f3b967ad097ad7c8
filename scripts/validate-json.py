#!/usr/bin/env python3
"""Validates every line of FILE... (each one JSON document) against docs/json-schema.json (draft 2020-12).

    validate-json.py SCHEMA FILE...

Prints one line per invalid document (file:line: the first error) and exits 1 if there was any; 0 when all are
valid. Empty lines are skipped; a line that is not JSON is an error too.
"""
import json, sys
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match


def deepest(error):
    """The most specific reason: for a oneOf over document kinds, the error inside the kind that matched best."""
    while error.context:
        error = best_match(error.context)
    return error

def main():
    schema = json.load(open(sys.argv[1]))
    Draft202012Validator.check_schema(schema)
    v = Draft202012Validator(schema)
    bad = 0
    count = 0
    for path in sys.argv[2:]:
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if not line.strip():
                continue
            count += 1
            try:
                doc = json.loads(line)
            except ValueError as e:
                print(f"{path}:{n}: not JSON: {e}: {line[:200]!r}")
                bad += 1
                continue
            error = best_match(v.iter_errors(doc))
            if error is not None:
                best = deepest(error)
                print(f"{path}:{n}: {'/'.join(map(str, best.absolute_path)) or '(document)'}: {best.message[:300]}")
                bad += 1
    print(f"{count} document(s), {bad} invalid", file=sys.stderr)
    sys.exit(1 if bad or count == 0 else 0)

main()
