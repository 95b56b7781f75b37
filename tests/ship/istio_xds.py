"""The Envoy config Istio generates for the manifests, for the parts the tests run in Envoy.

No istiod runs here, so this mirrors the few pieces of its translation the tests depend on,
from istio/istio (checked at 1.24.6 and 1.30.3):
- cluster names: outbound|<port>|<subset>|<host>;
- the upstream TLS of a DestinationRule `tls` block (pilot/pkg/networking/core/cluster_tls.go,
  constructUpstreamTLS and setAutoSniAndAutoSanValidation): SNI as given; SANs from the DR,
  else from the ServiceEntry's subjectAltNames; the CA from caCertificates, else "system"
  (served by istio-agent over SDS as the resource file-root:system); SANs matched with the
  exact `match_subject_alt_names` Istio still emits; auto_sni and auto_san_validation only
  when `sni` is empty and there are no SANs;
- the Wasm filter of a WasmPlugin/TrafficExtension (pilot/pkg/model/extensions.go): plugin name
  "<namespace>.<name>" ("~istio-translated-wasmplugin" appended for a WasmPlugin since 1.30),
  root_id = pluginName, no vm_id, pluginConfig as a JSON StringValue.
Anything else in a `tls` block raises, so a manifest change the mirror does not cover fails
the test instead of being tested as something it is not.
"""

import json

UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HANDLED_TLS_FIELDS = {"mode", "sni", "subjectAltNames", "caCertificates"}
TRANSLATED_SUFFIX = "~istio-translated-wasmplugin"
FAILURE_POLICIES = {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN", "FAIL_RELOAD": "FAIL_RELOAD"}


def cluster_name(host, port, subset=""):
    return f"outbound|{port}|{subset}|{host}"


def port_tls(destination_rule, port):
    """The `tls` block that applies to `port`: the port-level one replaces the top-level one."""
    policy = destination_rule["spec"].get("trafficPolicy", {})
    for setting in policy.get("portLevelSettings", []):
        if setting["port"]["number"] == port:
            return setting.get("tls")
    return policy.get("tls")


def upstream_tls(tls, service_entry_sans=()):
    """(transport_socket, upstream_http_protocol_options or None, root SDS resource name)."""
    unknown = set(tls) - HANDLED_TLS_FIELDS
    if tls.get("mode") != "SIMPLE" or unknown:
        raise NotImplementedError(f"only mode SIMPLE with {sorted(HANDLED_TLS_FIELDS)} is mirrored: {tls}")
    sni = tls.get("sni", "")
    sans = tls.get("subjectAltNames") or list(service_entry_sans)
    root = "file-root:" + (tls.get("caCertificates") or "system")
    default_validation = {}
    if sans:
        default_validation["match_subject_alt_names"] = [{"exact": san} for san in sans]
    context = {
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
            "combined_validation_context": {
                "default_validation_context": default_validation,
                "validation_context_sds_secret_config": {"name": root},
            },
        },
    }
    if sni:
        context["sni"] = sni
    auto = {}
    if not sni:
        auto["auto_sni"] = True
        if not sans:
            auto["auto_san_validation"] = True
    socket = {"name": "envoy.transport_sockets.tls", "typed_config": dict(context, **{"@type": UPSTREAM_TLS})}
    return socket, auto or None, root


def outbound_cluster(service_entry, destination_rule, port, endpoint_port):
    """Istio's cluster for `port` of a DNS ServiceEntry, with its endpoint moved to 127.0.0.1.

    Istio resolves the host (STRICT_DNS, <host>:<targetPort>); the test has no DNS for it, so
    the endpoint is a STATIC loopback address. Returns (cluster, root SDS resource name or None).
    """
    [host] = service_entry["spec"]["hosts"]
    name = cluster_name(host, port)
    cluster = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": endpoint_port}}}}]}],
        },
    }
    tls = port_tls(destination_rule, port) if destination_rule else None
    if not tls:
        return cluster, None
    socket, auto, root = upstream_tls(tls, service_entry["spec"].get("subjectAltNames", ()))
    cluster["transport_socket"] = socket
    if auto:
        cluster["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": HTTP_OPTIONS,
            "upstream_http_protocol_options": auto,
            "explicit_http_config": {"http_protocol_options": {}},
        }}
    return cluster, root


def wasm_plugin(document, wasm_path, istio_1_30=True):
    """The envoy.filters.http.wasm entry Istio builds for a WasmPlugin or TrafficExtension."""
    spec = document["spec"]
    wasm = spec["wasm"] if document["kind"] == "TrafficExtension" else spec
    name = f"{document['metadata']['namespace']}.{document['metadata']['name']}"
    if document["kind"] == "WasmPlugin" and istio_1_30:
        name += TRANSLATED_SUFFIX
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": wasm["pluginName"],
                "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": wasm_path}}},
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(wasm["pluginConfig"]),
                },
                "failure_policy": FAILURE_POLICIES[wasm.get("failStrategy", "FAIL_CLOSE")],
            },
        },
    }
