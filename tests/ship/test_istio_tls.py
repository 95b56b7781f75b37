"""The IdP's certificate name is checked: the JWKS fetch over Istio's TLS origination, in Envoy.

Envoy runs the filter with envoy/istio/'s pluginConfig and the IdP cluster Istio generates for
serviceentry.yaml's DestinationRule (tests/ship/istio_xds.py), pointed at a JWKS server on
127.0.0.1 that speaks TLS with a certificate from a CA made for this test. The CA stands in for
the system roots: it is served as the static secret "file-root:system", the SDS resource Istio
names when the DestinationRule sets no caCertificates.
- The IdP's real name: the keys are fetched and a token is accepted.
- A certificate from the same trusted CA for another name: the handshake is refused for its
  name (Envoy's ssl.fail_verify_san), the JWKS server answers nothing, and the request fails
  closed with 401 "signing keys unavailable"; the MCP server sees nothing.
- Control: the same wrong-name certificate IS accepted with the DestinationRule's
  subjectAltNames removed (the manifest before this change), so the refusal above comes from
  the name check and not from anything else in the setup.
"""

import copy
import datetime
import json
import os
import ssl
import threading
import unittest
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import istio_xds
from ship import applied, harness  # first: puts tests/e2e on the path for the two imports below
from istio_envoy import LoopbackServer, QuietHandler, start_envoy
from counting_upstream import CountingUpstream  # noqa: E402
from tokens import SigningKey, jwks, mint  # noqa: E402

class ThrowawayCa:
    """A CA made for one test run, issuing server certificates for a chosen DNS name."""

    def __init__(self, directory):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcp-authn test CA")])
        self.cert = (
            self._builder(name, name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = self._write("ca.pem", self.cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _builder(subject, issuer, public_key):
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )

    def _write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def issue(self, dns_name):
        """(cert path, key path) of a server certificate whose only name is `dns_name`."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
        cert = (
            self._builder(subject, self.cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return (self._write(f"{dns_name}.pem", cert.public_bytes(serialization.Encoding.PEM)),
                self._write(f"{dns_name}.key", key_pem))


class TlsJwksServer(LoopbackServer):
    """An HTTPS JWKS endpoint on 127.0.0.1 recording every request it answers."""

    def __init__(self, document, path, cert_path, key_path):
        self.requests = []  # (Host header, path) of each request that completed a handshake
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_GET(self):
                with server._lock:
                    server.requests.append((self.headers.get("host"), self.path))
                found = self.path == path
                body = json.dumps(document if found else {"error": "not_found"}).encode()
                self.send_json(200 if found else 404, body)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        super().__init__(Handler, context)

    def seen(self):
        with self._lock:
            return list(self.requests)


class IdpCertificateNameTest(harness.KeepsLogsOnFailure, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keep_logs_until_done()
        [plugin] = applied("trafficextension.yaml")
        cls.plugin = plugin
        cls.config = plugin["spec"]["wasm"]["pluginConfig"]
        idp = applied("serviceentry.yaml")
        [cls.service_entry] = [d for d in idp if d["kind"] == "ServiceEntry"]
        [cls.destination_rule] = [d for d in idp if d["kind"] == "DestinationRule"]
        jwks_url = urllib.parse.urlparse(cls.config["jwks"]["url"])
        cls.idp_host, cls.jwks_path = jwks_url.hostname, jwks_url.path
        cls.ca = ThrowawayCa(cls.log_dir)
        cls.signing_key = SigningKey.rsa()
        cls.upstream = CountingUpstream().start()
        cls.addClassCleanup(cls.upstream.stop)
        cls.setup_done()

    def start(self, certificate_name, destination_rule):
        """The JWKS server with a certificate for `certificate_name`, and Envoy in front of it."""
        cert, key = self.ca.issue(certificate_name)
        server = TlsJwksServer(jwks(self.signing_key), self.jwks_path, cert, key)
        self.addCleanup(server.stop)
        cluster_name = self.config["jwks"]["cluster"]
        port = int(cluster_name.split("|")[1])
        cluster, root = istio_xds.outbound_cluster(self.service_entry, destination_rule, port, server.port)
        self.assertEqual(cluster["name"], cluster_name)
        self.assertEqual(root, "file-root:system")

        def add_idp_cluster(bootstrap):
            bootstrap["static_resources"]["clusters"].append(cluster)
            bootstrap["static_resources"]["secrets"] = [
                {"name": root, "validation_context": {"trusted_ca": {"filename": self.ca.cert_path}}}
            ]

        self.envoy = start_envoy(
            upstream_port=self.upstream.port,
            http_filters=[istio_xds.wasm_plugin(self.plugin, harness.WASM_PATH)],
            log_dir=self.log_dir, add_cleanup=self.addCleanup, customize=add_idp_cluster,
            name=f"envoy-{self._testMethodName}",
        )
        return server, cluster_name

    def call_with_token(self):
        token = mint(self.signing_key, iss=self.config["issuer"], aud=self.config["audiences"][0],
                     extra={"sub": "alice"})
        return harness.http_request(self.envoy.listener_port, "GET", "/mcp",
                                    headers={"authorization": f"Bearer {token}"}, timeout=15)

    def assert_accepted(self, server):
        before = self.upstream.count
        status, _, body = self.call_with_token()
        self.assertEqual(status, 200, body)
        self.assertEqual(self.upstream.count, before + 1)
        self.assertEqual(self.upstream.last_headers.get("x-mcp-user"), "alice")
        # The fetch went to the IdP by name: :authority and path come from jwks.url.
        self.assertIn((self.idp_host, self.jwks_path), server.seen())

    def test_the_idps_certificate_is_accepted(self):
        server, _ = self.start(self.idp_host, self.destination_rule)
        self.assert_accepted(server)

    def test_a_certificate_for_another_name_is_refused_and_requests_fail_closed(self):
        server, cluster_name = self.start("other.example.net", self.destination_rule)
        before = self.upstream.count
        status, headers, _ = self.call_with_token()
        self.assertEqual(status, 401)
        self.assertIn('error_description="signing keys unavailable"', headers["www-authenticate"])
        self.assertEqual(self.upstream.count, before)
        self.assertEqual(server.seen(), [])
        stat = f"cluster.{cluster_name}.ssl.fail_verify_san"
        failures = self.envoy.stats("^" + stat.replace("|", "\\|").replace(".", "\\.") + "$")
        self.assertGreaterEqual(failures.get(stat, 0), 1, failures)

    def test_control_without_subject_alt_names_any_trusted_name_would_do(self):
        rule = copy.deepcopy(self.destination_rule)
        for setting in rule["spec"]["trafficPolicy"]["portLevelSettings"]:
            setting["tls"].pop("subjectAltNames", None)
        server, _ = self.start("other.example.net", rule)
        self.assert_accepted(server)


if __name__ == "__main__":
    unittest.main()
