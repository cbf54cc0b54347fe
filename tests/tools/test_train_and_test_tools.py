"""tools/train.py and tools/test.py end to end on a tiny experiment: checkpoints, exact resume, safe
loading, COCO-format output scored by pycocotools, clear errors for wrong checkpoints and types."""
import json
import re
import shutil

import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .conftest import run_tool


@pytest.fixture(scope='module')
def trained(tiny_config, tmp_path_factory):
    """An uninterrupted 3-epoch run: (config, work_dir, train stdout+stderr)."""
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    proc = run_tool('train', tiny_config, '--work-dir', work_dir)
    return tiny_config, work_dir, proc.stdout + proc.stderr


def test_training_writes_checkpoints_and_coco_metrics(trained):
    _, work_dir, log = trained
    assert {f'epoch_{i}.pth' for i in (1, 2, 3)} <= {p.name for p in work_dir.iterdir()}
    assert 'machine defaults: train_dataloader.num_workers=0 (set by the config)' in log
    assert "checkpoints: backend 'atomic_local'" in log
    for key in ('coco/AP', 'coco/AP50', 'coco/AP75', 'coco/AP_vt', 'coco/AP_t', 'coco/AP_s', 'coco/AP_m',
                'coco/AP_l', 'coco/AR100'):
        assert key in log
    scalars = list(work_dir.glob('*/vis_data/scalars.json'))
    assert scalars, 'mmengine LocalVisBackend should write scalars.json'
    records = [json.loads(line) for line in scalars[0].read_text().splitlines()]
    assert any('coco/AP50' in r for r in records)
    assert any('loss' in r for r in records)


def test_checkpoint_loads_with_weights_only_and_nothing_allowlisted(trained):
    _, work_dir, _ = trained
    checkpoint = torch.load(work_dir / 'epoch_3.pth', weights_only=True)
    assert checkpoint['meta']['epoch'] == 3
    assert {'state_dict', 'optimizer', 'message_hub', 'param_schedulers'} <= set(checkpoint)


def test_resume_after_interruption_matches_uninterrupted_run(trained, tmp_path):
    """A run 'killed' during epoch 2 (only epoch_1.pth on disk) and resumed ends with the same weights
    as the uninterrupted run."""
    config, full_dir, _ = trained
    shutil.copy(full_dir / 'epoch_1.pth', tmp_path / 'epoch_1.pth')
    proc = run_tool('train', config, '--work-dir', tmp_path, '--resume')
    assert 'resumed epoch: 1, iter: 3' in proc.stdout + proc.stderr  # from epoch_1.pth, not from scratch
    resumed = torch.load(tmp_path / 'epoch_3.pth', weights_only=True)['state_dict']
    reference = torch.load(full_dir / 'epoch_3.pth', weights_only=True)['state_dict']
    assert resumed.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(resumed[key], reference[key], rtol=1e-4, atol=1e-5, msg=key)


def test_resume_rejects_checkpoint_of_another_model(trained, tmp_path):
    config, _, _ = trained
    foreign = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': torch.nn.Linear(3, 2).state_dict(), 'meta': {'epoch': 1, 'iter': 1}}, foreign)
    proc = run_tool('train', config, '--work-dir', tmp_path / 'wd', '--resume', foreign, check=False)
    assert proc.returncode != 0
    assert 'was not saved from this model' in proc.stderr


def test_test_tool_prints_metrics_and_writes_scorable_detections(trained, tmp_path):
    config, work_dir, _ = trained
    out = tmp_path / 'dets.json'
    proc = run_tool('test', config, work_dir / 'epoch_3.pth', '--out', out, '--show-dir', tmp_path / 'show',
                    '--work-dir', tmp_path / 'wd')
    printed = float(re.search(r'coco/AP50: (-?[\d.]+)', proc.stdout + proc.stderr).group(1))
    ann_file = config.parent / 'shapes' / 'annotations' / 'val.json'
    gt = COCO(str(ann_file))
    dets = json.loads(out.read_text())
    if dets:
        evaluator = COCOeval(gt, gt.loadRes(str(out)), 'bbox')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        assert printed == pytest.approx(evaluator.stats[1], abs=1e-4)
    else:
        assert printed <= 0
    drawn = list((tmp_path / 'show').glob('*.jpg'))
    assert len(drawn) == len(gt.getImgIds())


