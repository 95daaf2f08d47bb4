"""Figures for the API: the metric rules of `server.metrics`, run over the state kept in the database."""

from .service import FigureService

__all__ = ["FigureService"]
