#!/usr/bin/env python3
"""Copy the CRDs the manifests use, verbatim, out of Istio's crd-all.gen.yaml.

Usage: extract.py CRD_ALL_GEN_YAML > istio-<version>.yaml

The source file is a stream of "---"-separated CRD documents; the chosen ones are written
unchanged (text, not re-serialised), so a diff against upstream shows nothing but omissions.
A CRD missing from the source (TrafficExtension before Istio 1.30) is skipped with a note
on stderr; the schema test names which versions must have which kinds.
"""

import re
import sys

WANTED = (
    "wasmplugins.extensions.istio.io",
    "trafficextensions.extensions.istio.io",
    "serviceentries.networking.istio.io",
    "destinationrules.networking.istio.io",
    "envoyfilters.networking.istio.io",
)


def main(path):
    with open(path) as f:
        text = f.read()
    documents = re.split(r"^---\n", text, flags=re.MULTILINE)
    found = {}
    for document in documents:
        # The CRD's own name is the first "  name:" line under its top-level metadata.
        match = re.search(r"^metadata:\n(?:  .*\n)*?  name: (\S+)\n", document, flags=re.MULTILINE)
        if match and match.group(1) in WANTED:
            found[match.group(1)] = document
    for name in WANTED:
        if name not in found:
            print(f"note: {name} is not in {path}", file=sys.stderr)
    sys.stdout.write("---\n".join(found[name] for name in WANTED if name in found))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    main(sys.argv[1])
