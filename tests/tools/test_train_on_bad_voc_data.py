"""Training goes on through a VOC folder with invalid boxes and a corrupt image, saying so."""

from .conftest import experiment_config, run_tool, voc_dataset, write_voc_split


def test_training_survives_invalid_boxes_and_corrupt_image(tmp_path):
    root = tmp_path / 'voc'
    names = [f'img{i}' for i in range(10)]

    def boxes_of(name):
        boxes = [('box', (5, 5, 30, 30)), ('disc', (30, 10, 60, 40))]
        if name == 'img1':
            boxes += [('box', (20, 20, 20, 35)), ('disc', (50, 30, 90, 60))]  # empty; partly outside
        if name == 'img2':
            boxes += [('box', (70, 50, 80, 60))]  # wholly outside the 64x48 image
        return boxes

    write_voc_split(root, 'train', {name: boxes_of(name) for name in names[:8]})
    write_voc_split(root, 'val', {name: boxes_of(name) for name in names[8:]})
    (root / 'JPEGImages' / 'img3.jpg').write_bytes(b'not a jpeg at all')  # corrupt, in the train split
    config = tmp_path / 'bad_voc.py'
    config.write_text(experiment_config(voc_dataset(root, ('box', 'disc')), 2, epochs=2))

    proc = run_tool('train', config, '--work-dir', tmp_path / 'wd')
    log = proc.stdout + proc.stderr
    assert (tmp_path / 'wd' / 'epoch_2.pth').exists()
    assert '1 boxes clipped to the image and 2 invalid boxes dropped' in log
    assert log.count('split=train): 1 boxes clipped') == 1  # one warning for the dataset, not per box
    assert 'img3.jpg' in log  # the unreadable image is named when skipped
