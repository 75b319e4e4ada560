"""Builds the OpenAPI 3.1 document of the HTTP API from the route table and the pydantic body models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.gateway.api_models import ErrorBody
from services.gateway.routes import Param, Route

REF = "#/components/schemas/{model}"


def param_schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.kind}
    if param.kind == "string":
        schema["minLength"] = 1
    for key, value in (
        ("minimum", param.minimum),
        ("maximum", param.maximum),
        ("maxLength", param.max_length),
        ("default", param.default),
    ):
        if value is not None:
            schema[key] = value
    if param.enum:
        schema["enum"] = list(param.enum)
    return schema


def openapi_document(routes: tuple[Route, ...], title: str, version: str) -> dict[str, Any]:
    """Every route as an operation: parameters with their limits, the request body, the 200 body and every error
    status the route may answer with its body schema."""
    models: set[type[BaseModel]] = {ErrorBody}
    for route in routes:
        models.update(m for m in (route.response, *route.error_bodies.values()) if m is not None)
    refs, top = models_json_schema(
        [(model, "serialization") for model in sorted(models, key=lambda m: m.__name__)]
        + [(route.body, "validation") for route in routes if route.body is not None],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": 'Errors answer {"error": {"code", "message"}} with the gRPC status name as '
            "code; an unknown path answers 404, a method a path does not serve 405.",
        },
        "paths": paths,
        "components": {"schemas": top.get("$defs", {})},
    }


def _operation(route: Route, refs: dict) -> dict[str, Any]:
    def content(model: type[BaseModel] | None, mode: str = "serialization") -> dict[str, Any]:
        schema = (
            refs[(model, mode)]
            if model is not None
            else {"type": "string" if route.content_type.startswith("text/") else "object"}
        )
        return {route.content_type if model is None else "application/json": {"schema": schema}}

    responses: dict[str, Any] = {"200": {"description": "OK", "content": content(route.response)}}
    for status, meaning in sorted(route.errors.items()):
        model = route.error_bodies.get(status, ErrorBody)
        responses[str(status)] = {
            "description": meaning,
            "content": {"application/json": {"schema": refs[(model, "serialization")]}},
        }
    operation: dict[str, Any] = {
        "operationId": route.handler,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required or p.location == "path",
                "description": p.description,
                "schema": param_schema(p),
            }
            for p in route.params
        ],
        "responses": responses,
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    return operation
