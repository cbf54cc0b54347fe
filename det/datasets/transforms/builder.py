"""Builds a pipeline from config dicts with det's TRANSFORMS registry, so a dataset works with or
without mmengine's default scope being set to 'det' (mmengine's ``Compose`` builds from its root)."""
from det.registry import TRANSFORMS


def build_pipeline(pipeline) -> list:
    """``[dict(type=...) | callable, ...]`` -> list of callables taking and returning a results dict."""
    return [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])]
