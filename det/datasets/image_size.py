"""Image size from the file header, as det's image loader will see the picture."""
import numpy as np

from .transforms.image_decoding import decode, header_size


def upright_size(path: str) -> tuple:
    """``(width, height)`` of the image at ``path`` in its upright orientation (width and height swap for
    an EXIF orientation that turns it by 90 degrees, because the loader applies that orientation), read
    from the header, or by decoding the file when the header does not parse. Raises ``OSError`` naming
    the reason when the file is missing or cannot be read."""
    data = np.fromfile(path, dtype=np.uint8)
    size = header_size(data)
    if size is None:
        decoded = decode(data)
        if decoded.img is None:
            raise OSError(f'{path} cannot be read ({decoded.reason})')
        size = decoded.img.shape[:2]
    height, width = size
    return width, height
