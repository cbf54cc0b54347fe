# ThunderNet with SNet146 (_base_/models/thundernet.py) on BCCD blood-cell images (RBC, WBC, Platelets)
# letterboxed to 416x416, with the paper's anchors. Trained from scratch in fp32 on trainval, tested on test.
#   python tools/analysis/complexity.py configs/thundernet_snet146_416_bccd.py --shape 416 416
_base_ = ['_base_/default_runtime.py', '_base_/models/thundernet.py', '_base_/datasets/bccd_416.py',
          '_base_/schedules/adamw_cosine_16e.py']
model = dict(data_preprocessor=dict(channels_last=False), roi_head=dict(num_classes=3))
