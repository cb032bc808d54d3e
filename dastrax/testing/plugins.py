"""Dummy plugins for tutorials, tests and benchmarks: ``Records`` → ``Peaks`` →
``PeakClassification``. Their option names are part of the API contract (API.md).

``SuperrunPeaks`` and ``SuperrunPeakClassification`` are the same plugins with strax 2's
``allow_superrun = True``: asked for a superrun they compute once over its joined
subruns. ``IntegralMinusMean`` (also allowing) needs the whole run: each peak's waveform
integral minus the mean integral of the run — or of the superrun, over the join."""

from __future__ import annotations

import numpy as np

from dastrax.core.plugin import Option, Plugin

__all__ = [
    "IntegralMinusMean",
    "PeakClassification",
    "Peaks",
    "Records",
    "SuperrunPeakClassification",
    "SuperrunPeaks",
]

_TIME = (("Start time since unix epoch [ns]", "time"), np.int64)
_LENGTH = (("Length of the interval in samples", "length"), np.int32)
_DT = (("Width of one sample [ns]", "dt"), np.int16)
_CHANNEL = (("Channel/PMT number", "channel"), np.int16)


class Records(Plugin):
    """A source of ``n_chunks`` chunks of ``recs_per_chunk`` one-sample records.

    Chunk ``i`` covers ``[time_offset + i*chunk_ns, time_offset + (i+1)*chunk_ns)``; row
    ``j`` of a chunk has ``time = start + (j * chunk_ns) // recs_per_chunk`` and
    ``channel = j``.
    """

    provides = "records"
    depends_on = ()
    data_kind = "records"
    __version__ = "0.0.1"
    dtype = [_TIME, _LENGTH, _DT, _CHANNEL]

    n_chunks = Option(default=10, type=int, help="number of chunks of a run")
    recs_per_chunk = Option(default=10, type=int, help="records in each chunk")
    chunk_ns = Option(default=1, type=int, help="length of a chunk in ns")
    time_offset = Option(
        default=0,
        type=int,
        track=False,
        help="start of the run in ns (untracked: runs differ only by it)",
    )

    def chunk_intervals(self, run_id):
        t0, width = self.time_offset, self.chunk_ns
        return [(t0 + i * width, t0 + (i + 1) * width) for i in range(self.n_chunks)]

    def compute(self, start, end):
        n = self.recs_per_chunk
        out = np.zeros(n, self.dtype)
        j = np.arange(n)
        out["time"] = start + (j * self.chunk_ns) // n
        out["length"] = 1
        out["dt"] = 1
        out["channel"] = j
        return out


class Peaks(Plugin):
    """One peak per record: same ``time``/``length``/``dt``/``channel``, ``area = 1 +
    bonus_area``, and wide ``area_per_channel`` / ``data`` fields (about 1.2 kB a row)."""

    provides = "peaks"
    depends_on = ("records",)
    data_kind = "peaks"
    __version__ = "0.0.1"

    bonus_area = Option(default=0, help="added to every area")
    n_channels = Option(default=100, type=int, help="width of area_per_channel")
    waveform_length = Option(default=200, type=int, help="width of data")

    def infer_dtype(self):
        return [
            _TIME,
            _LENGTH,
            _DT,
            _CHANNEL,
            (("Integral across channels [PE]", "area"), np.float32),
            (("Integral per channel [PE]", "area_per_channel"), np.float32, (self.n_channels,)),
            (("Waveform data in PE/sample", "data"), np.float32, (self.waveform_length,)),
        ]

    def compute(self, records, start, end):
        out = np.zeros(len(records), self.dtype)
        for name in ("time", "length", "dt", "channel"):
            out[name] = records[name]
        out["area"] = 1 + self.bonus_area
        if len(records):
            # deterministic, mildly compressible waveforms (quantised noise plus a pulse)
            rng = np.random.default_rng(int(start) & 0xFFFFFFFF)
            w = self.waveform_length
            pulse = np.exp(-0.5 * ((np.arange(w) - w / 4) / (w / 20 + 1)) ** 2).astype(np.float32)
            noise = np.round(rng.standard_normal((len(records), w), dtype=np.float32) * 4) / 16
            out["data"] = pulse + noise
            out["area_per_channel"][:, : self.n_channels] = (
                np.round(rng.standard_normal((len(records), self.n_channels), dtype=np.float32) * 2)
                / 8
            )
        return out


class PeakClassification(Plugin):
    """The ``type`` of each peak (1 for even channels, 2 for odd)."""

    provides = "peak_classification"
    depends_on = ("peaks",)
    data_kind = "peaks"
    __version__ = "0.0.1"
    dtype = [_TIME, _LENGTH, _DT, (("Classification of the peak", "type"), np.int8)]

    def compute(self, peaks, start, end):
        out = np.zeros(len(peaks), self.dtype)
        for name in ("time", "length", "dt"):
            out[name] = peaks[name]
        out["type"] = 1 + (peaks["channel"] % 2)
        return out


class SuperrunPeaks(Peaks):
    """:class:`Peaks` computed once over a superrun's joined subruns (``allow_superrun``)."""

    allow_superrun = True


class SuperrunPeakClassification(PeakClassification):
    """:class:`PeakClassification` computed over a superrun's join (``allow_superrun``)."""

    allow_superrun = True


class IntegralMinusMean(Plugin):
    """Each peak's waveform integral (``data`` summed, float64) minus the mean integral
    over the whole run — for a superrun, over all its subruns' peaks together.

    A whole-run plugin: ``summarize`` gives each chunk's ``(sum, count)``, ``combine``
    the mean, which ``compute`` then subtracts chunk by chunk. ``n_subruns`` is the number
    of subruns in the superrun's run document (0 for a regular run).
    """

    provides = "integral_minus_mean"
    depends_on = ("peaks",)
    data_kind = "peaks"
    __version__ = "0.0.1"
    allow_superrun = True
    needs_summary = True
    dtype = [
        _TIME,
        _LENGTH,
        _DT,
        (("Waveform integral minus the run's mean [PE]", "integral_minus_mean"), np.float64),
        (("Subruns of the superrun computed over (0: a regular run)", "n_subruns"), np.int32),
    ]

    def summarize(self, peaks, start, end):
        integral = peaks["data"].sum(axis=1, dtype=np.float64)
        return float(integral.sum()), len(peaks)

    def combine(self, partials):
        total = sum(s for s, _n in partials)
        count = sum(n for _s, n in partials)
        return total / count if count else 0.0

    def compute(self, peaks, start, end):
        out = np.zeros(len(peaks), self.dtype)
        for name in ("time", "length", "dt"):
            out[name] = peaks[name]
        out["integral_minus_mean"] = peaks["data"].sum(axis=1, dtype=np.float64) - self.summary
        if self.run_id.startswith("_"):
            out["n_subruns"] = len(self.run_metadata()["sub_run_spec"])
        return out
