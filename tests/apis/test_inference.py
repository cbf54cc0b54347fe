"""init_detector / inference_detector against the dataset path that tools/test.py takes (dataset
pipeline -> data preprocessor -> ``model(mode='predict')``), batching, and errors that name the bad
input."""
import cv2
import numpy as np
import pytest
import torch

from det.apis import inference_detector, init_detector
from det.registry import DATASETS

from .tiny_detector import write_tiny_experiment


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    """(config, checkpoint, model, test dataset) of the tiny experiment."""
    folder = tmp_path_factory.mktemp('tiny_inference')
    config, checkpoint = write_tiny_experiment(folder, seed=1)
    torch.manual_seed(2)  # the model's own init differs from the checkpoint's
    model = init_detector(config, checkpoint)
    dataset = DATASETS.build(model.cfg.test_dataloader.dataset)
    return config, checkpoint, model, dataset


def assert_same_predictions(a, b, atol=1e-4):
    for key in ('bboxes', 'scores', 'labels'):
        torch.testing.assert_close(a.pred_instances[key], b.pred_instances[key], atol=atol, rtol=1e-5)


def test_init_detector_loads_the_checkpoint(experiment):
    config, checkpoint, _, _ = experiment
    model = init_detector(config, checkpoint, fuse=False)
    saved = torch.load(checkpoint, weights_only=True)
    assert not model.training
    assert model.state_dict().keys() == saved['state_dict'].keys()
    for key, value in saved['state_dict'].items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert model.dataset_meta['classes'] == saved['meta']['dataset_meta']['classes']


def count_batch_norms(model) -> int:
    return sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_fused_detector_predicts_what_the_unfused_one_does(experiment):
    config, checkpoint, fused, dataset = experiment
    unfused = init_detector(config, checkpoint, fuse=False)
    assert count_batch_norms(fused) < count_batch_norms(unfused)
    paths = [dataset[i]['data_samples'].img_path for i in range(len(dataset))]
    for a, b in zip(inference_detector(fused, paths), inference_detector(unfused, paths)):
        assert len(b.pred_instances) > 0
        assert_same_predictions(a, b, atol=1e-3)


def test_init_detector_refuses_another_models_checkpoint(experiment, tmp_path):
    config = experiment[0]
    foreign = tmp_path / 'foreign.pth'
    torch.save({'state_dict': torch.nn.Linear(3, 2).state_dict()}, foreign)
    with pytest.raises(ValueError, match='was not saved from this model'):
        init_detector(config, foreign)


def test_path_and_array_equal_the_dataset_pipeline(experiment):
    _, _, model, dataset = experiment
    for index in range(len(dataset)):
        data = dataset[index]
        batch = model.data_preprocessor(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))
        with torch.no_grad():
            expected = model(**batch, mode='predict')[0]
        assert len(expected.pred_instances) > 0
        path = data['data_samples'].img_path
        assert_same_predictions(inference_detector(model, path), expected, atol=0)
        assert_same_predictions(inference_detector(model, cv2.imread(path)), expected, atol=0)


def test_batch_of_three_equals_three_single_calls(experiment):
    _, _, model, dataset = experiment
    full = cv2.imread(dataset[1]['data_samples'].img_path)
    images = [full, np.ascontiguousarray(full[10:80, 5:90]), dataset[2]['data_samples'].img_path]
    batched = inference_detector(model, images)
    assert isinstance(batched, list) and len(batched) == 3
    for image, sample in zip(images, batched):
        assert_same_predictions(sample, inference_detector(model, image))
        height, width = sample.ori_shape
        boxes = sample.pred_instances.bboxes
        assert len(boxes) and boxes[:, 0::2].max() <= width and boxes[:, 1::2].max() <= height
    assert batched[1].ori_shape == (70, 85) and batched[1].scale_factor != (1.0, 1.0)


def test_bad_inputs_raise_naming_them(experiment, tmp_path):
    _, _, model, dataset = experiment
    good = dataset[0]['data_samples'].img_path
    garbage = tmp_path / 'not_an_image.jpg'
    garbage.write_bytes(b'this is not a jpeg')
    cases = [(str(tmp_path / 'missing.jpg'), FileNotFoundError, 'missing.jpg'),
             (str(garbage), OSError, 'not_an_image.jpg'),
             (np.zeros((0, 10, 3), np.uint8), ValueError, r'shape \(0, 10, 3\)'),
             (np.zeros((20, 10, 3), np.float32), TypeError, 'float32'),
             (np.zeros((20, 10), np.uint8), ValueError, r'shape \(20, 10\)'),
             (42, TypeError, 'int')]
    for bad, error, message in cases:
        with pytest.raises(error, match=rf'images\[1\].*{message}'):
            inference_detector(model, [good, bad])
    with pytest.raises(FileNotFoundError, match='^image: .*missing.jpg'):
        inference_detector(model, str(tmp_path / 'missing.jpg'))
