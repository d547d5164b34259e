"""Request-body rules of CodeSync's validators, each failure one ValidationError naming the field.

    >>> register_body({"email": "a@b.io", "password": "Passw0rd", "name": "Ada"})
    {'email': 'a@b.io', 'password': 'Passw0rd', 'name': 'Ada'}
    >>> register_body({"email": "a@b.io", "password": "short", "name": "Ada"})
    ValidationError: password must be 8-128 characters

Functions take the parsed JSON object and return the cleaned values the handler uses.
"""

from __future__ import annotations

import re
from typing import Any

from twin.api.errors import ValidationError

LANGUAGES = ("javascript", "typescript", "python", "java", "go", "rust", "cpp", "csharp", "php", "ruby")
VISIBILITIES = ("PUBLIC", "PRIVATE", "UNLISTED")
PARTICIPANT_ROLES = ("OWNER", "EDITOR", "COMMENTER", "VIEWER")
FILE_TYPES = ("file", "folder")
MESSAGE_TYPES = ("TEXT", "CODE", "SYSTEM", "FILE")
DEFAULT_LANGUAGE = "javascript"
DEFAULT_VISIBILITY = "PRIVATE"
_EMAIL_RE = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
_CUID_RE = re.compile(r"^c[^\s-]{8,}$", re.IGNORECASE)  # zod's .cuid()


def _string(body: dict[str, Any], field: str, *, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise ValidationError(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string")
    return value


def _length(field: str, value: str, low: int, high: int) -> str:
    if not low <= len(value) <= high:
        raise ValidationError(f"{field} must be {low}-{high} characters")
    return value


def _choice(field: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(f"{field} must be one of {', '.join(choices)}")
    return value


def email_field(body: dict[str, Any]) -> str:
    email = (_string(body, "email") or "").strip().lower()
    if not _EMAIL_RE.match(email) or len(email) > 254:
        raise ValidationError("email must be a valid e-mail address")
    return email


def register_body(body: dict[str, Any]) -> dict[str, str]:
    email = email_field(body)
    password = _length("password", _string(body, "password") or "", 8, 128)
    if not (re.search(r"[a-z]", password) and re.search(r"[A-Z]", password) and re.search(r"\d", password)):
        raise ValidationError("password must contain a lower-case letter, an upper-case letter and a digit")
    name = _length("name", (_string(body, "name") or "").strip(), 2, 100)
    return {"email": email, "password": password, "name": name}


def login_body(body: dict[str, Any]) -> dict[str, str]:
    email = email_field(body)
    password = _string(body, "password") or ""
    if not password:
        raise ValidationError("password is required")
    return {"email": email, "password": password}


def _description(body: dict[str, Any]) -> str | None:
    description = _string(body, "description", required=False)
    if description is not None and len(description) > 500:
        raise ValidationError("description must be at most 500 characters")
    return description


def create_session_body(body: dict[str, Any]) -> dict[str, Any]:
    """name 3-100; language and visibility from the enums (default javascript, PRIVATE)."""
    return {
        "name": _length("name", (_string(body, "name") or "").strip(), 3, 100),
        "description": _description(body),
        "language": _choice("language", _string(body, "language", required=False) or DEFAULT_LANGUAGE, LANGUAGES),
        "visibility": _choice(
            "visibility", _string(body, "visibility", required=False) or DEFAULT_VISIBILITY, VISIBILITIES
        ),
    }


def update_session_body(body: dict[str, Any]) -> dict[str, Any]:
    """Any subset of name, description, language, visibility; other keys are ignored."""
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _length("name", (_string(body, "name") or "").strip(), 3, 100)
    if "description" in body:
        changes["description"] = _description(body)
    if "language" in body:
        changes["language"] = _choice("language", _string(body, "language") or "", LANGUAGES)
    if "visibility" in body:
        changes["visibility"] = _choice("visibility", _string(body, "visibility") or "", VISIBILITIES)
    return changes


def participant_body(body: dict[str, Any]) -> dict[str, str]:
    user_id = (_string(body, "userId") or "").strip()
    if not user_id:
        raise ValidationError("userId is required")
    role = _choice("role", _string(body, "role", required=False) or "EDITOR", PARTICIPANT_ROLES)
    return {"userId": user_id, "role": role}


def invitation_body(body: dict[str, Any]) -> dict[str, str]:
    """sessionId (cuid-shaped), email, role (default VIEWER), as CodeSync's invitation validator."""
    session_id = _string(body, "sessionId") or ""
    if not _CUID_RE.match(session_id):
        raise ValidationError("sessionId must be a cuid")
    role = _choice("role", _string(body, "role", required=False) or "VIEWER", PARTICIPANT_ROLES)
    return {"sessionId": session_id, "email": email_field(body), "role": role}


def accept_body(body: dict[str, Any]) -> str | None:
    """The optional `email` of an accept; a logged-in caller usually sends `{}`."""
    return email_field(body) if body.get("email") is not None else None


def file_path(value: str, field: str = "name") -> str:
    """A session-relative path: 1-500 characters, no empty or '..' segment, no leading '/'."""
    _length(field, value, 1, 500)
    if value.startswith("/") or any(part in ("", "..") for part in value.split("/")):
        raise ValidationError(f"{field} must be a relative path without empty or '..' segments")
    return value


def create_file_body(body: dict[str, Any]) -> dict[str, str]:
    name = file_path((_string(body, "name") or "").strip())
    file_type = _choice("type", _string(body, "type", required=False) or "file", FILE_TYPES)
    return {"name": name, "type": file_type}


def content_body(body: dict[str, Any]) -> str:
    content = _string(body, "content")
    assert content is not None
    return content


def search_body(body: dict[str, Any]) -> dict[str, Any]:
    query = _length("query", _string(body, "query") or "", 1, 500)
    flags = {}
    for flag in ("regex", "caseSensitive", "wholeWord"):
        value = body.get(flag, False)
        if not isinstance(value, bool):
            raise ValidationError(f"{flag} must be a boolean")
        flags[flag] = value
    return {"query": query, **flags}
