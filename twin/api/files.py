"""Session files and search, the four rate-limited routes plus file creation.

    >>> GET  /api/sessions/:id/files                    -> {files}          (limited: files)
    >>> POST /api/sessions/:id/files {name, type}       -> 201 {file}
    >>> GET  /api/sessions/:id/files/:path/content      -> {content}        (limited: files)
    >>> PUT  /api/sessions/:id/files/:path/content {content} -> upsert     (limited: files)
    >>> POST /api/sessions/:id/search {query, regex?, caseSensitive?, wholeWord?} -> {results} (limited: search)

`:path` is URL-encoded by clients (`src%2Fmain.py`) but may also arrive with raw slashes;
both reach the same file. Readers need access to the session (PUBLIC, owner or active
participant); writers must own the session or hold an ACTIVE OWNER/EDITOR participant row,
whatever the visibility (twin.api.access: a Socket.IO join alone gives no right to write).
The `slow-route` fault delays every content PUT inside the handler, so the request
duration histogram sees the delay.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote

from aiohttp import web

from twin.api import validation
from twin.api.access import require_writer
from twin.api.common import (
    FILES_LIMIT,
    SEARCH_LIMIT,
    context,
    ok,
    rate_limit,
    read_json,
    require_csrf,
    require_user,
    session_for,
)
from twin.api.errors import ConflictError, NotFoundError, ValidationError
from twin.storage import StoreConflict

MAX_SEARCH_MATCHES = 1000


def _path(request: web.Request) -> str:
    """The file path from the URL: aiohttp decodes it once, and CodeSync's route runs
    decodeURIComponent on the already-decoded parameter, so a second decoding is applied too."""
    raw = request.match_info["path"]
    return validation.file_path(unquote(raw) if "%" in raw else raw, field="path")


async def list_files(request: web.Request) -> web.Response:
    user = await require_user(request)
    await rate_limit(request, user, FILES_LIMIT)
    session = await session_for(request, user["userId"])
    return ok({"files": await context(request).store.list_files(session["id"])})


async def create_file(request: web.Request) -> web.Response:
    user = await require_user(request)
    require_csrf(request)
    body = validation.create_file_body(await read_json(request))
    session = await session_for(request, user["userId"])
    await require_writer(request, session, user["userId"])
    try:
        file = await context(request).store.create_file(session["id"], body["name"], body["type"])
    except StoreConflict:
        raise ConflictError("A file with this path already exists") from None
    return ok({"file": file}, status=201)


async def get_content(request: web.Request) -> web.Response:
    user = await require_user(request)
    await rate_limit(request, user, FILES_LIMIT)
    session = await session_for(request, user["userId"])
    file = await context(request).store.get_file(session["id"], _path(request))
    if file is None:
        raise NotFoundError("File not found")
    return ok({"content": file["content"]})


async def put_content(request: web.Request) -> web.Response:
    ctx = context(request)
    if ctx.config.faults.active("slow-route"):
        await asyncio.sleep(ctx.config.faults.param("slow-route") / 1000.0)
    user = await require_user(request)
    await rate_limit(request, user, FILES_LIMIT)
    require_csrf(request)
    content = validation.content_body(await read_json(request))
    session = await session_for(request, user["userId"])
    await require_writer(request, session, user["userId"])
    await ctx.store.save_file_content(session["id"], _path(request), content)
    return ok({}, message="File content saved successfully")


def _matcher(query: str, regex: bool, case_sensitive: bool, whole_word: bool) -> re.Pattern[str]:
    pattern = query if regex else re.escape(query)
    if whole_word:
        pattern = rf"\b(?:{pattern})\b"
    try:
        return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
    except re.error as err:
        raise ValidationError(f"query is not a valid regular expression ({err})") from None


async def search(request: web.Request) -> web.Response:
    user = await require_user(request)
    await rate_limit(request, user, SEARCH_LIMIT)
    require_csrf(request)
    body = validation.search_body(await read_json(request))
    session = await session_for(request, user["userId"])
    matcher = _matcher(body["query"], body["regex"], body["caseSensitive"], body["wholeWord"])
    results = []
    found = 0
    for file in await context(request).store.files_with_content(session["id"]):
        matches = []
        for number, line in enumerate(file["content"].splitlines(), start=1):
            for match in matcher.finditer(line):
                if match.end() == match.start():
                    continue
                matches.append(
                    {"line": number, "column": match.start() + 1, "length": match.end() - match.start(), "text": line}
                )
                found += 1
                if found >= MAX_SEARCH_MATCHES:
                    break
            if found >= MAX_SEARCH_MATCHES:
                break
        if matches:
            results.append({"fileId": file["id"], "path": file["path"], "name": file["name"], "matches": matches})
        if found >= MAX_SEARCH_MATCHES:
            break
    return ok({"results": results})
