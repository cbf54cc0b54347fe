"""tools/export_onnx.py: every shipped single-stage config (random weights) exported at its input size
gives, under onnxruntime, PyTorch's raw head outputs and decoded candidates within 1e-4; the candidates,
selected by the head's test_cfg, are the detector's own predictions. DETR configs export their raw
outputs (equal within 1e-4); two-stage configs are refused with the reason.

At random initialisation CenterNet's heatmap is nearly constant (its prior bias dominates), so whether a
pixel is a 3x3 peak is decided by float rounding; such candidates may be zero on one side only.

``--check IMG`` compares both runtimes on real images after exporting: its input (letterbox, normalisation,
zero padding to the export shape) is checked against OpenCV, its report and its failure on a perturbed
model on YOLO v1's random weights. A slow test trains the two-stage RT-DETR briefly, until its token
scores no longer tie, and checks its export on the val images within 1e-4."""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from det.apis import init_detector
from det.datasets.shapes import generate_shapes
from det.engine.config import set_num_classes
from det.models.heads.heatmap_head import HeatmapHead
from det.structures import DetDataSample

from .conftest import REPO, run_tool

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
# DETR-R50 (41 M parameters) is the same code as the small DETRs, at ten times the export time; the
# one-to-many and BCCD RT-DETRs export the graph of rtdetr_efficientnetlite0_320_shapes.py (training-only
# queries; another input size and class count), about 30 s each for nothing new.
QUERY = [c for c in CONFIGS if _model_type(c) == 'DETR'
         and not any(part in c.name for part in ('r50', '_o2m', '_bccd'))]
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


YOLO = REPO / 'configs/yolov1_mobilenetv2_fpn_320_shapes.py'


def _letterbox_inputs(image: np.ndarray, size: int, mean, std, shape: tuple) -> torch.Tensor:
    """Reference input ``[1, 3, H, W]`` by OpenCV: ``image`` (BGR) resized with its aspect ratio kept to fit
    ``size`` x ``size``, padded with black to that square, RGB, normalised, then zeros up to ``shape``."""
    h, w = image.shape[:2]
    ratio = min(size / h, size / w)
    resized = cv2.resize(image, (round(w * ratio), round(h * ratio)), interpolation=cv2.INTER_LINEAR)
    square = np.zeros((size, size, 3), np.uint8)
    square[:resized.shape[0], :resized.shape[1]] = resized
    rgb = (square[:, :, ::-1].astype(np.float32) - np.float32(mean)) / np.float32(std)
    out = np.zeros((shape[0], shape[1], 3), np.float32)
    out[:size, :size] = rgb
    return torch.from_numpy(out).permute(2, 0, 1)[None]


@pytest.fixture(scope='module')
def check_images(tmp_path_factory) -> list:
    """Three generated 96x96 shapes images and a 150x240 (h x w) crop of a larger one, sorted by name."""
    folder = tmp_path_factory.mktemp('check_images')
    generate_shapes(str(folder / 'shapes'), num_train=0, num_val=3, img_size=96, seed=4, workers=1)
    wide = tmp_path_factory.mktemp('wide')
    generate_shapes(str(wide / 'shapes'), num_train=0, num_val=1, img_size=240, seed=5, workers=1)
    image = cv2.imread(str(wide / 'shapes/val/000000.jpg'))
    cv2.imwrite(str(folder / 'shapes/val/zz_wide.png'), image[:150])
    return sorted(str(p) for p in (folder / 'shapes/val').iterdir())


def test_check_input_is_the_letterboxed_normalised_image_zero_padded(check_images, tmp_path):
    model = init_detector(YOLO, _random_checkpoint(YOLO, tmp_path))
    mean = model.cfg.model.data_preprocessor.get('mean', (123.675, 116.28, 103.53))
    std = model.cfg.model.data_preprocessor.get('std', (58.395, 57.12, 57.375))
    for image, shape in ((check_images[0], (320, 320)), (check_images[-1], (352, 384))):
        expected = _letterbox_inputs(cv2.imread(image), 320, mean, std, shape)
        torch.testing.assert_close(export_onnx.network_inputs(model, image, shape), expected,
                                   rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match='zz_wide.png: the test pipeline gives a 320x320 input, larger'):
        export_onnx.network_inputs(model, check_images[-1], (288, 320))


def test_check_reports_each_output_over_the_images(check_images, tmp_path, capsys):
    folder = str(Path(check_images[0]).parent)
    export_onnx.main([str(YOLO), str(_random_checkpoint(YOLO, tmp_path)), '--out', str(tmp_path / 'm.onnx'),
                      '--with-postprocess', '--check', folder, '--check-limit', '3'])
    lines = capsys.readouterr().out.splitlines()
    report = {line.split(':')[0]: line for line in lines if 'onnxruntime - pytorch' in line}
    assert list(report) == ['raw_0', 'raw_1', 'boxes', 'scores']
    for line in report.values():
        assert 'over 3 images' in line and check_images[3] not in line
        assert float(line.split('= ')[1].split()[0]) <= 1e-4
    assert not any('two-stage selection' in line for line in lines)   # a dense model selects no tokens


