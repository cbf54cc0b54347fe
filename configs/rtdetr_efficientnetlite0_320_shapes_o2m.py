# rtdetr_efficientnetlite0_320_shapes.py with H-DETR's hybrid matching (Jia et al., CVPR 2023): in
# training 100 more encoder tokens become one-to-many queries, masked from the 100 one-to-one queries and
# matched to each image's ground truth repeated 4 times; dropped at inference (same model, same speed).
# The numbers: H-DETR pairs 300 one-to-one with 1500 one-to-many queries and 6 repeats on COCO, about 7
# objects an image, so most of its one-to-many queries stay negatives. The shapes images hold 1-12
# objects: with M = Q = 100 (the decoder's extra cost about that of the one-to-one queries; the 320
# input's 400 stride-16 tokens hold the 200 selected) 4 repeats take at most 48 of the 100 as positives,
# so every object always gets its 4 and at least half learn "no object"; 6 repeats would take up to 72.
_base_ = ['rtdetr_efficientnetlite0_320_shapes.py']
model = dict(one_to_many=dict(num_queries=100, repeats=4))
