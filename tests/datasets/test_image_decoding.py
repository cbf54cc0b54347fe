"""Every kind of image file common viewers open decodes to the pixels OpenCV's ``cv2.imread`` (or, where
it refuses the file, Pillow) gives on it: JPEGs cut short (baseline and progressive), CMYK JPEG, a
phone photo with an EXIF rotation, grayscale / 16-bit / palette PNG, WebP, BMP, TIFF, upper-case
extensions, spaces and non-ASCII file names. What cannot be decoded is named with the reason. Each file
is generated here; the header-only size agrees with the decoded one for each kind."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from det.datasets.transforms import LoadImageFromFile
from det.datasets.transforms.image_decoding import decode, header_size, looks_cut_short
from det.datasets.transforms.loading import decode_image, read_file, read_image


def photo(height=48, width=64, seed=0) -> np.ndarray:
    """A smooth BGR picture with some texture (JPEG-like content), ``[H, W, 3]`` uint8."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 / width, ys * 255 / height, (xs + ys) * 127 / (width + height)], axis=2)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def write_jpeg_cut_short(path, progressive: bool, cut: int):
    """A JPEG with its last ``cut`` bytes (the end-of-image marker and some scan data) missing."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] + ([cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else [])
    ok, encoded = cv2.imencode('.jpg', photo(96, 128), params)
    assert ok
    path.write_bytes(encoded.tobytes()[:-cut])


def pil_rgb_to_bgr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert('RGB'))[:, :, ::-1]


@pytest.mark.parametrize('progressive', [False, True], ids=['baseline', 'progressive'])
@pytest.mark.parametrize('cut', [20, 1500])
def test_jpeg_cut_short_gives_the_pixels_imread_gives(tmp_path, progressive, cut):
    path = tmp_path / 'cut.jpg'
    write_jpeg_cut_short(path, progressive, cut)
    data = np.fromfile(path, np.uint8)
    assert cv2.imdecode(data, cv2.IMREAD_COLOR) is None  # what det used to call unreadable
    reference = cv2.imread(str(path))  # decodes it, with a "premature end" warning
    assert reference is not None
    decoded = decode(data)
    assert decoded.truncated and decoded.reason == ''
    np.testing.assert_array_equal(decoded.img, reference)
    np.testing.assert_array_equal(decode_image(data), reference)
    loaded = LoadImageFromFile()({'img_path': str(path)})
    np.testing.assert_array_equal(loaded['img'], reference)
    assert looks_cut_short(data) and header_size(data) == reference.shape[:2]
    assert path.read_bytes() == data.tobytes()  # the user's file is left as it is


def test_png_cut_short_gives_the_pixels_pillow_gives_and_leaves_pillow_strict(tmp_path):
    path = tmp_path / 'cut.png'
    cv2.imwrite(str(path), photo())
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 2 // 3])
    assert cv2.imread(str(path)) is None  # OpenCV refuses it; viewers show the rows that are there
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        reference = pil_rgb_to_bgr(Image.open(path))
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    decoded = decode(np.fromfile(path, np.uint8))
    assert decoded.truncated
    np.testing.assert_array_equal(decoded.img, reference)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is previous  # set for that one call only
    with pytest.raises(OSError, match='truncated'):  # Pillow itself stays strict for everyone else
        Image.open(path).load()


def _cmyk_jpeg(path):
    Image.fromarray(photo()[:, :, ::-1]).convert('CMYK').save(path, quality=95)


def _exif_rotated_jpeg(path):
    """A phone photo: stored 64 wide x 48 high, tagged to be shown turned 90 degrees clockwise."""
    img = Image.fromarray(photo()[:, :, ::-1])
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, exif=exif, quality=95)


def _exif_rotated_tiff(path):
    img = Image.fromarray(photo()[:, :, ::-1])
    exif = img.getexif()
    exif[0x0112] = 8
    img.save(path, exif=exif, compression='tiff_lzw')


def _grayscale_png(path):
    cv2.imwrite(str(path), photo()[:, :, 1])


def _palette_png_with_transparency(path):
    img = Image.fromarray(photo()[:, :, ::-1]).convert('P', palette=Image.Palette.ADAPTIVE, colors=16)
    img.save(path, transparency=0)


def _webp(path):
    Image.fromarray(photo()[:, :, ::-1]).save(path, quality=80)


def _webp_with_alpha(path):
    rgba = np.dstack([photo()[:, :, ::-1], photo(seed=1)[:, :, 0]])
    Image.fromarray(rgba).save(path, lossless=True)


def _opencv_writes(path):
    cv2.imwrite(str(path), photo())


KINDS = {  # name -> (file name, writer)
    'cmyk_jpeg': ('cmyk.jpg', _cmyk_jpeg),
    'exif_rotated_jpeg': ('phone.jpg', _exif_rotated_jpeg),
    'grayscale_png': ('gray.png', _grayscale_png),
    'palette_png_with_transparency': ('palette.png', _palette_png_with_transparency),
    'webp': ('photo.webp', _webp),
    'webp_with_alpha': ('alpha.webp', _webp_with_alpha),
    'bmp': ('photo.bmp', _opencv_writes),
    'tiff': ('photo.tiff', _opencv_writes),
    'upper_case_extension': ('PHOTO.JPG', _opencv_writes),
    'spaces_in_name': ('my holiday photo 1.jpg', _opencv_writes),
    'non_ascii_name': ('фото_café_写真.png', _opencv_writes),
}


@pytest.mark.parametrize('kind', list(KINDS))
def test_each_kind_decodes_as_imread_does_and_its_header_gives_the_same_size(tmp_path, kind):
    name, write = KINDS[kind]
    path = tmp_path / name
    write(path)
    reference = cv2.imread(str(path))
    assert reference is not None
    decoded, full = read_file(str(path))
    assert decoded.reason == '' and not decoded.truncated and full == reference.shape[:2]
    np.testing.assert_array_equal(decoded.img, reference)
    np.testing.assert_array_equal(read_image(str(path)), reference)
    data = np.fromfile(path, np.uint8)
    assert not looks_cut_short(data)
    assert header_size(data) == reference.shape[:2]


def test_exif_rotated_jpeg_is_upright_as_pillow_shows_it(tmp_path):
    path = tmp_path / 'phone.jpg'
    _exif_rotated_jpeg(path)
    upright = ImageOps.exif_transpose(Image.open(path))
    img = read_image(str(path))
    assert img.shape[:2] == (upright.height, upright.width) == (64, 48)  # stored 48 high, shown 64 high
    # Same picture up to JPEG's decoder rounding (OpenCV and Pillow use different IDCT settings).
    assert np.abs(img.astype(int) - pil_rgb_to_bgr(upright)).mean() < 2


def test_exif_rotated_tiff_is_upright_as_pillow_shows_it(tmp_path):
    path = tmp_path / 'turned.tif'
    _exif_rotated_tiff(path)
    # cv2.imread fails on this file in OpenCV 5.1 ("Internal imread issue"); Pillow is the reference.
    upright = ImageOps.exif_transpose(Image.open(path))
    img = read_image(str(path))
    assert img.shape[:2] == (64, 48)
    np.testing.assert_array_equal(img, pil_rgb_to_bgr(upright))  # lossless: exactly the same pixels
    assert header_size(np.fromfile(path, np.uint8)) == (64, 48)


@pytest.mark.parametrize('channels', [1, 3])
def test_16_bit_png_maps_to_8_bits_as_imread_does(tmp_path, channels):
    rng = np.random.default_rng(channels)
    deep = rng.integers(0, 65536, (24, 32) if channels == 1 else (24, 32, 3)).astype(np.uint16)
    path = tmp_path / 'deep.png'
    cv2.imwrite(str(path), deep)
    reference = cv2.imread(str(path))  # 8-bit BGR: the high byte of each value
    img = read_image(str(path))  # value / 257, rounded: within one of the high byte
    assert img.shape == reference.shape == (24, 32, 3)
    assert np.abs(img.astype(int) - reference).max() <= 1
    assert header_size(np.fromfile(path, np.uint8)) == (24, 32)


def test_palette_png_colours_match_pillow(tmp_path):
    path = tmp_path / 'palette.png'
    _palette_png_with_transparency(path)
    assert Image.open(path).mode == 'P' and 'transparency' in Image.open(path).info
    np.testing.assert_array_equal(read_image(str(path)), pil_rgb_to_bgr(Image.open(path)))


RANDOM = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()


@pytest.mark.parametrize('content, reason', [
    (b'', 'empty file'),
    (RANDOM, 'not an image format OpenCV or Pillow knows; first bytes ' + RANDOM[:8].hex(' ')),
    (b'\xff\xd8\xff\xe0\x00\x10JFIF', 'JPEG file cut short after 10 bytes; no pixels could be read'),
], ids=['empty', 'random_bytes', 'jpeg_header_only'])
def test_what_cannot_be_decoded_is_named_with_the_reason(tmp_path, content, reason):
    path = tmp_path / 'bad.jpg'
    path.write_bytes(content)
    assert cv2.imread(str(path)) is None
    decoded, _ = read_file(str(path))
    assert decoded.img is None and decoded.reason == reason
    with pytest.raises(OSError, match=f'cannot read image {path} \\({reason}\\)'):
        LoadImageFromFile()({'img_path': str(path)})


def test_broken_pixel_data_behind_a_sound_header_is_named():
    """A PNG whose compressed pixel data is garbage but whose header and end chunk are intact: neither
    decoder reads it, Pillow says why, and the header alone still gives its size."""
    data = broken_png_bytes()
    decoded = decode(np.frombuffer(data, np.uint8))
    assert decoded.img is None and decoded.reason.startswith('broken PNG data (')
    assert header_size(np.frombuffer(data, np.uint8)) == (48, 64)
    assert not looks_cut_short(np.frombuffer(data, np.uint8))
    with pytest.raises(OSError):  # Pillow's own verdict on it
        Image.open(io.BytesIO(data)).load()


def broken_png_bytes() -> bytes:
    """A 64x48 PNG with its IDAT payload overwritten by noise (CRCs and IEND intact)."""
    ok, encoded = cv2.imencode('.png', photo())
    data = bytearray(encoded.tobytes())
    start = data.index(b'IDAT') + 4
    length = int.from_bytes(data[start - 8:start - 4], 'big')
    data[start + 2:start + length] = np.random.default_rng(1).integers(0, 256, length - 2, np.uint8).tobytes()
    return bytes(data)


@pytest.mark.parametrize('rotated', [False, True], ids=['upright', 'exif_rotated'])
def test_decode_size_reads_a_large_jpeg_reduced_with_boxes_and_scale_kept_in_file_pixels(tmp_path, rotated):
    """``LoadImageFromFile(decode_size=(w, h))`` on a 1600x1200 photo letterboxed to 416: decoded at 1/2
    (1/4 would no longer cover the 416x312 fit), the pixels ``cv2.imread(IMREAD_REDUCED_COLOR_2)`` gives,
    ``ori_shape`` the file's upright size; after LoadAnnotations and the letterbox the boxes and the
    ``scale_factor`` that maps predictions back equal the full-size path's, the pictures nearly so."""
    from det.datasets.transforms import LoadAnnotations, Pad, Resize
    path = tmp_path / 'photo.jpg'
    img = photo(1200, 1600)
    if rotated:  # stored sideways with an EXIF turn, as phones do
        pil = Image.fromarray(np.ascontiguousarray(np.rot90(img, 1)[:, :, ::-1]))
        exif = pil.getexif()
        exif[0x0112] = 6
        pil.save(path, exif=exif, quality=95)
    else:
        cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    full_size = cv2.imread(str(path)).shape[:2]
    assert full_size == (1200, 1600)
    instances = [dict(bbox=[100.0, 200.0, 700.0, 900.0], bbox_label=0, ignore_flag=False)]

    def letterbox(decode_size):
        results = LoadImageFromFile(decode_size=decode_size)(dict(img_path=str(path), instances=instances))
        loaded = dict(results, img=results['img'].copy())
        for transform in (LoadAnnotations(), Resize((416, 416)), Pad((416, 416))):
            results = transform(results)
        return loaded, results

    loaded, reduced = letterbox((416, 416))
    np.testing.assert_array_equal(loaded['img'], cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2))
    assert loaded['ori_shape'] == (1200, 1600) and loaded['img_shape'] == (600, 800)
    assert loaded['scale_factor'] == (0.5, 0.5)
    _, full = letterbox(None)
    assert reduced['img_shape'] == full['img_shape'] == (312, 416)
    np.testing.assert_allclose(reduced['scale_factor'], full['scale_factor'], rtol=1e-6)
    np.testing.assert_allclose(reduced['gt_bboxes'], full['gt_bboxes'], rtol=1e-5)
    assert np.abs(reduced['img'].astype(int) - full['img'].astype(int)).mean() < 3

    small = LoadImageFromFile(decode_size=(2000, 2000))(dict(img_path=str(path)))
    assert small['img'].shape[:2] == (1200, 1600) and 'scale_factor' not in small  # no reduction to make
