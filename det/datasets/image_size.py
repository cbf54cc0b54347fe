"""Image size from the file header, as det's image loader will see the picture."""
from PIL import Image

_EXIF_ORIENTATION = 0x0112  # the EXIF tag; values 5-8 store the picture turned by 90 degrees


def upright_size(path: str) -> tuple:
    """``(width, height)`` of the image at ``path`` in its upright orientation, read from the header only:
    width and height swap for a JPEG whose EXIF orientation turns it by 90 degrees, because the loader
    (``LoadImageFromFile``) applies that orientation. Raises ``OSError`` when PIL cannot identify it."""
    with Image.open(path) as img:
        width, height = img.size
        if img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
            width, height = height, width
    return width, height
