"""The mock authenticates like APNs, through the real client: JWT age, the 20-minute
token-update rule (shrunk to a fraction of a second), and TLS client certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import pushwire
from pushwire import Notification, Outcome
from pushwire.testing import MockAPNs
from support.util import tokens

BUNDLE_ID = "com.example.app"
ROTATION = 50 * 60


class FakeClock:
    """Epoch seconds that tests move by hand; JWTs take their ``iat`` from it."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def token_credentials(p8_key: bytes, clock: FakeClock) -> pushwire.TokenCredentials:
    return pushwire.TokenCredentials(
        p8_key, key_id="ABC123DEFG", team_id="TEAM123456", rotation=ROTATION, clock=clock
    )


def test_jwt_minted_two_hours_ago_is_expired(p8_key, message):
    creds = token_credentials(p8_key, FakeClock(time.time() - 2 * 3600))

    async def main() -> list[pushwire.Result]:
        async with server.client(max_connections=2) as client:
            return await client.send_many([Notification(t, message) for t in tokens(5)])

    with MockAPNs(credentials=creds) as server:
        results = asyncio.run(main())
        assert {(r.outcome, r.status, r.reason) for r in results} == {
            (Outcome.REJECTED, 403, "ExpiredProviderToken")
        }
        assert server.distinct_tokens == 0
        assert server.token_update_rejections == 0


def test_long_run_rotates_one_shared_jwt_without_too_many_updates(p8_key, message):
    batches = 5
    # JWTs rotate every 50 fake minutes; start far enough back that the last `iat` is now.
    clock = FakeClock(time.time() - (batches - 1) * ROTATION - 60)
    creds = token_credentials(p8_key, clock)
    toks = tokens(300)

    async def main() -> list[list[pushwire.Result]]:
        rounds = []
        async with server.client(max_connections=2) as client:
            for batch in range(batches):
                if batch:
                    clock.advance(ROTATION)
                    # Longer than the mock's update window, in real time.
                    await asyncio.sleep(0.6)
                rounds.append(await client.send_many([Notification(t, message) for t in toks]))
        return rounds

    # A small stream limit makes the client use both of its connections.
    with MockAPNs(
        credentials=creds,
        jwt_max_age=batches * ROTATION,
        token_update_window=0.5,
        max_concurrent_streams=20,
    ) as server:
        rounds = asyncio.run(main())
        reasons = {r.reason for results in rounds for r in results if not r.delivered}
        assert reasons == set()
        assert all(r.outcome is Outcome.DELIVERED for results in rounds for r in results)
        assert creds.mints == batches
        assert server.distinct_tokens == creds.mints
        assert server.token_update_rejections == 0
        assert server.total_received == batches * len(toks)
        assert server.connections_accepted == 2


@pytest.mark.parametrize("breaks", ["raises", "cancelled"])
def test_a_credential_fix_that_breaks_still_gives_each_notification_its_outcome(
    p8_key, message, breaks
):
    """Whatever ends the fix (an error that is not a PushwireError, a cancelled task), the
    rejections are reported: no notification is left waiting."""
    creds = token_credentials(p8_key, FakeClock(time.time() - 2 * 3600))

    class BrokenFix(pushwire.APNsClient):
        def _fix_auth(self, rejected):  # type: ignore[no-untyped-def]
            async def fail() -> None:
                raise OSError("the key store is gone")

            if breaks == "raises":
                return fail()
            task = asyncio.get_running_loop().create_task(asyncio.sleep(60))
            task.get_loop().call_soon(task.cancel)
            return task

    async def main() -> list[pushwire.Result]:
        client = BrokenFix(creds, base_url=server.url, ca_file=server.ca_file)
        async with client:
            return await asyncio.wait_for(
                client.send_many([Notification(t, message) for t in tokens(20)]), 10
            )

    with MockAPNs(credentials=creds) as server:
        results = asyncio.run(main())
        assert len(results) == 20
        assert {(r.outcome, r.status, r.reason) for r in results} == {
            (Outcome.REJECTED, 403, "ExpiredProviderToken")
        }


