"""kernel_mgmt.curve: the policy, key provisioning and validation, socket options (units).

The end-to-end behaviour (real kernels and peers) is in tests/integration/test_curve_*.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import zmq

from kernel_mgmt import curve
from kernel_mgmt.config import ConfigError, transport_encryption_policy, validate_config


def test_policy_words_are_jupyter_clients() -> None:
    from jupyter_client.manager import KernelManager

    trait = KernelManager.class_traits()["transport_encryption"]
    assert tuple(trait.values) == curve.POLICIES
    assert curve.normalize_policy(" Required ") == "required"
    with pytest.raises(ValueError, match="one of disabled, auto, required, not 'on'"):
        curve.normalize_policy("on", "x")


@pytest.mark.parametrize(
    ("value", "declared"),
    [
        (["curve"], True),
        ("curve", True),  # the JEP's first form, accepted by jupyter_client too
        ([" CURVE "], True),
        (["tls", "curve"], True),
        ([], False),
        (None, False),
        ("tls", False),
        ({"curve": True}, False),
    ],
)
def test_declares_curve_reads_metadata_as_jupyter_client(value: object, declared: bool) -> None:
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    assert curve.declares_curve(value) is declared
    km = KernelManager()
    km._kernel_spec = KernelSpec(argv=["x"], metadata={"supported_encryption": value})
    assert km._kernel_supports_curve_encryption() is declared


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("7.4.0", True),
        ("7.3.0", True),
        ("7.3.0rc1", True),
        ("8.0", True),
        ("7.2.0", False),
        ("6.29.5", False),
        ("", False),
        (None, False),
        ("dev", False),
    ],
)
def test_ipykernel_versions(version: str | None, ok: bool) -> None:
    assert curve.ipykernel_supports_curve(version) is ok


def test_dist_info_version() -> None:
    entries = ["ipykernel", "ipykernel_launcher.py", "ipykernel-7.4.0.dist-info", "zmq"]
    assert curve.dist_info_version(entries, "ipykernel") == "7.4.0"
    assert curve.dist_info_version(["ipykernelx-1.0.dist-info"], "ipykernel") is None
    assert curve.dist_info_version(["jupyter_client-8.10.0.dist-info"], "jupyter-client") == (
        "8.10.0"
    )


def test_provision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(curve.ENV_POLICY, raising=False)
    keys = curve.provision("k", "tcp", ["curve"])
    assert set(keys) == {"curve_publickey", "curve_secretkey"}
    assert all(len(v) == curve.Z85_KEY_LENGTH for v in keys.values())
    # The pair belongs together: the public key derives from the secret one.
    assert zmq.curve_public(keys["curve_secretkey"].encode()).decode() == keys["curve_publickey"]
    assert keys != curve.provision("k", "tcp", ["curve"])  # one pair per kernel
    assert curve.provision("k", "tcp", None) == {}  # auto, undeclared
    assert curve.provision("k", "ipc", ["curve"]) == {}  # auto leaves ipc alone
    assert curve.provision("k", "ipc", ["curve"], policy="required")
    assert curve.provision("k", "tcp", ["curve"], policy="disabled") == {}
    assert curve.provision("k", "tcp", ["curve"], {"transport_encryption": "disabled"}) == {}
    with pytest.raises(curve.TransportEncryptionError, match=r"kernel k: .*'required'"):
        curve.provision("k", "tcp", None, policy="required")


def test_provision_without_libsodium(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyzmq without CURVE: auto quietly launches without keys; required says why not.

    (zmq.has is replaced: every pyzmq wheel here has libsodium, and that is the point.)
    """
    monkeypatch.setattr(zmq, "has", lambda what: what != "curve")
    assert curve.provision("k", "tcp", ["curve"]) == {}
    with pytest.raises(curve.TransportEncryptionError, match="libsodium"):
        curve.provision("k", "tcp", ["curve"], policy="required")


def test_default_policy_scope_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(curve.ENV_POLICY, raising=False)
    assert curve.default_policy() == "auto"
    monkeypatch.setenv(curve.ENV_POLICY, "Disabled")
    assert curve.default_policy() == "disabled"
    with curve.policy_scope("required"):
        assert curve.default_policy() == "required"
        with curve.policy_scope(None):
            assert curve.default_policy() == "required"
    assert curve.default_policy() == "disabled"
    monkeypatch.setenv(curve.ENV_POLICY, "sometimes")
    with pytest.raises(ValueError, match=curve.ENV_POLICY):
        curve.default_policy()
    with pytest.raises(curve.TransportEncryptionError, match=r"fix \$KERNEL_MGMT_TRANSPORT"):
        curve.provision("k", "tcp", ["curve"])
    with pytest.raises(curve.TransportEncryptionError, match="fix that kernelspec"):
        curve.provision("k", "tcp", ["curve"], {"transport_encryption": "x"})


