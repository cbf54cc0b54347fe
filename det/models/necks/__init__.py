# Each module here registers itself; add one import line per module.
from . import cem, fpn, hybrid_encoder, sam, spp  # noqa: F401