def test_changing_the_jwt_within_the_window_is_refused(p8_key, message):
    clock = FakeClock(time.time() - ROTATION - 60)
    creds = token_credentials(p8_key, clock)

    async def main() -> list[pushwire.Result]:
        async with server.client(max_connections=1) as client:
            first = await client.send_many([Notification(t, message) for t in tokens(3)])
            assert all(r.delivered for r in first)
            clock.advance(ROTATION)  # a new JWT at once, on the same connection
            return await client.send_many([Notification(t, message) for t in tokens(3)])

    with MockAPNs(credentials=creds, jwt_max_age=2 * ROTATION, token_update_window=60) as server:
        results = asyncio.run(main())
        assert {(r.status, r.reason) for r in results} == {(429, "TooManyProviderTokenUpdates")}
        assert server.token_update_rejections >= 3
        assert creds.mints == 2


def _name(bundle_id: str | None, common_name: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if bundle_id is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.USER_ID, bundle_id))
    return x509.Name(attributes)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def client_pki() -> tuple[bytes, bytes, bytes]:
    """(CA PEM, client certificate PEM, client key PEM), like an APNs push certificate."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(None, "Test Push CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        x509.CertificateBuilder()
        .subject_name(_name(BUNDLE_ID, f"Apple Push Services: {BUNDLE_ID}"))
        .issuer_name(ca_name)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = client_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _pem(ca), _pem(client), key_pem


def test_certificate_auth_delivers(client_pki, message):
    ca_pem, cert_pem, key_pem = client_pki
    toks = tokens(20)

    async def main() -> list[pushwire.Result]:
        creds = pushwire.CertificateCredentials(cert_pem, key_pem)
        async with pushwire.APNsClient(
            creds, base_url=server.url, ca_file=server.ca_file
        ) as client:
            return await client.send_many([Notification(t, message) for t in toks])

    with MockAPNs(client_ca_pem=ca_pem) as server:
        results = asyncio.run(main())
        assert all(r.outcome is Outcome.DELIVERED for r in results), results[0]
        assert server.cert_connections >= 1
        assert server.total_received == len(toks)


def test_certificate_connection_ignores_provider_tokens(p8_key, client_pki, message):
    """With both configured, a certificate connection needs no JWT (here: none is sent)."""
    ca_pem, cert_pem, key_pem = client_pki
    token_creds = token_credentials(p8_key, FakeClock(time.time()))

    async def main() -> list[pushwire.Result]:
        creds = pushwire.CertificateCredentials(cert_pem, key_pem)
        async with server.client(credentials=creds) as client:
            return await client.send_many([Notification(t, message) for t in tokens(5)])

    with MockAPNs(credentials=token_creds, client_ca_pem=ca_pem) as server:
        results = asyncio.run(main())
        assert all(r.delivered for r in results), results[0]
        assert server.distinct_tokens == 0


def _send_without_client_certificate(server: MockAPNs, message) -> list[pushwire.Result]:
    async def main() -> list[pushwire.Result]:
        async with pushwire.APNsClient(
            None,
            base_url=server.url,
            ca_file=server.ca_file,
            max_connect_attempts=1,
            backoff_base=0.01,
        ) as client:
            return await client.send_many([Notification(t, message) for t in tokens(5)])

    return asyncio.run(main())


def test_missing_client_certificate_fails_at_tls(client_pki, message):
    ca_pem, _, _ = client_pki
    with MockAPNs(client_ca_pem=ca_pem) as server:
        results = _send_without_client_certificate(server, message)
        assert all(r.outcome is Outcome.FAILED for r in results), results[0]
        assert server.total_received == 0
        assert server.cert_connections == 0
        assert server.connections_accepted == 0


def test_missing_client_certificate_is_known_undelivered(client_pki, message):
    ca_pem, _, _ = client_pki
    with MockAPNs(client_ca_pem=ca_pem) as server:
        results = _send_without_client_certificate(server, message)
        assert server.total_received == 0
        assert not any(r.maybe_delivered for r in results), results[0]
