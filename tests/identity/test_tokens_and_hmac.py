"""The token issuer and the HMAC verifier, against the official SDKs' own code paths."""

from __future__ import annotations

import base64
import json

import pytest
from azure.communication.chat import CommunicationTokenCredential
from azure.core.credentials import AzureKeyCredential
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline.identity import hmac as signing
from threadline.identity.tokens import InvalidToken, TokenIssuer, derive_signing_key

KEY = derive_signing_key(b"k" * 32)


@settings(max_examples=300, deadline=None)
@given(
    resource=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    guid=st.uuids(),
    scopes=st.lists(st.sampled_from(["chat", "voip", "chat.join", "chat.join.limited", "voip.join"]),
                    min_size=1, max_size=3, unique=True),
    minutes=st.integers(60, 1440),
)
def test_official_credential_reads_every_token(resource: str, guid: object, scopes: list[str], minutes: int) -> None:
    issuer = TokenIssuer(KEY, resource)
    user = f"8:acs:{resource}_{guid}"
    token, expires = issuer.issue(user, scopes, minutes, generation=3, now=1_700_000_000)
    assert "-" not in token.split(".")[1] and "_" not in token.split(".")[1]
    # The official credential decodes with the standard base64 alphabet: it must read our payload.
    assert CommunicationTokenCredential(token).get_token().expires_on == expires
    claims = issuer.verify(token, now=1_700_000_000 + 10)
    assert (claims.user_id, claims.scopes, claims.generation) == (user, tuple(scopes), 3)


def test_verify_refuses_bad_tokens() -> None:
    issuer = TokenIssuer(KEY, "res")
    token, expires = issuer.issue("8:acs:res_1", ["chat"], 60, 0, now=1_000_000)
    with pytest.raises(InvalidToken):
        issuer.verify(token, now=expires)
    with pytest.raises(InvalidToken):
        TokenIssuer(derive_signing_key(b"x" * 32), "res").verify(token, now=1_000_001)
    with pytest.raises(InvalidToken):
        TokenIssuer(KEY, "other").verify(token, now=1_000_001)
    head, body, sig = token.split(".")
    forged = json.loads(base64.b64decode(body + "=="))
    forged["skypeid"] = "acs:res_2"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(InvalidToken):
        issuer.verify(f"{head}.{forged_body}.{sig}", now=1_000_001)
    for junk in ("", "abc", "a.b.c"):
        with pytest.raises(InvalidToken):
            issuer.verify(junk)


def test_hmac_matches_the_official_policy() -> None:
    from azure.communication.identity._shared.policy import HMACCredentialsPolicy
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.pipeline.transport import HttpRequest

    key = base64.b64encode(b"s" * 32).decode()
    policy = HMACCredentialsPolicy("https://127.0.0.1:8443", AzureKeyCredential(key))
    request = HttpRequest("POST", "https://127.0.0.1:8443/identities/8%3Aacs%3Ax/:issueAccessToken?api-version=2023-10-01",
                          data='{"scopes":["chat"]}')
    request.headers["Content-Type"] = "application/json"
    policy.on_request(PipelineRequest(request, PipelineContext(None)))
    headers = request.headers
    sig = signing.parse_authorization(headers["Authorization"])
    assert sig is not None
    body_hash = signing.content_hash(b'{"scopes":["chat"]}')
    assert headers["x-ms-content-sha256"] == body_hash
    target = "/identities/8%3Aacs%3Ax/:issueAccessToken?api-version=2023-10-01"
    assert signing.verify(base64.b64decode(key), "POST", [target], ["127.0.0.1:8443"], headers["x-ms-date"],
                          body_hash, sig)
    assert not signing.verify(base64.b64decode(key), "POST", [target], ["127.0.0.1:9999"],
                              headers["x-ms-date"], body_hash, sig)
    assert not signing.verify(b"other", "POST", [target], ["127.0.0.1:8443"], headers["x-ms-date"], body_hash, sig)
    ours = signing.sign(base64.b64decode(key), "POST", target, "127.0.0.1:8443", b'{"scopes":["chat"]}', 0)
    assert signing.parse_authorization(ours["Authorization"]) == signing.signature(
        base64.b64decode(key), "POST", target, ours["x-ms-date"], "127.0.0.1:8443", body_hash
    )


def test_empty_body_hash_and_header_parsing() -> None:
    assert signing.content_hash(b"") == signing.EMPTY_CONTENT_HASH
    assert signing.parse_authorization("Bearer abc") is None
    assert signing.parse_authorization("HMAC-SHA256 SignedHeaders=host&Signature=x") is None
    assert signing.parse_authorization(signing.authorization("abc=")) == "abc="
