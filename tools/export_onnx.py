"""Export a detector to ONNX (opset 18, torch's dynamo exporter; needs ``onnx`` and ``onnxscript``).

    python tools/export_onnx.py CONFIG CKPT [--out model.onnx] [--shape H W] [--with-postprocess]

The graph's input ``inputs`` is what the data preprocessor gives the model: float32 ``[1, 3, H, W]``,
channels converted BGR->RGB when ``bgr_to_rgb``, normalised by ``mean`` / ``std``, the image at the
top-left and zero padding (after normalisation) at the bottom-right; H and W are multiples of
``pad_size_divisor`` (default: the test pipeline's Pad size). Outputs ``raw_0``, ``raw_1``, ...: the
head's raw tensors (``mode='tensor'``). With ``--with-postprocess`` also ``boxes`` ``[1, P, 4]`` xyxy
network-input pixels and ``scores`` ``[1, P, C]``: the head's own decoding of every position, before
selection; ``test_cfg`` (top-k, score threshold, class-wise NMS, max detections) is left to the runtime.
Preprocessing, class names and ``test_cfg`` are stored as json in the model's ``metadata_props``.
Single-stage detectors and DETR export (DETR without ``--with-postprocess``); two-stage detectors do
not: their per-image proposal counts are data-dependent.
"""
import argparse
import json
import math
import sys
import warnings

import onnx
import torch
from mmengine.config import DictAction
from torch import nn

from det.apis import init_detector
from det.inference import split_test_pipeline
from det.models.heads import BaseDenseHead

OPSET = 18


class ExportModel(nn.Module):
    """The detector from preprocessed input ``[B, 3, H, W]`` to its raw head outputs, and with
    ``with_postprocess`` the head's decoded candidates: boxes ``[B, P, 4]`` xyxy input pixels and
    scores ``[B, P, C]``, which ``head.select_detections`` turns into detections.

    The candidates are what the head's ``predict_by_feat`` hands to ``select_detections`` (the
    post-processing contract of ``BaseDenseHead``), captured here instead of selected, so the decoding
    is the head's own."""

    def __init__(self, detector: nn.Module, with_postprocess: bool = False):
        super().__init__()
        self.detector = detector
        self.with_postprocess = with_postprocess

    def forward(self, inputs: torch.Tensor) -> tuple:
        raw = tuple(self.detector(inputs, mode='tensor'))
        if not self.with_postprocess:
            return raw
        shape = tuple(inputs.shape[-2:])
        metas = [dict(img_shape=shape, ori_shape=shape, batch_input_shape=shape, pad_shape=shape,
                      scale_factor=(1.0, 1.0))] * inputs.shape[0]
        head, candidates = self.detector.head, []
        head.select_detections = lambda bboxes, scores: candidates.append((bboxes, scores))
        try:
            head.predict_by_feat(*raw, batch_img_metas=metas)
        finally:
            del head.select_detections
        if len(candidates) != len(metas):
            raise TypeError(f'{type(head).__name__}.predict_by_feat does not hand its candidates to '
                            'select_detections, so --with-postprocess cannot export its decoding')
        return raw + (torch.stack([b for b, _ in candidates]), torch.stack([s for _, s in candidates]))


def default_shape(cfg) -> tuple:
    """(H, W) of the test pipeline's Pad (else Resize) size, rounded up to the pad divisor."""
    sizes = {t['type']: t.get('size', t.get('scale')) for t in split_test_pipeline(cfg)[1]}
    size = sizes.get('Pad') or sizes.get('Resize')
    if size is None:
        raise ValueError('the test pipeline has no Pad or Resize size; give --shape H W')
    divisor = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1)
    return tuple(math.ceil(v / divisor) * divisor for v in (size[1], size[0]))


def check_exportable(model, with_postprocess: bool) -> None:
    """TypeError when ``model`` cannot be exported as asked: a two-stage detector's proposals (top-k and
    NMS per image) have data-dependent sizes that torch.export cannot trace, and the decoded candidates
    of ``--with-postprocess`` exist only for dense heads (``BaseDenseHead.select_detections``)."""
    if hasattr(model, 'rpn_head'):
        raise TypeError(f'{type(model).__name__} cannot be exported: its proposals (top-k and NMS per '
                        'image) have data-dependent sizes that torch.export does not trace')
    if with_postprocess and not isinstance(getattr(model, 'head', None), BaseDenseHead):
        raise TypeError(f'--with-postprocess needs a dense head (YOLO v1, CenterNet); '
                        f'{type(model).__name__} exports its raw outputs only')


def export(model, out: str, shape: tuple, with_postprocess: bool = False) -> list:
    """Write ``model`` (a detector from ``init_detector``) to ``out``; returns the output names."""
    check_exportable(model, with_postprocess)
    preprocessor = model.data_preprocessor
    divisor = getattr(preprocessor, 'pad_size_divisor', 1)
    if any(v % divisor for v in shape):
        raise ValueError(f'--shape {shape[0]} {shape[1]}: H and W must be multiples of {divisor}')
    wrapper = ExportModel(model, with_postprocess).eval()
    example = torch.zeros(1, 3, *shape, device=next(model.parameters()).device)
    with torch.no_grad():
        num_raw = len(model(example, mode='tensor'))
    names = [f'raw_{i}' for i in range(num_raw)] + (['boxes', 'scores'] if with_postprocess else [])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(wrapper, (example,), out, dynamo=True, opset_version=OPSET, input_names=['inputs'],
                          output_names=names, external_data=False)
    graph = onnx.load(out)
    normalise = preprocessor._enable_normalize
    meta = dict(input_shape=[1, 3, *shape], mean=preprocessor.mean.flatten().tolist() if normalise else None,
                std=preprocessor.std.flatten().tolist() if normalise else None,
                bgr_to_rgb=bool(preprocessor._channel_conversion),
                pad_size_divisor=divisor, classes=list(model.dataset_meta.get('classes', ())),
                test_cfg=getattr(model.head, 'test_cfg', None))
    onnx.helper.set_model_props(graph, {k: json.dumps(v) for k, v in meta.items()})
    onnx.checker.check_model(graph)
    onnx.save(graph, out)
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', default='model.onnx')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="network input size (default: the test pipeline's Pad size)")
    parser.add_argument('--with-postprocess', action='store_true',
                        help="also output the head's decoded boxes and per-class scores")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = init_detector(args.config, args.checkpoint, 'cpu', args.cfg_options)
    try:
        shape = tuple(args.shape) if args.shape else default_shape(model.cfg)
        names = export(model, args.out, shape, args.with_postprocess)
    except (TypeError, ValueError) as error:
        sys.exit(f'error: {error}')
    print(f'{args.out}: inputs [1, 3, {shape[0]}, {shape[1]}] -> {", ".join(names)} (opset {OPSET})')


if __name__ == '__main__':
    main()
