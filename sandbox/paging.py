"""Kinde's two paging styles: `page_size` + opaque `next_token`, and billing's `starting_after` + `has_more`."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from sandbox.problems import ApiProblem, bad_request

T = TypeVar("T")
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 10


def page_size_of(query: Mapping[str, str]) -> int:
    raw = query.get("page_size") or str(DEFAULT_PAGE_SIZE)
    if not raw.isdigit() or int(raw) < 1:
        raise bad_request("INVALID_PAGE_SIZE", "page_size must be a positive whole number")
    if int(raw) > MAX_PAGE_SIZE:
        raise bad_request("PAGE_SIZE_LIMIT_EXCEEDED", f"Page size cannot be greater than {MAX_PAGE_SIZE}")
    return int(raw)


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except ValueError:
        pass
    raise bad_request("INVALID_NEXT_TOKEN", "next_token is not valid")


def token_page(items: Sequence[T], query: Mapping[str, str]) -> tuple[list[T], str | None]:
    """One page and the `next_token` for the rest (None on the last page)."""
    size = page_size_of(query)
    start = decode_token(query["next_token"]) if query.get("next_token") else 0
    end = start + size
    return list(items[start:end]), encode_token(end) if end < len(items) else None


def cursor_page(items: Sequence[T], query: Mapping[str, str], id_of: Callable[[T], str]) -> tuple[list[T], bool]:
    """One page after the `starting_after` id (or before `ending_before`) and whether more follow."""
    after, before = query.get("starting_after"), query.get("ending_before")
    if after and before:
        raise bad_request("TOO_MANY_PARAMETERS", "Provide only one of starting_after and ending_before")
    size = page_size_of(query)
    ids = [id_of(item) for item in items]
    cursor = after or before
    if cursor and cursor not in ids:
        raise ApiProblem(400, "INVALID_CURSOR", "starting_after/ending_before names no item of this list")
    if before:
        end = ids.index(before)
        return list(items[max(0, end - size) : end]), end - size > 0
    start = ids.index(after) + 1 if after else 0
    return list(items[start : start + size]), start + size < len(items)
