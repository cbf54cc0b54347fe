# Each module here registers itself; add one import line per module.
from . import cem, fpn, sam, spp  # noqa: F401
