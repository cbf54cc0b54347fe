# The built-in generated shapes dataset (5 classes, 320x320), created under data/shapes on first use.
# Training batch 8: on 2 CPU cores a sample costs less at batch 8 than at 16, and a time budget buys
# twice the steps. No loader process on a 2-core CPU, where one competes with the compute threads
# (docs/cpu_speed.md), up to 4 with a GPU or more cores; set it here or with
# --cfg-options train_dataloader.num_workers=N to choose.
_base_ = ['detection.py']
data_root = 'data/shapes'
train_dataloader = dict(dataset=dict(type='ShapesDataset', data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type='ShapesDataset', data_root=data_root, split='val'))
test_dataloader = val_dataloader