def test_config_key() -> None:
    validate_config({"transport_encryption": "required"})
    with pytest.raises(ConfigError) as err:
        validate_config({"transport_encryption": "yes"}, "/etc/km.toml")
    assert err.value.key == "transport_encryption" and err.value.path == "/etc/km.toml"
    assert transport_encryption_policy({}) is None
    assert transport_encryption_policy({"transport_encryption": "AUTO"}) == "auto"
    with pytest.raises(ConfigError, match="transport_encryption"):
        transport_encryption_policy({"transport_encryption": 1})


def test_describe() -> None:
    declared = {"metadata": {"supported_encryption": ["curve"]}}
    assert curve.describe(declared, policy="auto") == {
        "policy": "auto",
        "supported": True,
        "encrypted": True,
    }
    assert curve.describe({}, policy="auto")["encrypted"] is False
    assert curve.describe(declared, policy="disabled")["encrypted"] is False
    assert "problem" in curve.describe({}, policy="required")
    own = {"metadata": {"supported_encryption": "curve", "transport_encryption": "disabled"}}
    assert curve.describe(own, policy="required")["policy"] == "disabled"
    bad = curve.describe({"metadata": {"transport_encryption": "x"}}, policy="auto")
    assert bad["encrypted"] is False and "metadata.transport_encryption" in bad["problem"]


def test_curve_keys_validation() -> None:
    public, secret = zmq.curve_keypair()
    info = {"curve_publickey": public.decode(), "curve_secretkey": secret.decode()}
    assert curve.curve_keys(info) == (public, secret)
    assert curve.curve_keys({"curve_publickey": public}) == (public, None)
    assert curve.curve_keys({}) is None
    for broken in (
        {"curve_publickey": public.decode()[:-1]},
        {"curve_publickey": public.decode(), "curve_secretkey": secret.decode() + "x"},
        {"curve_publickey": public.decode(), "curve_secretkey": "é" * 40},
        {"curve_publickey": public.decode(), "curve_secretkey": 42},
        {"curve_secretkey": secret.decode()},
    ):
        with pytest.raises(curve.CurveKeyError) as err:
            curve.curve_keys(broken, " in /x.json")
        text = str(err.value)
        assert "/x.json" in text or "no curve_publickey" in text
        assert secret.decode()[:20] not in text and public.decode()[:20] not in text


def test_socket_options_make_a_working_pair() -> None:
    """Server options + client options (with the file's pair, or only the public key) talk;
    a client with another server key does not."""
    ctx = zmq.Context.instance()
    public, secret = zmq.curve_keypair()
    keys = (public, secret)
    server = ctx.socket(zmq.ROUTER)
    server.linger = 0
    curve.apply_server_options(server, keys)
    assert server.getsockopt(zmq.CURVE_SERVER) == 1
    port = server.bind_to_random_port("tcp://127.0.0.1")
    wrong = zmq.curve_keypair()
    try:
        cases = [((public, secret), True), ((public, None), True), (wrong, False)]
        for client_keys, works in cases:
            client = ctx.socket(zmq.DEALER)
            client.linger = 0
            curve.apply_client_options(client, client_keys)
            client.connect(f"tcp://127.0.0.1:{port}")
            client.send(b"hello")
            got = server.poll(2000 if works else 500)
            assert bool(got) is works
            if got:
                assert server.recv_multipart()[-1] == b"hello"
            client.close()
    finally:
        server.close()
    sock = ctx.socket(zmq.ROUTER)
    try:
        with pytest.raises(curve.CurveKeyError):
            curve.apply_server_options(sock, (public, None))
    finally:
        sock.close(linger=0)


def test_module_is_light() -> None:
    """Imported by kernels at start-up and by `kernel-mgmt list`: no zmq until keys are made."""
    code = (
        "import sys, kernel_mgmt.curve; "
        "print(sorted(m for m in ('zmq', 'jsonschema', 'asyncio', 'pluggy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
