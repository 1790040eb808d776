"""e-OSVOS (Meinhardt & Leal-Taixé, NeurIPS 2020): meta-learned first-frame fine-tuning of a Mask R-CNN."""
