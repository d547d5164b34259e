"""CodeSync's error classes and the one envelope every error answer uses.

    >>> raise NotFoundError("Session not found")
    >>> error_response(err)      # 404 {"error": {"message", "code", "statusCode"}}

Each class carries the HTTP status, the envelope code and the `type` label that
`codesync_errors_total{type,code}` records (the class name CodeSync's error handler sees).
"""

from __future__ import annotations

from aiohttp import web


class ApiError(Exception):
    """An error answered to the client; subclasses fix status, code and type."""

    status = 500
    code = "INTERNAL_ERROR"
    type_name = "AppError"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def envelope(self) -> dict:
        return {"error": {"message": self.message, "code": self.code, "statusCode": self.status}}


class ValidationError(ApiError):
    status, code, type_name = 400, "VALIDATION_ERROR", "ValidationError"


class AuthenticationError(ApiError):
    status, code, type_name = 401, "AUTH_REQUIRED", "AuthenticationError"


class CsrfError(ApiError):
    """401 with code CSRF_MISSING (no x-csrf-token header) or CSRF_INVALID."""

    status, code, type_name = 401, "CSRF_INVALID", "CsrfError"


class AuthorizationError(ApiError):
    status, code, type_name = 403, "FORBIDDEN", "AuthorizationError"


class NotFoundError(ApiError):
    status, code, type_name = 404, "NOT_FOUND", "NotFoundError"


class RequestTimeoutError(ApiError):
    status, code, type_name = 408, "REQUEST_TIMEOUT", "TimeoutError"


class ConflictError(ApiError):
    status, code, type_name = 409, "CONFLICT", "ConflictError"


class PayloadTooLargeError(ApiError):
    """413 PAYLOAD_TOO_LARGE: a body over config.max_body_bytes (a twin code; CodeSync's is Express's)."""

    status, code, type_name = 413, "PAYLOAD_TOO_LARGE", "PayloadTooLargeError"


class RateLimitError(ApiError):
    status, code, type_name = 429, "RATE_LIMIT", "RateLimitError"


class InternalError(ApiError):
    status, code, type_name = 500, "INTERNAL_ERROR", "InternalError"


def error_response(error: ApiError) -> web.Response:
    return web.json_response(error.envelope(), status=error.status)
