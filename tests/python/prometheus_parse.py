"""Parses a Prometheus text exposition from standard input with the Prometheus
project's own Python parser (prometheus_client.parser) and prints what it found as
JSON: {"families": {name: type}, "samples": [{"name", "labels", "value"}]}.

A malformed exposition makes the parser raise: the script then exits 1 with the
parser's message on standard error. Used by the e2e metrics tests; CI installs
prometheus_client in a virtual environment (.ci/run).
"""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    families = {}
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            if family.name in families:
                raise ValueError(f"family {family.name} appears twice")
            families[family.name] = family.type
            for sample in family.samples:
                samples.append(
                    {"name": sample.name, "labels": sample.labels, "value": sample.value}
                )
    except Exception as error:  # the parser's own exceptions vary by version
        print(f"not a valid exposition: {error}", file=sys.stderr)
        return 1
    json.dump({"families": families, "samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
