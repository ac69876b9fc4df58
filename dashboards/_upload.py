"""Turn an uploaded file into model inputs: a CSV of raw columns, or an image resized to the model's.

Pure functions (no Streamlit), so the conversions are tested on their own; every problem is one
AuditInputError that says what to upload instead.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from audit.errors import AuditInputError


def table_inputs(content: bytes, encoding, *, max_rows: int = 1000) -> tuple[np.ndarray, pd.DataFrame]:
    """(model inputs, the raw rows) from a CSV with the data's raw columns (extra columns ignored)."""
    try:
        frame = pd.read_csv(io.BytesIO(content), nrows=max_rows)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise AuditInputError(f"the upload is not a readable CSV file: {exc}") from None
    missing = [c for c in encoding.raw_names if c not in frame.columns]
    if missing:
        raise AuditInputError(f"the CSV lacks the model's raw columns {missing}; it needs {list(encoding.raw_names)}.")
    if frame.empty:
        raise AuditInputError("the CSV has a header but no rows.")
    raw = encoding.raw_matrix(frame[list(encoding.raw_names)])
    return np.asarray(encoding.encode(raw), np.float32), frame[list(encoding.raw_names)]


def image_input(content: bytes, input_shape: tuple[int, ...], *, low: float, high: float,
                invert: bool = False) -> np.ndarray:
    """One (1, *input_shape) input from a PNG/JPEG: grey (or RGB for 3-channel models), resized to the
    model's height and width, scaled to the training data's range [low, high]; `invert` for dark
    strokes on a light background when the model saw light on dark."""
    from PIL import Image, UnidentifiedImageError

    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise AuditInputError(f"image uploads need a model that takes (height, width, 1 or 3) inputs; this one "
                              f"takes {input_shape}.")
    height, width, channels = input_shape
    try:
        image = Image.open(io.BytesIO(content))
        image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError) as exc:
        raise AuditInputError(f"the upload is not an image PIL can read (PNG or JPEG): {exc}") from None
    pixels = np.asarray(image, np.float32) / 255.0
    if invert:
        pixels = 1.0 - pixels
    return (low + pixels * (high - low)).reshape(1, height, width, channels).astype(np.float32)
