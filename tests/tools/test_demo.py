"""tools/demo.py on a folder of generated shapes images, a non-square file, a glob and a video: one
picture (scaled up to 640 px when smaller) or video per input, a COCO-style predictions json that
pycocotools reads and that holds what det.apis.inference_detector finds, unreadable images skipped and
named, and plain, pyramid + flip and sliced inference."""
import importlib.util
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from det.apis import inference_detector, init_detector
from det.datasets.shapes import generate_shapes
from tests.apis.tiny_detector import write_tiny_experiment

from .conftest import REPO, run_tool


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """(config, checkpoint, folder of 3 generated 96 px images, a 150x230 image file)."""
    folder = tmp_path_factory.mktemp('demo')
    config, checkpoint = write_tiny_experiment(folder)
    generate_shapes(str(folder / 'images'), num_train=0, num_val=3, img_size=96, seed=4)
    wide = folder / 'wide.png'
    cv2.imwrite(str(wide), cv2.resize(cv2.imread(str(folder / 'images/val/000000.jpg')), (230, 150)))
    return config, checkpoint, folder / 'images' / 'val', wide


def _demo_tool():
    spec = importlib.util.spec_from_file_location('det_tools_demo', REPO / 'tools' / 'demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _displayed(shape, min_size=640):
    """The drawn picture's (h, w): scaled up so the long side is min_size, never down."""
    h, w = shape[:2]
    scale = max(1.0, min_size / max(h, w))
    return round(h * scale), round(w * scale)


def _assert_pictures(out_dir, inputs, min_size=640):
    written = sorted(p.name for p in out_dir.iterdir() if p.suffix != '.json')
    assert written == sorted(p.name for p in inputs)
    for path in inputs:
        assert cv2.imread(str(out_dir / path.name)).shape[:2] == _displayed(cv2.imread(str(path)).shape,
                                                                            min_size)


def _json_boxes(coco, img_id):
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
    boxes = np.array([a['bbox'] for a in anns], np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes, np.array([a['category_id'] - 1 for a in anns]), np.array([a['score'] for a in anns])


def _assert_same_detections(coco, img_id, sample):
    boxes, labels, scores = _json_boxes(coco, img_id)
    pred = sample.pred_instances
    assert len(boxes) == len(pred) > 0
    np.testing.assert_allclose(boxes, pred.bboxes.numpy(), atol=1e-3)
    np.testing.assert_array_equal(labels, pred.labels.numpy())
    np.testing.assert_allclose(scores, pred.scores.numpy(), atol=1e-5)


def test_demo_on_a_folder_and_a_file(inputs, tmp_path):
    config, checkpoint, folder, wide = inputs
    out = tmp_path / 'out'
    proc = run_tool('demo', config, checkpoint, folder, wide, '--out-dir', out, '--pred-score-thr', 0)
    images = sorted(folder.glob('*.jpg')) + [wide]
    _assert_pictures(out, images)
    assert '4 of 4 inputs read' in proc.stdout
    # Every detection is drawn: the picture differs from the enlarged input.
    enlarged = cv2.resize(cv2.imread(str(wide)), _displayed((150, 230))[::-1], interpolation=cv2.INTER_LINEAR)
    assert np.any(cv2.imread(str(out / wide.name)) != enlarged)
    # predictions.json is a COCO file holding what the Python API finds on the same images.
    coco = COCO(str(out / 'predictions.json'))
    assert [img['file_name'] for img in coco.dataset['images']] == [p.name for p in images]
    model = init_detector(str(config), str(checkpoint))
    assert [c['name'] for c in coco.dataset['categories']] == list(model.dataset_meta['classes'])
    for img_id, path in zip(coco.getImgIds(), images):
        _assert_same_detections(coco, img_id, inference_detector(model, str(path)))


def test_demo_takes_a_glob(inputs, tmp_path):
    config, checkpoint, folder, _ = inputs
    _demo_tool().main([str(config), str(checkpoint), str(folder / '00000[12].jpg'), '--out-dir',
                       str(tmp_path), '--score-thr', '0.5', '--no-save-pred'])
    _assert_pictures(tmp_path, [folder / '000001.jpg', folder / '000002.jpg'])


def test_demo_on_a_video(inputs, tmp_path, capsys):
    config, checkpoint, folder, _ = inputs
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5, (128, 96))
    for path in sorted(folder.glob('*.jpg')):
        writer.write(cv2.resize(cv2.imread(str(path)), (128, 96)))
    writer.release()
    capture = cv2.VideoCapture(str(video))
    frames = [capture.read()[1] for _ in range(3)]
    assert all(f is not None for f in frames)
    out = tmp_path / 'out'
    _demo_tool().main([str(config), str(checkpoint), str(video), '--out-dir', str(out),
                       '--pred-score-thr', '0'])
    assert '1 of 1 inputs read' in capsys.readouterr().out
    drawn = cv2.VideoCapture(str(out / 'clip.mp4'))
    assert int(drawn.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert (int(drawn.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(drawn.get(cv2.CAP_PROP_FRAME_WIDTH))) == (480, 640)
    coco = COCO(str(out / 'predictions.json'))
    assert [(img['file_name'], img['frame']) for img in coco.dataset['images']] == [('clip.avi', i)
                                                                                  for i in range(3)]
    model = init_detector(str(config), str(checkpoint))
    for img_id, frame in zip(coco.getImgIds(), frames):
        _assert_same_detections(coco, img_id, inference_detector(model, frame))


def test_demo_skips_and_names_unreadable_images(inputs, tmp_path, capsys):
    """Issue 25 defect 10: an unreadable image in a folder no longer aborts the run."""
    config, checkpoint, folder, _ = inputs
    mixed = tmp_path / 'mixed'
    mixed.mkdir()
    for path in folder.glob('*.jpg'):
        (mixed / path.name).write_bytes(path.read_bytes())
    (mixed / '000001.jpg').write_bytes(b'not an image')  # a broken file between two good ones
    out = tmp_path / 'out'
    _demo_tool().main([str(config), str(checkpoint), str(mixed), '--out-dir', str(out)])  # no exit
    stderr = capsys.readouterr().err
    assert f'skipped {mixed / "000001.jpg"}' in stderr and '1 of 3 inputs skipped' in stderr
    assert sorted(p.name for p in out.glob('*.jpg')) == ['000000.jpg', '000002.jpg']
    assert len(json.loads((out / 'predictions.json').read_text())['images']) == 2

    for path in mixed.glob('*.jpg'):
        path.write_bytes(b'')
    with pytest.raises(SystemExit, match='none of the 3 inputs could be read'):
        _demo_tool().main([str(config), str(checkpoint), str(mixed), '--out-dir', str(tmp_path / 'none')])


@pytest.mark.parametrize('options', [['--scales', '0.5', '1', '2', '--flip', '--merge', 'wbf'],
                                     ['--slice', '64', '--overlap', '0.25', '--merge', 'soft_nms']],
                         ids=['pyramid_flip', 'slice'])
def test_demo_multi_view_options(inputs, tmp_path, options):
    config, checkpoint, _, wide = inputs
    _demo_tool().main([str(config), str(checkpoint), str(wide), '--out-dir', str(tmp_path), '--min-size', '0',
                       *options])
    _assert_pictures(tmp_path, [wide], min_size=0)


def test_demo_refuses_missing_inputs(inputs, tmp_path):
    config, checkpoint, _, _ = inputs
    with pytest.raises(SystemExit, match='nowhere'):
        _demo_tool().main([str(config), str(checkpoint), str(tmp_path / 'nowhere')])
    with pytest.raises(SystemExit, match=r'no image or video matches .*\*.png'):
        _demo_tool().main([str(config), str(checkpoint), str(tmp_path / '*.png')])
