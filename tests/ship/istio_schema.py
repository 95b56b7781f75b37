"""Validate Kubernetes manifests against Istio's own CRD schemas (tests/ship/istio-crds/).

What the API server does with a custom resource, as far as a test without a cluster can:
- the served version's openAPIV3Schema, checked with jsonschema (types, enums, patterns,
  lengths, the oneOf groups Istio uses for protobuf oneofs);
- unknown fields are errors. A structural schema makes the API server drop them silently
  (a misspelt `subjectAltName` would simply vanish), so every object schema that does not say
  `x-kubernetes-preserve-unknown-fields` gets `additionalProperties: false`;
- `x-kubernetes-list-type` map/set uniqueness;
- the CEL rules (`x-kubernetes-validations`) have no Python evaluator here, so each rule the
  manifests reach must have a hand-written equivalent in CEL_RULES, keyed by its exact text.
  A rule without one is reported as an error, never skipped.
- metadata: a name and namespace the API server accepts, and only the fields a manifest sets.
"""

import copy
import os
import re
import urllib.parse

import jsonschema
import yaml

CRD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "istio-crds")
# DNS-1123 subdomain (metadata.name) and label (metadata.namespace), as the API server checks.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
METADATA_FIELDS = {"name", "namespace", "labels", "annotations"}


def _present(obj, field):
    return isinstance(obj, dict) and field in obj


def _count(obj, *fields):
    return sum(1 for f in fields if _present(obj, f))


def _url_scheme_allowed(value, schemes):
    """CEL isURL/url().getScheme(), close enough for a url field: a scheme in `schemes`."""
    parsed = urllib.parse.urlsplit(value if "://" in value else "http://" + value)
    return bool(parsed.netloc) and parsed.scheme in schemes


WASM_SCHEMES = {"", "http", "https", "file", "oci"}
# Exact CEL rule text -> a Python predicate on the value the rule is attached to.
CEL_RULES = {
    '(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1':
        lambda s: _count(s, "selector", "targetRef", "targetRefs") <= 1,
    '(has(self.selector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1':
        lambda s: _count(s, "selector", "targetRefs") <= 1,
    '(has(self.workloadSelector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1':
        lambda s: _count(s, "workloadSelector", "targetRefs") <= 1,
    '(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1':
        lambda s: _count(s, "workloadSelector", "endpoints") <= 1,
    'has(self.wasm) != has(self.lua)': lambda s: _present(s, "wasm") != _present(s, "lua"),
    'self.all(key, !key.contains("*"))': lambda m: all("*" not in k for k in m),
    'self.all(key, key.size() != 0)': lambda m: all(k != "" for k in m),
    '!self.contains("*")': lambda v: "*" not in v,
    'self != "*"': lambda v: v != "*",
    'self.size() == 0': lambda v: len(v) == 0,
    '0 < self && self <= 65535': lambda v: 0 < v <= 65535,
    'self.all(l1, self.exists_one(l2, l1.number == l2.number))':
        lambda ports: all(sum(1 for q in ports if q.get("number") == p.get("number")) == 1 for p in ports),
    '!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && '
    '!((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))':
        lambda s: not (any("/" in a for a in s.get("addresses", []))
                       and s.get("resolution", "NONE") not in ("STATIC", "NONE")),
    '((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? '
    '((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true':
        lambda s: s.get("resolution") != "DNS_ROUND_ROBIN" or len(s.get("endpoints", [])) <= 1,
    '((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true':
        lambda s: s.get("resolution", "NONE") != "NONE" or "endpoints" not in s,
    'has(self.context) ? ((self.context == "WAYPOINT") ? has(self.waypoint) : !has(self.waypoint)) : '
    '!has(self.waypoint)':
        lambda m: ("waypoint" in m) == (m.get("context") == "WAYPOINT"),
    'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : '
    '(isURL("http://" + self) &&\nurl("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])':
        lambda v: _url_scheme_allowed(v, WASM_SCHEMES),
    'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "file", "oci"]) : '
    '(isURL("http://" + self) &&\nurl("http://" + self).getScheme() in ["", "http", "https", "file", "oci"])':
        lambda v: _url_scheme_allowed(v, WASM_SCHEMES),
    '(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)':
        lambda e: e.get("valueFrom", "") != "HOST" or "value" not in e,
    # The same checks as Istio 1.24 spells them.
    '(has(self.selector)?1:0)+(has(self.targetRef)?1:0)+(has(self.targetRefs)?1:0)<=1':
        lambda s: _count(s, "selector", "targetRef", "targetRefs") <= 1,
    '(has(self.workloadSelector)?1:0)+(has(self.targetRefs)?1:0)<=1':
        lambda s: _count(s, "workloadSelector", "targetRefs") <= 1,
    '(has(self.workloadSelector)?1:0)+(has(self.endpoints)?1:0)<=1':
        lambda s: _count(s, "workloadSelector", "endpoints") <= 1,
    "self.all(key, !key.contains('*'))": lambda m: all("*" not in k for k in m),
    "!self.contains('*')": lambda v: "*" not in v,
    "self != '*'": lambda v: v != "*",
    "!(has(self.addresses) && self.addresses.exists(k, k.contains('/')) && (has(self.resolution) && "
    "self.resolution != 'STATIC' && self.resolution != 'NONE'))":
        lambda s: not (any("/" in a for a in s.get("addresses", []))
                       and s.get("resolution", "NONE") not in ("STATIC", "NONE")),
    "(!has(self.resolution) || self.resolution == 'NONE') ? !has(self.endpoints) : true":
        lambda s: s.get("resolution", "NONE") != "NONE" or "endpoints" not in s,
    "(has(self.resolution) && self.resolution == 'DNS_ROUND_ROBIN') ? "
    "(!has(self.endpoints) || size(self.endpoints) == 1) : true":
        lambda s: s.get("resolution") != "DNS_ROUND_ROBIN" or len(s.get("endpoints", [None])) == 1,
    "isURL(self) ? (url(self).getScheme() in ['', 'http', 'https', 'oci', 'file']) : "
    "(isURL('http://' + self) && url('http://' +self).getScheme() in ['', 'http', 'https', 'oci', 'file'])":
        lambda v: _url_scheme_allowed(v, WASM_SCHEMES),
}