def test_test_tool_accepts_a_list_of_evaluators(trained, tmp_path):
    """mmengine takes ``test_evaluator`` as a list of metrics; ``--out`` goes to its COCO metric and both
    metrics report (the second under its own prefix)."""
    config, work_dir, _ = trained
    listed = tmp_path / 'listed.py'
    listed.write_text(config.read_text().replace(
        'test_evaluator = val_evaluator',
        "test_evaluator = [val_evaluator, dict(val_evaluator, prefix='again', tiers=())]"))
    out = tmp_path / 'dets.json'
    proc = run_tool('test', listed, work_dir / 'epoch_3.pth', '--out', out, '--work-dir', tmp_path / 'wd')
    log = proc.stdout + proc.stderr
    first = re.search(r'coco/AP50: (-?[\d.]+)', log).group(1)
    assert re.search(r'again/AP50: (-?[\d.]+)', log).group(1) == first
    assert isinstance(json.loads(out.read_text()), list)
    assert 'checkpoints:' not in log  # the checkpoint policy is a step of training only


def test_test_tool_folds_batchnorms_and_detects_as_the_unfused_model(trained, tmp_path):
    """Fusion (the default) happens after the checkpoint is loaded and leaves the written detections where
    the unfused model puts them. The tiny model's AP is 0 and its scores fall under the config's
    threshold, so the threshold is dropped and the detections are compared, not AP."""
    config, work_dir, _ = trained
    dets = {}
    for name, extra in (('fused', ()), ('unfused', ('--no-fuse',))):
        out = tmp_path / f'{name}.json'
        proc = run_tool('test', config, work_dir / 'epoch_3.pth', '--work-dir', tmp_path / name, '--out', out,
                        '--cfg-options', 'model.head.test_cfg.score_thr=0.0', *extra)
        assert ('BatchNorms folded' in proc.stdout + proc.stderr) == (name == 'fused')
        dets[name] = json.loads(out.read_text())
    assert len(dets['fused']) > 0 and len(dets['fused']) == len(dets['unfused'])
    # Each fused detection has an unfused twin (same image and class, box within 0.01 px, score within
    # 1e-4); matching by nearest box, so near-equal scores ranked in another order do not matter.
    for fused in dets['fused']:
        twins = [d for d in dets['unfused'] if (d['image_id'], d['category_id']) ==
                 (fused['image_id'], fused['category_id'])]
        twin = min(twins, key=lambda d: max(abs(a - b) for a, b in zip(d['bbox'], fused['bbox'])))
        assert twin['bbox'] == pytest.approx(fused['bbox'], abs=1e-2)
        assert twin['score'] == pytest.approx(fused['score'], abs=1e-4)


def test_unknown_type_lists_registered_names(tiny_config, tmp_path):
    config = tmp_path / 'bad.py'
    config.write_text(tiny_config.read_text().replace("type='MobileNetV2'", "type='NoSuchNet'"))
    proc = run_tool('train', config, '--work-dir', tmp_path / 'wd', check=False)
    assert proc.returncode != 0
    assert "'NoSuchNet' is not registered" in proc.stderr
    assert 'MobileNetV2' in proc.stderr.split("'NoSuchNet' is not registered")[-1]


def test_amp_trains_with_bf16_autocast_on_cpu(tiny_config, tmp_path):
    proc = run_tool('train', tiny_config, '--work-dir', tmp_path, '--amp', '--epochs', '1')
    assert '--epochs: train_cfg.max_epochs: 3 -> 1' in proc.stdout + proc.stderr
    assert (tmp_path / 'epoch_1.pth').exists() and not (tmp_path / 'epoch_2.pth').exists()
    dumped_config = (tmp_path / tiny_config.name).read_text()  # the config as the run used it
    assert "type='AutocastOptimWrapper'" in dumped_config and "dtype='bfloat16'" in dumped_config


def test_autocast_wrapper_runs_forward_in_bf16():
    from det.engine import AutocastOptimWrapper

    model = torch.nn.Linear(4, 2)
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().sum())
    assert model.weight.dtype == torch.float32
