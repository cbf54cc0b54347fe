"""What the analysis tools share: a config's dataset for one split, a detections file, figures as PNGs.
(Configs are read by ``det.engine.config.load_config``, as in every tool.)

Figures are ``matplotlib.figure.Figure`` objects drawn with the Agg canvas directly, without pyplot, so
the tools need no display, keep no global figure state and can be called in-process by tests.
"""
import json
import os
import os.path as osp

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mmengine.config import Config

from det.registry import DATASETS


def build_split_dataset(cfg: Config, split: str):
    """The dataset of ``cfg.<split>_dataloader`` with that split's own pipeline (the training one,
    augmentations included, for 'train'). Unknown or empty splits raise ``ValueError``."""
    splits = sorted(k[:-len('_dataloader')] for k in cfg.keys() if k.endswith('_dataloader') and cfg[k])
    loader = cfg.get(f'{split}_dataloader')
    if not loader or 'dataset' not in loader:
        raise ValueError(f'the config has no {split}_dataloader.dataset; splits it has: {splits}')
    dataset = DATASETS.build(loader['dataset'])
    if len(dataset) == 0:
        raise ValueError(f'the {split} dataset ({type(dataset).__name__}) holds no images')
    return dataset


def load_detections(path: str, ann_json: str = None) -> list:
    """The detections list of a COCO results json; a missing file, another type or an empty list is an
    error naming the file, as is a missing ``ann_json`` (the annotations they are scored against)."""
    for needed in (ann_json, path):
        if needed is not None and not osp.isfile(needed):
            raise FileNotFoundError(f'no such file: {needed}')
    with open(path) as f:
        dets = json.load(f)
    if not isinstance(dets, list):
        raise ValueError(f'{path} must hold a list of detections (COCO results format), '
                         f'got {type(dets).__name__}')
    if not dets:
        raise ValueError(f'{path} holds no detections: there is no curve to draw')
    return dets


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> Figure:
    """A figure of ``width_in`` x ``height_in`` inches on an Agg canvas."""
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, out: str) -> str:
    """Write ``fig`` as a PNG at its own size and dpi (no tight cropping, so the pixel size is
    ``figsize * dpi``); creates the folder. Returns ``out``."""
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(out, format='png', dpi=fig.dpi)
    return out