def _strict(schema):
    """A copy of an openAPIV3Schema that jsonschema can check the way the API server does."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        if node.get("x-kubernetes-int-or-string") and "type" not in node:
            node["type"] = ["integer", "string"]
        if node.get("nullable") and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        if (node.get("type") == "object" and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        children = list(node.get("properties", {}).values())
        children += [node.get("items"), node.get("additionalProperties"), node.get("not")]
        children += node.get("oneOf", []) + node.get("anyOf", []) + node.get("allOf", [])
        for child in children:
            walk(child)

    walk(schema)
    return schema


class Crds:
    """The CRDs of one Istio version: (apiVersion, kind) -> its served openAPIV3Schema."""

    def __init__(self, version):
        self.version = version
        self.path = os.path.join(CRD_DIR, f"istio-{version}.yaml")
        self.schemas = {}
        with open(self.path) as f:
            for crd in yaml.safe_load_all(f):
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for served in crd["spec"]["versions"]:
                    if served.get("served"):
                        self.schemas[(f"{group}/{served['name']}", kind)] = served["schema"]["openAPIV3Schema"]

    def kinds(self):
        return {kind for _, kind in self.schemas}

    def errors(self, document):
        """Every reason the API server of this Istio version would refuse `document` ([] if none)."""
        if not isinstance(document, dict):
            return ["not a mapping"]
        key = (document.get("apiVersion"), document.get("kind"))
        if key not in self.schemas:
            return [f"{key[1]} {key[0]} is not served by Istio {self.version}"]
        schema = self.schemas[key]
        errors = _metadata_errors(document.get("metadata"))
        extra = set(document) - {"apiVersion", "kind", "metadata"} - set(schema.get("properties", {}))
        errors += [f"unknown top-level field {name!r}" for name in sorted(extra)]
        body = {k: v for k, v in document.items() if k not in ("apiVersion", "kind", "metadata")}
        strict = _strict(schema)
        validator = jsonschema.Draft4Validator(strict)
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
            errors.append(f"{_path(error.absolute_path)}: {error.message}")
        errors += _kubernetes_errors(schema, body, "")
        return errors


def _metadata_errors(metadata):
    if not isinstance(metadata, dict):
        return ["metadata: missing"]
    errors = [f"metadata.{k}: not a field a manifest sets" for k in sorted(set(metadata) - METADATA_FIELDS)]
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not (isinstance(name, str) and len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name)):
        errors.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    if namespace is not None and not (isinstance(namespace, str) and len(namespace) <= 63
                                      and DNS_LABEL.fullmatch(namespace)):
        errors.append(f"metadata.namespace: {namespace!r} is not a DNS-1123 label")
    for field in ("labels", "annotations"):
        value = metadata.get(field, {})
        if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            errors.append(f"metadata.{field}: must map strings to strings")
    return errors


def _path(parts):
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".") or "(root)"


def _kubernetes_errors(schema, value, path):
    """CEL rules and list-type uniqueness along the parts of `value` that are present."""
    errors = []
    if not isinstance(schema, dict):
        return errors
    for rule in schema.get("x-kubernetes-validations", []):
        check = CEL_RULES.get(rule["rule"])
        if check is None:
            errors.append(f"{path or '(root)'}: CEL rule with no Python equivalent: {rule['rule']!r}")
        elif not _safe(check, value):
            errors.append(f"{path or '(root)'}: {rule.get('message', rule['rule'])}")
    if isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set" and len({repr(v) for v in value}) != len(value):
            errors.append(f"{path}: duplicate items in a set")
        if list_type == "map":
            keys = [tuple(repr(v.get(k)) for k in schema.get("x-kubernetes-list-map-keys", [])) for v in value
                    if isinstance(v, dict)]
            if len(set(keys)) != len(keys):
                errors.append(f"{path}: duplicate keys in a map list")
        for i, item in enumerate(value):
            errors += _kubernetes_errors(schema.get("items"), item, f"{path}[{i}]")
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            sub = properties.get(key, schema.get("additionalProperties"))
            errors += _kubernetes_errors(sub, item, f"{path}.{key}" if path else key)
    return errors


def _safe(check, value):
    """A predicate on a value of the wrong shape is a failure, not a crash (jsonschema says why)."""
    try:
        return bool(check(value))
    except (AttributeError, TypeError, KeyError):
        return False
