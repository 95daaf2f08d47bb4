"""The REST API (SPEC 4): one router module per resource, mounted under /api/v1."""

from fastapi import APIRouter

api_router = APIRouter(prefix="/api/v1")
