"""A static leaderboard site (plain HTML, CSS and JS; no server, no network) built from board folders."""

from bench.site.build import build_site

__all__ = ["build_site"]
