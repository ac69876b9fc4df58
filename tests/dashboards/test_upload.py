"""Uploads become model inputs: a CSV through the data's own encoding, an image resized and scaled."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from audit.errors import AuditInputError
from dashboards import _upload


def test_csv_rows_encode_like_the_dataset(credit_small):
    enc = credit_small.encoding
    raw = credit_small.test.raw[:3]
    import pandas as pd

    frame = pd.DataFrame(enc.display(raw), columns=list(enc.raw_names))  # level names, as a user writes them
    frame["unused"] = 1
    x, shown = _upload.table_inputs(frame.to_csv(index=False).encode(), enc)
    np.testing.assert_allclose(x, credit_small.test.X[:3], rtol=1e-5, atol=1e-6)
    assert list(shown.columns) == list(enc.raw_names)
    with pytest.raises(AuditInputError, match="lacks the model's raw columns"):
        _upload.table_inputs(frame.drop(columns=[enc.raw_names[0]]).to_csv(index=False).encode(), enc)


def test_image_is_resized_scaled_and_inverted():
    pixels = np.zeros((40, 40), np.uint8)
    pixels[:, 20:] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    x = _upload.image_input(buffer.getvalue(), (8, 8, 1), low=0.0, high=16.0)
    assert x.shape == (1, 8, 8, 1) and x.min() == 0.0 and x.max() == 16.0
    assert x[0, :, :3].max() == 0.0 and x[0, :, 5:].min() == 16.0  # left dark, right bright
    inverted = _upload.image_input(buffer.getvalue(), (8, 8, 1), low=0.0, high=16.0, invert=True)
    np.testing.assert_allclose(inverted, 16.0 - x)
    with pytest.raises(AuditInputError, match="not an image"):
        _upload.image_input(b"not a png", (8, 8, 1), low=0.0, high=1.0)
    with pytest.raises(AuditInputError, match="image uploads need"):
        _upload.image_input(buffer.getvalue(), (64,), low=0.0, high=1.0)
