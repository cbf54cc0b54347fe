"""tools/export_onnx.py: every shipped single-stage config (random weights) exported at its input size
gives, under onnxruntime, PyTorch's raw head outputs and decoded candidates within 1e-4; the candidates,
selected by the head's test_cfg, are the detector's own predictions. DETR configs export their raw
outputs (equal within 1e-4); two-stage configs are refused with the reason.

At random initialisation CenterNet's heatmap is nearly constant (its prior bias dominates), so whether a
pixel is a 3x3 peak is decided by float rounding; such candidates may be zero on one side only."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from det.apis import init_detector
from det.engine.config import set_num_classes
from det.models.heads.heatmap_head import HeatmapHead
from det.structures import DetDataSample

from .conftest import REPO

onnx = pytest.importorskip('onnx', reason='exporting needs onnx; pip install onnx onnxruntime onnxscript')
ort = pytest.importorskip('onnxruntime',
                          reason='checking the export needs onnxruntime; pip install onnxruntime')
pytest.importorskip('onnxscript',
                    reason="torch's dynamo ONNX exporter needs onnxscript; pip install onnxscript")

spec = importlib.util.spec_from_file_location('export_onnx', REPO / 'tools' / 'export_onnx.py')
export_onnx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(export_onnx)

# One entry per experiment: configs/yolo_v1.py is a link to its full name.
CONFIGS = sorted({p.resolve() for p in (REPO / 'configs').glob('*.py')})


def _model_type(config: Path) -> str:
    return Config.fromfile(str(config)).model.type


DENSE = [c for c in CONFIGS if _model_type(c) == 'SingleStageDetector']
# DETR-R50 (41 M parameters) is the same code as the small DETRs, at ten times the export time.
QUERY = [c for c in CONFIGS if _model_type(c) == 'DETR' and 'r50' not in c.name]
TWO_STAGE = [c for c in CONFIGS if _model_type(c) == 'TwoStageDetector']


def _random_checkpoint(config: Path, tmp_path: Path, cfg_options: dict = None) -> Path:
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(cfg_options or {})
    set_num_classes(cfg, 2)  # a config for one's own data takes the count of the classes saved below
    torch.manual_seed(0)
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': init_detector(cfg, fuse=False).state_dict(),
                'meta': {'dataset_meta': {'classes': ('a', 'b')}}}, checkpoint)
    return checkpoint


def _run_onnx(path: Path, inputs: torch.Tensor) -> dict:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # onnxruntime's spinning threads crawl on a busy 2-core machine
    session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {'inputs': inputs.numpy()})))


def _export_and_run(config: Path, tmp_path: Path, options: list) -> tuple:
    """ONNX Runtime's and PyTorch's raw outputs of the exported model (random weights, ``options`` as
    ``--cfg-options``) on one random input."""
    cfg_options = {key: None if value == 'None' else value  # as --cfg-options (mmengine's DictAction)
                   for key, value in (option.split('=') for option in options)}
    checkpoint = _random_checkpoint(config, tmp_path, cfg_options)
    model = init_detector(config, checkpoint, cfg_options=cfg_options)
    out = tmp_path / 'model.onnx'
    export_onnx.main([str(config), str(checkpoint), '--out', str(out)]
                     + (['--cfg-options'] + options if options else []))
    inputs = torch.randn(1, 3, *reversed(model.cfg.img_scale), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return _run_onnx(out, inputs), model(inputs, mode='tensor')


@pytest.mark.parametrize('config', QUERY, ids=lambda p: p.name)
def test_detr_raw_outputs_match_pytorch(config: Path, tmp_path):
    checkpoint = _random_checkpoint(config, tmp_path)
    with pytest.raises(SystemExit, match='needs a dense head'):
        export_onnx.main([str(config), str(checkpoint), '--out', str(tmp_path / 'x.onnx'),
                          '--with-postprocess'])
    options = []
    if Config.fromfile(str(config)).model.get('query_type') == 'encoder':
        # Two-stage selection exports, with the outputs' shapes. At random init the encoder's tokens
        # are nearly identical (class scores equal to ~1e-4 or tied), so float noise between runtimes
        # changes which tokens are selected: the values are compared on anchor queries instead, which
        # run the same decoder (deformable attention included) on the same weights.
        results, raw = _export_and_run(config, tmp_path, [])
        assert [r.shape for r in results.values()] == [tuple(t.shape) for t in raw]
        assert all(np.isfinite(r).all() for r in results.values())
        options = ['model.query_type=anchor']
        if Config.fromfile(str(config)).model.get('one_to_many') is not None:
            options.append('model.one_to_many=None')    # a training-only switch of two-stage queries
    results, raw = _export_and_run(config, tmp_path, options)
    assert list(results) == [f'raw_{i}' for i in range(len(raw))]
    for i, expected in enumerate(raw):
        np.testing.assert_allclose(results[f'raw_{i}'], expected.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('config', TWO_STAGE[:1], ids=lambda p: p.name)
def test_two_stage_export_is_refused_with_the_reason(config: Path, tmp_path):
    checkpoint = _random_checkpoint(config, tmp_path)
    with pytest.raises(SystemExit, match='data-dependent'):
        export_onnx.main([str(config), str(checkpoint), '--out', str(tmp_path / 'x.onnx')])


@pytest.mark.parametrize('config', DENSE, ids=lambda p: p.name)
def test_onnxruntime_matches_pytorch(config: Path, tmp_path):
    checkpoint = _random_checkpoint(config, tmp_path)
    model = init_detector(config, checkpoint)
    out = tmp_path / 'model.onnx'
    export_onnx.main([str(config), str(checkpoint), '--out', str(out), '--with-postprocess'])

    graph = onnx.load(str(out))
    assert graph.opset_import[0].version >= 17
    meta = {p.key: json.loads(p.value) for p in graph.metadata_props}
    shape = tuple(meta['input_shape'][2:])
    assert shape == tuple(reversed(model.cfg.img_scale)) and meta['classes'] == ['a', 'b']
    preprocessor = model.cfg.model.data_preprocessor  # the normalisation the config trains with
    assert meta['mean'] == pytest.approx(list(preprocessor.get('mean', (123.675, 116.28, 103.53))))
    assert meta['std'] == pytest.approx(list(preprocessor.get('std', (58.395, 57.12, 57.375))))
    assert meta['bgr_to_rgb'] is True
    inputs = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(1))
    results = _run_onnx(out, inputs)
    names = list(results)
    with torch.no_grad():
        raw = model(inputs, mode='tensor')
        boxes, scores = export_onnx.ExportModel(model, with_postprocess=True)(inputs)[-2:]
    assert names == [f'raw_{i}' for i in range(len(raw))] + ['boxes', 'scores']
    for i, expected in enumerate(raw):
        np.testing.assert_allclose(results[f'raw_{i}'], expected.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(results['boxes'], boxes.numpy(), rtol=1e-4, atol=1e-4)
    both = (results['scores'] != 0) & (scores.numpy() != 0)
    np.testing.assert_allclose(results['scores'][both], scores.numpy()[both], rtol=1e-4, atol=1e-4)
    one_side = (results['scores'] != 0) != (scores.numpy() != 0)
    assert not one_side.any() or isinstance(model.head, HeatmapHead)  # CenterNet / TTFNet peaks

    # The candidates selected as the head does are the detector's predictions (in input pixels).
    sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, batch_input_shape=shape,
                                         pad_shape=shape, scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        expected, = model.predict_in_input_pixels(inputs, [sample])
    selected = model.head.select_detections(boxes[0], scores[0])
    for key in ('bboxes', 'scores', 'labels'):
        torch.testing.assert_close(selected[key], expected[key], rtol=0, atol=0)


def test_shape_must_be_a_multiple_of_the_pad_divisor(tmp_path):
    config = REPO / 'configs/yolov1_mobilenetv2_fpn_320_shapes.py'
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': init_detector(config, fuse=False).state_dict()}, checkpoint)
    with pytest.raises(SystemExit, match='multiples of 32'):
        export_onnx.main([str(config), str(checkpoint), '--out', str(tmp_path / 'x.onnx'),
                          '--shape', '250', '320'])
