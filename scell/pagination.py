"""Cursor pagination of API.md: ``{"data": [...], "next_cursor": "..." | null}``, ``?limit=`` ≤ 100."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from rest_framework import pagination
from rest_framework.response import Response


class CursorPagination(pagination.CursorPagination):
    page_size = 25
    page_size_query_param = "limit"
    max_page_size = 100
    cursor_query_param = "cursor"
    # Creation order, newest first; the primary key breaks ties between rows of the same instant.
    ordering = ("-created_at", "-pk")

    def get_next_cursor(self) -> str | None:
        link = self.get_next_link()
        if not link:
            return None
        return parse_qs(urlparse(link).query).get(self.cursor_query_param, [None])[0]

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"data": data, "next_cursor": self.get_next_cursor()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["data", "next_cursor"],
            "properties": {
                "data": schema,
                "next_cursor": {
                    "type": "string",
                    "nullable": True,
                    "description": "Pass as ?cursor= for the next page.",
                },
            },
        }
