# A COCO-format dataset of one's own: DIR/annotations/train.json and val.json, images under DIR/train/
# and DIR/val/ (the json's file_name is relative to them), letterboxed to 320x320. Classes are the json's
# categories; a config on this base may leave the head's num_classes out, it is taken from the data.
# Other layouts (annotations/instances_train2017.json + train2017/, Roboflow's train/_annotations.coco.json)
# are found by `tools/train.py CONFIG --data-root DIR` (docs/own_data.md).
_base_ = ['detection.py']
data_root = 'data/coco'
train_dataloader = dict(dataset=dict(type='CocoDataset', data_root=data_root,
                                                    ann_file='annotations/train.json',
                                                    data_prefix=dict(img='train/')))
val_dataloader = dict(dataset=dict(type='CocoDataset', data_root=data_root,
                                                  ann_file='annotations/val.json',
                                                  data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
