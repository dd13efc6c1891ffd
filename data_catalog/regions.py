"""A dataset filled region by region: the one write path of mapped steps, on any worker.

A ``RegionWriter`` is small and picklable (a storage root, a uri, the region dim, its full
coordinate and the chunk size): the flow process makes it, workers write through it, and the
catalog completes it (:meth:`Catalog.finish <data_catalog.catalog.Catalog.finish>`). It touches
storage only, never the SQLite index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .layout import layout_digest
from .storage import Storage

__all__ = ["RegionWriter"]


@dataclass(frozen=True, eq=False)
class RegionWriter:
    """Regions ``i`` = ``coord[i * chunk : (i + 1) * chunk]`` along ``dim`` of the dataset at ``uri``.

    ``lay_out(piece)`` writes the template once (shaped like ``piece``, full length along ``dim``);
    ``ensure_layout(piece)`` lets whichever piece comes first do that (the others wait and must agree);
    ``write(i, ds_i)`` writes region ``i`` (or several consecutive ones) and then its marker;
    ``missing()`` lists the regions without a marker, so a resumed run redoes only those.
    """

    storage: Storage
    uri: str
    dim: str
    coord: np.ndarray = field(repr=False)
    chunk: int

    @property
    def n_pieces(self) -> int:
        return -(-len(self.coord) // self.chunk)

    def region(self, i: int) -> slice:
        """Positions of region ``i`` along :attr:`dim`."""
        return slice(i * self.chunk, min((i + 1) * self.chunk, len(self.coord)))

    def labels(self, i: int) -> np.ndarray:
        """Coordinate values of region ``i``."""
        return np.asarray(self.coord[self.region(i)])

    def laid_out(self) -> bool:
        return self.storage.template_ready(self.uri)

    def lay_out(self, piece: xr.Dataset) -> None:
        """Write the template (metadata and the variables without :attr:`dim`) from one piece."""
        self.storage.create_template(self.uri, piece, self.dim, self.coord, self.chunk)

    def ensure_layout(self, piece: xr.Dataset, timeout: float = 600.0) -> None:
        """Lay the dataset out from ``piece`` unless it is laid out: the first piece to claim the layout
        does it, the others wait for it (a piece that waits longer than ``timeout`` seconds raises
        TimeoutError). Then ``piece`` must agree with the layout outside :attr:`dim` (ValueError)."""
        laid = self.storage.laid_out_as(self.uri)  # one read: laid out, and by what piece
        if laid is None:
            if self.storage.claim_layout(self.uri):
                self.lay_out(piece)
                return  # laid out from this piece: it agrees
            deadline = time.monotonic() + timeout
            while not self.laid_out():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.uri}: another piece claimed the layout and did not finish it "
                                       f"within {timeout:.0f} s")
                time.sleep(0.02)
            laid = self.storage.layout_of(self.uri)
        if laid != "done" and layout_digest(piece, self.dim) != laid:  # "done": laid out by an older strata
            raise ValueError(f"its attrs, or its variables outside dim {self.dim!r}, differ from those of the "
                             f"piece that laid the dataset out: the pieces of a mapped step must agree on "
                             f"everything outside the mapped dim")

    def reset(self) -> None:
        """Clear a layout left unfinished by a dead run (a laid-out dataset is kept, with its regions)."""
        self.storage.reset_layout(self.uri)

    def write(self, i: int, ds_i: xr.Dataset) -> None:
        """Write region ``i`` (``ds_i`` may span several regions from ``i`` on), then its markers."""
        self.storage.write_region(self.uri, i, ds_i, self.dim, self.chunk)

    def done(self, i: int) -> bool:
        return self.storage.region_done(self.uri, i)

    def missing(self) -> list[int]:
        if not self.laid_out():
            return list(range(self.n_pieces))
        done = self.storage.regions_done(self.uri)
        return [i for i in range(self.n_pieces) if i not in done]
