"""Export a detector to ONNX (opset 18, torch's dynamo exporter; needs ``onnx`` and ``onnxscript``).

    python tools/export_onnx.py CONFIG CKPT [--out model.onnx] [--shape H W] [--with-postprocess]
        [--check IMG [IMG ...] [--check-limit N] [--atol 1e-4]]

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

``--check IMG [IMG ...]`` (image files or folders, searched recursively; the first ``--check-limit N``
images) then checks the written graph on real images: each goes through the config's test pipeline
(without annotation loading) and the data preprocessor, is zero-padded at the bottom-right to the export
shape (an image larger than it is an error), and runs through PyTorch (``model(inputs, mode='tensor')``,
plus the decoded candidates with ``--with-postprocess``) and onnxruntime (CPU provider, one thread). One
line per output gives the largest absolute difference over the images and the image where it occurs;
the tool exits non-zero, naming the worst image and output, when a difference exceeds ``--atol``
(default 1e-4). For two-stage DETR query selection it also prints the smallest gap between the Q-th and
(Q+1)-th best token scores: a gap near float rounding lets the runtimes select different tokens.
"""
import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from mmengine.config import DictAction
from torch import nn
from torch.nn import functional as F

from det.apis import init_detector, load_image
from det.datasets.transforms import build_pipeline
from det.datasets.yolo import list_images
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


def network_inputs(model, image: str, shape: tuple) -> torch.Tensor:
    """The export graph's input ``[1, 3, H, W]`` for ``image`` (a path): the config's test pipeline after
    loading, the data preprocessor, then zeros at the bottom / right up to ``shape`` (H, W)."""
    results = load_image(image, image)
    for transform in build_pipeline(split_test_pipeline(model.cfg)[1]):
        results = transform(results)
    data = model.data_preprocessor(dict(inputs=[results['inputs']], data_samples=[results['data_samples']]))
    inputs = data['inputs']
    height, width = inputs.shape[-2:]
    if height > shape[0] or width > shape[1]:
        raise ValueError(f'{image}: the test pipeline gives a {height}x{width} input, larger than the '
                         f'export shape {shape[0]}x{shape[1]}')
    return F.pad(inputs, (0, shape[1] - width, 0, shape[0] - height)).contiguous()


def abs_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a - b|`` elementwise, equal infinities 0 and a NaN on either side infinite (never a match)."""
    with np.errstate(invalid='ignore', over='ignore'):
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return np.where(np.isnan(diff), np.where(a == b, 0.0, np.inf), diff)


class SelectionGap:
    """Records, while registered on a two-stage query source (``EncoderQueries``), the gap between the
    Q-th and (Q+1)-th best token scores of each forward pass: the margin by which the selected set of
    tokens is decided (the selection itself breaks exact ties by token index)."""

    def __init__(self, model):
        queries = getattr(model, 'queries', None)          # DETR's query source; dense models have none
        self.queries = queries if getattr(queries, 'scores_tokens', False) else None
        self.gaps, self.handle = [], None

    def __enter__(self):
        if self.queries is not None:
            self.handle = self.queries.register_forward_hook(self.record)
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.remove()

    def record(self, module, args, output):
        """Forward hook; ``args`` are (memory, mask, head), as ``DETR.pre_decoder`` calls the source."""
        proposals = output.proposals
        scores = module.token_scores(args[2], proposals.cls_logits, ~proposals.valid)
        top = scores.topk(module.num_queries + 1, dim=1).values                    # [B, Q + 1]
        self.gaps.extend((top[:, -2] - top[:, -1]).tolist())


def check_onnx(model, out: str, images: list, shape: tuple, with_postprocess: bool, atol: float) -> dict:
    """Run ``images`` (paths) through ``model`` (as exported by :func:`export`) and the graph ``out`` on
    onnxruntime's CPU provider; print each output's largest absolute difference over the images.

    Returns ``{output: (largest difference, image)}``; raises ValueError naming the worst image and output
    when a difference exceeds ``atol``."""
    import onnxruntime as ort  # needed by --check only, not by the export
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1   # deterministic and fair to a busy machine; speed is not measured
    session = ort.InferenceSession(out, options, providers=['CPUExecutionProvider'])
    names = [o.name for o in session.get_outputs()]
    reference = ExportModel(model, with_postprocess).eval()
    worst = {name: (0.0, None) for name in names}
    with SelectionGap(model) as gaps, torch.no_grad():
        for image in images:
            inputs = network_inputs(model, image, shape)
            expected = reference(inputs)
            results = session.run(None, {'inputs': inputs.numpy()})
            for name, result, tensor in zip(names, results, expected):
                if result.shape != tuple(tensor.shape):
                    raise ValueError(f'{image}: output {name} has shape {list(result.shape)} in onnxruntime, '
                                     f'{list(tensor.shape)} in PyTorch')
                diff = float(abs_difference(result, tensor.numpy()).max(initial=0.0))
                if diff > worst[name][0] or worst[name][1] is None:
                    worst[name] = (diff, image)
    for name, (diff, image) in worst.items():
        print(f'{name}: max |onnxruntime - pytorch| = {diff:.3g} over {len(images)} images (worst {image})')
    if gaps.gaps:
        smallest = int(np.argmin(gaps.gaps))
        print(f'two-stage selection: smallest gap between the {gaps.queries.num_queries}th and next token '
              f'score = {gaps.gaps[smallest]:.3g} ({images[smallest]})')
    name, (diff, image) = max(worst.items(), key=lambda item: item[1][0])
    if not diff <= atol:
        raise ValueError(f'onnxruntime differs from PyTorch by {diff:.3g} > atol {atol:g} on output {name} '
                         f'of image {image}')
    return worst


def check_images(sources: list, limit: int = None) -> list:
    """Image paths of ``sources`` (files or folders, searched recursively), the first ``limit`` of them."""
    if limit is not None and limit < 1:
        raise ValueError(f'--check-limit {limit}: give a positive number of images')
    images = list_images([str(s) for s in sources])[0][:limit]
    if not images:
        raise ValueError(f'--check {" ".join(map(str, sources))}: no image files found')
    missing = [i for i in images if not Path(i).is_file()]
    if missing:
        raise ValueError(f'--check: image not found: {missing[0]}')
    return images


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
    parser.add_argument('--check', nargs='+', metavar='IMG',
                        help='after exporting, compare onnxruntime with PyTorch on these images or folders')
    parser.add_argument('--check-limit', type=int, metavar='N', help='check the first N images only')
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='largest absolute difference --check accepts (default 1e-4)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = init_detector(args.config, args.checkpoint, 'cpu', args.cfg_options)
    try:
        images = check_images(args.check, args.check_limit) if args.check else []
        shape = tuple(args.shape) if args.shape else default_shape(model.cfg)
        names = export(model, args.out, shape, args.with_postprocess)
        print(f'{args.out}: inputs [1, 3, {shape[0]}, {shape[1]}] -> {", ".join(names)} (opset {OPSET})')
        if images:
            check_onnx(model, args.out, images, shape, args.with_postprocess, args.atol)
    except (TypeError, ValueError, OSError) as error:     # OSError: a --check image that cannot be read
        sys.exit(f'error: {error}')


if __name__ == '__main__':
    main()
