"""HTTPS listeners: serving, certificate reload on SIGHUP, a bad key refused."""
import hashlib
import socket
import ssl
import subprocess

import pytest

from conftest import free_port, run, wait_until


def make_cert(dirpath, name):
    key, crt = dirpath / f"{name}.key", dirpath / f"{name}.crt"
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(crt)])
    assert r.returncode == 0, r.stderr
    return crt, key


def served_cert(port):
    """The SHA-256 of the certificate a new TLS connection is given."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def fingerprint(crt):
    der = ssl.PEM_cert_to_DER_cert(crt.read_text())
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def tls_daemon(db, daemon, tmp_path):
    crt, key = make_cert(tmp_path, "one")
    port = free_port()
    d = daemon(db, settings={"http.tls.listen": [f"127.0.0.1:{port}"],
                             "http.tls.cert_file": str(crt), "http.tls.key_file": str(key)})
    d.tls_port, d.tmp = port, tmp_path
    return d


def test_https_serves_with_the_configured_certificate(tls_daemon):
    d = tls_daemon
    crt = d.tmp / "one.crt"
    r = d.http.get(f"https://127.0.0.1:{d.tls_port}/healthz", verify=str(crt), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert served_cert(d.tls_port) == fingerprint(crt)
    # The plain listener still answers alongside.
    assert d.get("/healthz").status_code == 200


def test_plain_http_on_the_tls_port_is_refused(tls_daemon):
    d = tls_daemon
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
    assert not data.startswith(b"HTTP/1.1 200")


def test_sighup_reloads_the_certificate(tls_daemon):
    d = tls_daemon
    crt2, key2 = make_cert(d.tmp, "two")
    d.reload(settings={"http.tls.cert_file": str(crt2), "http.tls.key_file": str(key2)})
    wait_until(lambda: served_cert(d.tls_port) == fingerprint(crt2), 5, "the new certificate served")


def test_mismatched_key_keeps_the_old_certificate(tls_daemon):
    d = tls_daemon
    crt2, _ = make_cert(d.tmp, "two")
    _, key3 = make_cert(d.tmp, "three")
    since = d.log_size()
    d.reload(settings={"http.tls.cert_file": str(crt2), "http.tls.key_file": str(key3)},
             expect_success=False)
    d.wait_log(r"key does not match the certificate|cannot load", since=since)
    assert served_cert(d.tls_port) == fingerprint(d.tmp / "one.crt")
    r = d.http.get(f"https://127.0.0.1:{d.tls_port}/healthz", verify=str(d.tmp / "one.crt"), timeout=5)
    assert r.status_code == 200


def test_tls_without_files_is_a_config_error(tmp_path):
    from conftest import LINKPULSED
    cfg = tmp_path / "c.yaml"
    cfg.write_text("http:\n  tls:\n    listen: [\"127.0.0.1:8443\"]\n")
    r = run([LINKPULSED, "-t", "-c", str(cfg)])
    assert r.returncode == 1
    assert "c.yaml:3:" in r.stderr, r.stderr
