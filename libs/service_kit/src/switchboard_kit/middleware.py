"""Pure ASGI middleware: correlation id, trailing slashes, request size limit (one layer)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import bearer_token, correlation_id
from .errors import ApiError, ErrorCode
from .ids import new_id

CORRELATION_HEADER = b"x-correlation-id"
AUTHORIZATION_HEADER = b"authorization"


class RequestMiddleware:
    """Every request's framing, in one ASGI layer (each layer costs a call and a send wrapper):

    - ``X-Correlation-ID`` is taken from the request or created, set for logs and events, and
      returned on the response;
    - the bearer token of ``Authorization`` is set in :data:`switchboard_kit.context.bearer_token`,
      so calls to sibling services forward it;
    - ``/x/`` is routed as ``/x``, so clients that add a trailing slash are not redirected;
    - a body above ``max_body_bytes`` is refused with a TMF Error and 413, by its
      ``Content-Length`` or, when streamed without one, by counting.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path.rstrip("/") or "/"
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        cid = None
        bearer = None
        declared = -1
        for name, value in scope["headers"]:
            if name == CORRELATION_HEADER:
                cid = value.decode("latin-1")[:200] or None
            elif name == AUTHORIZATION_HEADER:
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and credentials.strip():
                    bearer = credentials.strip()
            elif name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        cid = cid or new_id()
        cid_header = (CORRELATION_HEADER, cid.encode("latin-1"))
        if declared > self.max_bytes:
            await send_error(send, self._too_large(), [cid_header])
            return
        token = correlation_id.set(cid)
        bearer_set = bearer_token.set(bearer)
        received = 0
        started = False
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def framed_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The framework may turn the aborted read into its own error response: answer 413 instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await send_error(send, self._too_large(), [cid_header])
                return
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), cid_header]
            await send(message)

        try:
            await self.app(scope, limited_receive, framed_send)
        except _TooLarge:
            if not started:
                await send_error(send, self._too_large(), [cid_header])
        finally:
            bearer_token.reset(bearer_set)
            correlation_id.reset(token)

    def _too_large(self) -> ApiError:
        return BodyTooLarge(
            "Request body too large", f"The request body exceeds the limit of {self.max_bytes} bytes"
        )


class CorsMiddleware(CORSMiddleware):
    """Starlette's CORS for the TMF APIs: a browser at one of ``origins`` may call every operation.

    A preflight that is refused (origin, method or header not allowed) is a TMF Error with 400 instead
    of Starlette's plain text. The app installs it only when origins are configured: with none, a
    preflight is an ``OPTIONS`` the routes do not serve (405) and no response carries an
    ``Access-Control-Allow-Origin``, so browsers refuse every cross-origin call.
    """

    METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE")
    REQUEST_HEADERS = (
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "If-Match",
        "If-None-Match",
        "X-Correlation-ID",
    )
    RESPONSE_HEADERS = ("ETag", "Location", "X-Correlation-ID", "X-Total-Count", "X-Result-Count")

    def __init__(self, app: ASGIApp, origins: Sequence[str], max_age: int = 600) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=self.METHODS,
            allow_headers=self.REQUEST_HEADERS,
            expose_headers=self.RESPONSE_HEADERS,
            max_age=max_age,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        error = ErrorCode.BAD_REQUEST.error(bytes(response.body).decode(), reason="CORS request not allowed")
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}
        return Response(orjson.dumps(error.to_body()), 400, headers, media_type="application/json")


async def send_error(send: Send, error: ApiError, extra_headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = orjson.dumps(error.to_body())
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(ApiError):
    status = 413
    code = "payloadTooLarge"


class _TooLarge(Exception):
    pass
