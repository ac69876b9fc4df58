"""Data: the `Dataset` type, tabular encoding, loading from pandas/CSV, bundled datasets."""

from audit.data._bundled import NAMES, load
from audit.data._dataset import Dataset, stratified_split
from audit.data._encoding import Column, TabularEncoding
from audit.data._tabular import from_csv, from_pandas

__all__ = ["Column", "Dataset", "NAMES", "TabularEncoding", "from_csv", "from_pandas", "load",
           "stratified_split"]
