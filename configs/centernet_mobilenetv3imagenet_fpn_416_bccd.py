# centernet_mobilenetv2imagenet_fpn_416_bccd.py on torchvision's ImageNet MobileNetV3-Large
# ('torchvision://mobilenet_v3_large', _base_/models/pretrained_backbones.py): for users online (the
# weights download on first use), or offline with torchvision's file in torch.hub's cache.
_base_ = ['centernet_mobilenetv2imagenet_fpn_416_bccd.py']
model = dict(backbone=dict(_base_.mobilenet_v3_large, _delete_=True, out_indices=(1, 2, 3, 4)))
