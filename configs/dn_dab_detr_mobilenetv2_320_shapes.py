# DN-DAB-DETR on the shapes data: detr_mobilenetv2_320_shapes.py with two published speed-ups switched on:
# - anchor queries (DAB-DETR, Liu et al. ICLR 2022): each of the 100 queries is a learned box whose sine
#   embedding is its positional query; every decoder layer predicts a correction of the previous
#   layer's box (layer-by-layer refinement);
# - denoising queries (DN-DETR, Li et al. CVPR 2022): 5 groups of noised ground-truth boxes (centre
#   moved by up to 0.4 * size / 2, size scaled by 0.6-1.4) and labels (20% replaced) are extra decoder
#   queries that reconstruct the originals, masked from the matching queries and from each other
#   (DenoisingQueries' defaults).
_base_ = ['detr_mobilenetv2_320_shapes.py']
model = dict(query_type='anchor', denoising=dict())
