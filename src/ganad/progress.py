"""Progress bars for the long loops (scoring, latent search, benchmark cells).

``progress(total, desc, enabled)`` returns a tqdm bar on stderr counting
images (unit "img", so the rate reads img/s), or, when ``enabled`` is false,
an object with the same ``update`` / ``set_postfix`` / ``close`` methods that
does nothing.  Both work as context managers::

    with progress(len(x), "anogan score", self.verbose) as bar:
        for batch in batches:
            ...
            bar.update(len(batch))

Training loops have their own per-epoch bars (:func:`ganad.train.fit_loop`).
"""

from __future__ import annotations

from typing import Any


class NoProgress:
    """What ``progress(..., enabled=False)`` returns: accepts the calls, shows nothing."""

    n = 0

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(total: int | None, desc: str, enabled: bool = True, *, unit: str = "img", leave: bool = False) -> Any:
    """A tqdm bar over ``total`` items (stderr) when ``enabled``, else a :class:`NoProgress`.

    ``leave=False`` (the default) clears the bar when it is closed, so bars of
    loops nested in other loops (calibration scoring inside ``fit``, scoring
    inside a benchmark cell) do not pile up.
    """
    if not enabled:
        return NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)
