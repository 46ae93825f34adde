"""The bottom layer: the error hierarchy, settings, domain types, the catalog, the clock port,
rate limiting and image checks. Pure Python plus pydantic (and Pillow for images).

May import: nothing of ours outside shared.core.
"""