def test_check_fails_naming_the_image_and_output(check_images, tmp_path, monkeypatch):
    """The model changes after export, for the last image only (its head's class bias + 0.01): --check
    must stop and name that image and the class output."""
    network_inputs = export_onnx.network_inputs

    def perturbed_for_last(model, image, shape):
        if image == check_images[-1]:
            with torch.no_grad():
                model.head.out.bias[10:] += 0.01   # raw_1's channels: the class scores
        return network_inputs(model, image, shape)

    monkeypatch.setattr(export_onnx, 'network_inputs', perturbed_for_last)
    checkpoint = _random_checkpoint(YOLO, tmp_path)
    with pytest.raises(SystemExit) as error:
        export_onnx.main([str(YOLO), str(checkpoint), '--out', str(tmp_path / 'm.onnx'),
                          '--check', *check_images, '--atol', '1e-3'])
    message = str(error.value.code)
    assert message.startswith('error: onnxruntime differs from PyTorch by ')
    assert f'on output raw_1 of image {check_images[-1]}' in message


def test_check_without_images_is_an_error(tmp_path):
    with pytest.raises(ValueError, match='no image files found'):
        export_onnx.check_images([tmp_path])
    with pytest.raises(ValueError, match='--check-limit 0'):
        export_onnx.check_images([tmp_path], 0)


def _selection_gaps(model, inputs: list) -> list:
    """Per input ``[1, 3, H, W]``: the Q-th minus the (Q+1)-th best token score (sigmoid, best class) of
    the model's two-stage query selection, the margin that decides which tokens become queries."""
    gaps = []

    def record(module, args, output):
        scores = output.proposals.cls_logits.sigmoid().amax(-1).masked_fill(~output.proposals.valid, -1.0)
        top = scores.topk(model.num_queries + 1, dim=1).values[0]
        gaps.append(float(top[-2] - top[-1]))

    handle = model.queries.register_forward_hook(record)
    with torch.no_grad():
        for x in inputs:
            model(x, mode='tensor')
    handle.remove()
    return gaps


@pytest.mark.slow
def test_trained_two_stage_detr_matches_onnxruntime_on_val_images(tmp_path):
    """Issue 28: RT-DETR (two-stage selection) trained for one short epoch (32 steps of batch 8 on 256
    generated images; warm-up shortened from 100 steps to 4), exported with --check on the 8 val images:
    the tool passes at atol 1e-4 and so does this test's own comparison on two images. The model must be
    trained: val AP50 well above random weights' (~0.0005) and no tie at the Q-th best token score
    (random weights tie exactly; float differences between the runtimes are ~1e-6 in the logits)."""
    config = REPO / 'configs/rtdetr_efficientnetlite0_320_shapes.py'
    data, work = tmp_path / 'shapes', tmp_path / 'work'
    dataset = [f'data_root={data}', 'num_train=256', 'num_val=8']
    options = [f'{split}_dataloader.dataset.{option}' for split in ('train', 'val', 'test')
               for option in dataset]
    run_tool('train', config, '--work-dir', work, '--epochs', '1', '--cfg-options', *options,
             'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0', 'param_scheduler.0.end=4')
    lines = next(work.glob('*/vis_data/scalars.json')).read_text().splitlines()
    ap50 = [s['coco/AP50'] for s in map(json.loads, lines) if 'coco/AP50' in s]
    assert ap50 and ap50[-1] > 0.03, ap50

    checkpoint, out = work / 'epoch_1.pth', tmp_path / 'rtdetr.onnx'
    proc = run_tool('export_onnx', config, checkpoint, '--out', out, '--check', data / 'val', check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = [line for line in proc.stdout.splitlines() if 'onnxruntime - pytorch' in line]
    assert [line.split(':')[0] for line in report] == ['raw_0', 'raw_1']
    assert all('over 8 images' in line and float(line.split('= ')[1].split()[0]) <= 1e-4 for line in report)

    model = init_detector(config, checkpoint)
    assert model.cfg.model.query_type == 'encoder'
    preprocessor = model.cfg.model.data_preprocessor
    images = sorted((data / 'val').glob('*.jpg'))
    inputs = [_letterbox_inputs(cv2.imread(str(i)), 320, preprocessor.mean, preprocessor.std, (320, 320))
              for i in images]
    gaps = _selection_gaps(model, inputs)
    assert min(gaps) > 1e-6, gaps
    for x in inputs[:2]:
        results = _run_onnx(out, x)
        with torch.no_grad():
            raw = model(x, mode='tensor')
        for i, expected in enumerate(raw):
            np.testing.assert_allclose(results[f'raw_{i}'], expected.numpy(), rtol=0, atol=1e-4)
