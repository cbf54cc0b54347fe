"""Detection from Python without a Runner: build a detector from a config and checkpoint, then run it
on image files or arrays through the config's own test pipeline.

    model = init_detector('configs/yolo_v1.py', 'work_dirs/yolo_v1/epoch_5.pth')
    sample = inference_detector(model, 'img.jpg')        # or a BGR uint8 array, or a list of either
    sample.pred_instances.bboxes                          # [N, 4] xyxy original pixels
    cv2.imwrite('drawn.jpg', draw_detections('img.jpg', sample))   # det.visualization; small images
                                                                    # scaled up to 640 px to read labels
"""
import os.path as osp
from pathlib import Path

import numpy as np
from mmengine.config import Config
from mmengine.logging import print_log

from det.datasets.transforms import LoadImageFromFile, build_pipeline
from det.engine import check_checkpoint_matches
from det.engine.checkpoints import load_checkpoint_safely
from det.engine.config import fill_num_classes, load_config, set_num_classes
from det.inference.views import image_results, run_packed, split_test_pipeline
from det.models.utils import fuse_conv_bn
from det.registry import DATASETS, MODELS


def init_detector(config, checkpoint: str = None, device: str = 'cpu', cfg_options: dict = None,
                  fuse: bool = True):
    """A detector in eval mode on ``device``, with ``model.cfg`` (the config, whose test pipeline
    :func:`inference_detector` runs) and ``model.dataset_meta`` (``classes``, ...).

    Args:
        config: a config path or ``mmengine.Config`` (not modified).
        checkpoint: an mmengine checkpoint (weights under ``state_dict``), read with
            ``torch.load(weights_only=True)``; one saved from another model is refused with the differing
            parameter names, unless it fits once the heads' ``num_classes`` is the count of the classes
            stored with it (``meta.dataset_meta``): weights trained with ``--data-root`` on other data
            load with the config of the shipped model. None keeps the random initialisation (a
            ``num_classes`` the config leaves out then comes from its test dataset).
        cfg_options: overrides merged into the config, as ``--cfg-options`` does.
        fuse: fold each BatchNorm into the convolution before it (:func:`det.models.utils.fuse_conv_bn`):
            same outputs within float rounding, one op per Conv-BN pair at inference. The returned model
            can then no longer be trained; pass False to keep the BatchNorms.
    """
    config = load_config(config, cfg_options)
    dataset_meta = None
    if checkpoint is not None:
        dataset_meta = load_checkpoint_safely(checkpoint).get('meta', {}).get('dataset_meta')
    classes = (dataset_meta or {}).get('classes')
    if classes:  # a num_classes the config leaves out is the weights' class count
        set_num_classes(config, len(classes))
    else:
        fill_num_classes(config, 'test')
    model = MODELS.build(config.model)
    if checkpoint is not None:
        try:
            saved = check_checkpoint_matches(model, checkpoint)
        except ValueError:
            # Weights trained on other classes than the config names (e.g. with --data-root): the
            # class names stored with them size the heads.
            changes = set_num_classes(config, len(classes), overwrite=True) if classes else []
            if not changes:
                raise
            print_log(f'{checkpoint} was trained on {len(classes)} classes: ' + ', '.join(changes),
                      logger='current')
            model = MODELS.build(config.model)
            saved = check_checkpoint_matches(model, checkpoint)
        model.load_state_dict(saved.get('state_dict', saved))
    model.cfg = config
    model.dataset_meta = dict(dataset_meta or _config_dataset_meta(config))
    model.eval()
    if fuse:
        fuse_conv_bn(model)
    return model.to(device)


def _config_dataset_meta(cfg: Config) -> dict:
    """The test dataset's ``metainfo`` from the config, else its class's ``METAINFO`` (class names
    without reading the data)."""
    dataset = cfg.test_dataloader.dataset
    return dataset.get('metainfo') or getattr(DATASETS.get(dataset.type), 'METAINFO', {})


def load_image(image, name: str) -> dict:
    """A path (str / Path) or ``[H, W, 3]`` uint8 BGR array -> the pipeline's results dict after
    loading. Errors name ``name`` and say what is wrong."""
    if isinstance(image, (str, Path)):
        if not osp.isfile(image):
            raise FileNotFoundError(f'{name}: image not found: {image}')
        try:
            return LoadImageFromFile(on_error='raise')(dict(img_path=str(image)))
        except OSError as error:
            raise OSError(f'{name}: {error}') from error
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f'{name}: expected a uint8 BGR image, got a {image.dtype} array')
        if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise ValueError(f'{name}: expected a non-empty [H, W, 3] BGR image, got an array of shape '
                             f'{image.shape}')
        return image_results(image)
    raise TypeError(f'{name}: expected an image path or a numpy array, got {type(image).__name__}')


def inference_detector(model, images, batch_size: int = 8):
    """Detections of one image or a list of images (paths or ``[H, W, 3]`` uint8 BGR arrays).

    Each image goes through the config's test pipeline without its annotation loading (arrays also
    skip file loading), then ``model.test_step`` in batches of ``batch_size``.

    Returns:
        A ``DetDataSample`` (a list of them for a list input) whose ``pred_instances`` hold ``bboxes``
        float32 [N, 4] xyxy original pixels, ``scores`` [N], ``labels`` int64 [N], and the model's
        class names as ``classes`` metainfo: ``det.visualization.draw_detections(image, sample)`` draws
        them.
    """
    single = not isinstance(images, (list, tuple))
    items = [images] if single else list(images)
    _, view_pipeline = split_test_pipeline(model.cfg)
    pipeline = build_pipeline(view_pipeline)
    packed = []
    for i, image in enumerate(items):
        results = load_image(image, 'image' if single else f'images[{i}]')
        for transform in pipeline:
            results = transform(results)
        packed.append(results)
    samples = run_packed(model, packed, batch_size)
    classes = tuple((getattr(model, 'dataset_meta', None) or {}).get('classes', ()))
    for sample in samples:  # so that det.visualization.draw_detections names the classes
        sample.set_metainfo(dict(classes=classes))
    return samples[0] if single else samples
