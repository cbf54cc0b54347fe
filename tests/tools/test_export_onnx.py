"""tools/export_onnx.py: every shipped config (random weights) exported at its input size gives, under
onnxruntime, PyTorch's raw head outputs and decoded candidates within 1e-4; the candidates, selected by
the head's test_cfg, are the detector's own predictions.

At random initialisation CenterNet's heatmap is nearly constant (its prior bias dominates), so whether a
pixel is a 3x3 peak is decided by float rounding; such candidates may be zero on one side only."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from det.apis import init_detector
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


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_onnxruntime_matches_pytorch(config: Path, tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': init_detector(config).state_dict(),
                'meta': {'dataset_meta': {'classes': ('a', 'b')}}}, checkpoint)
    model = init_detector(config, checkpoint)
    out = tmp_path / 'model.onnx'
    export_onnx.main([str(config), str(checkpoint), '--out', str(out), '--with-postprocess'])

    graph = onnx.load(str(out))
    assert graph.opset_import[0].version >= 17
    meta = {p.key: json.loads(p.value) for p in graph.metadata_props}
    shape = tuple(meta['input_shape'][2:])
    assert shape == tuple(reversed(model.cfg.img_scale)) and meta['classes'] == ['a', 'b']
    assert meta['mean'] == pytest.approx([123.675, 116.28, 103.53]) and meta['bgr_to_rgb'] is True
    inputs = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(1))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # onnxruntime's spinning threads crawl on a busy 2-core machine
    session = ort.InferenceSession(str(out), options, providers=['CPUExecutionProvider'])
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(None, {'inputs': inputs.numpy()})))
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
    assert not one_side.any() or 'CenterNet' in model.cfg.model.head.type

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
    torch.save({'state_dict': init_detector(config).state_dict()}, checkpoint)
    with pytest.raises(SystemExit, match='multiples of 32'):
        export_onnx.main([str(config), str(checkpoint), '--out', str(tmp_path / 'x.onnx'),
                          '--shape', '250', '320'])
