"""Images: the preprocessing contract shared by training and inference, header checks, augmentation, drawing, contact sheets."""
