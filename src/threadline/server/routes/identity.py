"""Routes of the ACS Identity API."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from threadline.protocol.times import format_precise_ms
from threadline.protocol.versions import IDENTITY_VERSIONS
from threadline.protocol.wire import (
    AccessTokenModel,
    CreateIdentityRequest,
    CreateIdentityResult,
    IdentityModel,
    IssueTokenRequest,
    TeamsExchangeRequest,
)
from threadline.server.answers import json, no_content
from threadline.server.auth import admit, verify_hmac
from threadline.server.endpoint import Call, endpoint

__all__ = ["routes"]

identity = endpoint(IDENTITY_VERSIONS)


async def _signed(call: Call) -> bytes:
    """Read the body, check the request's HMAC signature, then charge the resource's rate budget."""
    body = await call.body()
    verify_hmac(call, body, call.state.settings.key_bytes)
    await admit(call, None)
    return body


def _token(token: str, expires_at: int) -> AccessTokenModel:
    return AccessTokenModel(token=token, expires_on=format_precise_ms(expires_at * 1000))


@identity
async def create_identity(call: Call) -> Response:
    body = await _signed(call)
    request = call.decode(body, CreateIdentityRequest, empty=CreateIdentityRequest())
    user, issued = await call.state.identity.create(request.create_token_with_scopes, request.expires_in_minutes)
    token = _token(issued.token, issued.expires_at) if issued else None
    return json(call, CreateIdentityResult(identity=IdentityModel(id=user.id), access_token=token), 201)


@identity
async def issue_token(call: Call) -> Response:
    body = await _signed(call)
    request = call.decode(body, IssueTokenRequest)
    issued = await call.state.identity.issue(call.path("user_id"), request.scopes, request.expires_in_minutes)
    return json(call, _token(issued.token, issued.expires_at))


@identity
async def revoke_tokens(call: Call) -> Response:
    await _signed(call)
    await call.state.identity.revoke(call.path("user_id"))
    return no_content(call)


@identity
async def delete_identity(call: Call) -> Response:
    await _signed(call)
    await call.state.identity.delete(call.path("user_id"))
    return no_content(call)


@identity
async def exchange_teams_token(call: Call) -> Response:
    body = await _signed(call)
    request = call.decode(body, TeamsExchangeRequest)
    issued = await call.state.identity.exchange_teams_token(request.token, request.app_id, request.user_id)
    return json(call, _token(issued.token, issued.expires_at))


routes = [
    Route("/identities", create_identity, methods=["POST"]),
    Route("/identities/{user_id}", delete_identity, methods=["DELETE"]),
    Route("/identities/{user_id}/:issueAccessToken", issue_token, methods=["POST"]),
    Route("/identities/{user_id}/:revokeAccessTokens", revoke_tokens, methods=["POST"]),
    Route("/teamsUser/:exchangeAccessToken", exchange_teams_token, methods=["POST"]),
]
