"""scikit-learn's 8x8 digits (shipped inside the package, nothing downloaded) and the fixed
train / held-out split the committed model was trained and measured on."""

from pathlib import Path

SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.25
# The digits CNN (joynet-quantized-model/1) and its training manifest, shipped with the package
# (circuits/digits_cnn/ in a checkout links to them; circuits/digits_cnn/train.py writes them).
CNN_MODEL_DIR = Path(__file__).resolve().with_name("digits_cnn_model")


def load_split():
    """(train_pixels, test_pixels, train_labels, test_labels): integer pixels 0..16, stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = digits.data.astype(int)
    return train_test_split(
        pixels, digits.target, test_size=HELD_OUT_FRACTION, random_state=SPLIT_SEED, stratify=digits.target
    )


def accuracy(model, pixels, labels) -> float:
    """Share of images the quantized model (integer forward pass) classifies correctly."""
    hits = sum(
        model.forward(image).label == label for image, label in zip(pixels.tolist(), labels.tolist(), strict=False)
    )
    return hits / len(labels)
