"""Data: the `Dataset` type, tabular encoding, loading from pandas/CSV, streaming files larger than memory, bundled datasets, and the
one grouping of sensitive attributes."""

from audit.data._bundled import NAMES, load
from audit.data._dataset import Dataset, stratified_split
from audit.data._encoding import Column, TabularEncoding
from audit.data._groups import Grouping, attribute_groups, intersect, make_grouping
from audit.data._stream import Chunk, TabularStream, open_stream
from audit.data._tabular import from_csv, from_pandas, from_parquet

__all__ = ["Chunk", "Column", "Dataset", "Grouping", "NAMES", "TabularEncoding", "TabularStream",
           "attribute_groups", "from_csv", "from_pandas", "from_parquet", "intersect", "load", "make_grouping",
           "open_stream", "stratified_split"]
