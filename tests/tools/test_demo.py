"""tools/demo.py on a folder of generated shapes images and a non-square file: one picture per input,
of the input's size, for plain, pyramid + flip and sliced inference."""
import importlib.util

import cv2
import numpy as np
import pytest

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


def _assert_pictures(out_dir, inputs):
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == sorted(p.name for p in inputs)
    for path in inputs:
        assert cv2.imread(str(out_dir / path.name)).shape == cv2.imread(str(path)).shape


def test_demo_on_a_folder_and_a_file(inputs, tmp_path):
    config, checkpoint, folder, wide = inputs
    out = tmp_path / 'out'
    proc = run_tool('demo', config, checkpoint, folder, wide, '--out-dir', out, '--score-thr', 0)
    _assert_pictures(out, sorted(folder.glob('*.jpg')) + [wide])
    assert '4 pictures written' in proc.stdout
    # Every detection is drawn: the picture differs from the input.
    assert np.any(cv2.imread(str(out / wide.name)) != cv2.imread(str(wide)))


@pytest.mark.parametrize('options', [['--scales', '0.5', '1', '2', '--flip', '--merge', 'wbf'],
                                     ['--slice', '64', '--overlap', '0.25', '--merge', 'soft_nms']],
                         ids=['pyramid_flip', 'slice'])
def test_demo_multi_view_options(inputs, tmp_path, options):
    config, checkpoint, _, wide = inputs
    _demo_tool().main([str(config), str(checkpoint), str(wide), '--out-dir', str(tmp_path), *options])
    _assert_pictures(tmp_path, [wide])


def test_demo_refuses_missing_inputs(inputs, tmp_path):
    config, checkpoint, _, _ = inputs
    with pytest.raises(SystemExit, match='nowhere'):
        _demo_tool().main([str(config), str(checkpoint), str(tmp_path / 'nowhere')])
