"""Cursor pagination of API.md: ``{"data": [...], "next_cursor": "..." | null}``, ``?limit=`` ≤ 100."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from rest_framework import exceptions, pagination
from rest_framework.request import Request
from rest_framework.response import Response


class CursorPagination(pagination.CursorPagination):
    page_size = 25
    page_size_query_param = "limit"
    max_page_size = 100
    cursor_query_param = "cursor"
    # Creation order, newest first; the primary key breaks ties between rows of the same instant.
    ordering = ("-created_at", "-pk")

    def get_page_size(self, request: Request) -> int:
        """``?limit=`` is an integer from 1 to 100; anything else is refused (422), not silently replaced
        by the default, so a caller's mistake does not pass for an empty or short page."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"must be an integer from 1 to {self.max_page_size}"]}
            )
        return limit

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["not a cursor of this list (use next_cursor as given)"]}
            ) from exc

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                }
        return parameters

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
