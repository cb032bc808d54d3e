"""strax's test plugins (``strax.testutils`` and those defined in strax's test files),
written as a strax user writes plugins: ``depends_on`` as a string, ``compute(self,
records)`` without ``start, end``, options read through ``self.config[...]``, and
``PeakClassification`` providing two data types. What differs is spelt as dastrax
spells it: options are ``dastrax.Option`` class attributes (strax: ``takes_config``),
and source plugins name their chunks' intervals in ``chunk_intervals`` (strax: a
``Chunk`` returned from ``compute`` and ``is_ready``)."""

from __future__ import annotations

import numpy as np

import dastrax
from dastrax import Option

RUN_ID = "0"

TIME_DT = [
    (("Start time since unix epoch [ns]", "time"), np.int64),
    (("Length of the interval in samples", "length"), np.int32),
    (("Width of one sample [ns]", "dt"), np.int16),
]
TIME_FIELDS = [
    ("time", np.int64, "Start time since unix epoch [ns]"),  # strax's triples
    ("endtime", np.int64, "Exclusive end time since unix epoch [ns]"),
]
RECORD_DTYPE = [*TIME_DT, (("Channel/PMT number", "channel"), np.int16)]
PEAK_DTYPE = [
    *TIME_DT,
    (("Channel/PMT number", "channel"), np.int16),
    (("Integral across channels [PE]", "area"), np.float32),
    (("Waveform data in PE/sample", "data"), np.float32, (200,)),
]


class Records(dastrax.Plugin):
    """strax.testutils.Records: ``recs_per_chunk`` one-sample records at the start of
    each of ``n_chunks`` 1 ns chunks from ``secret_time_offset``."""

    provides = "records"
    depends_on = ()
    dtype = RECORD_DTYPE

    crash = Option(default=False, type=bool)
    dummy_tracked_option = Option(default=42, type=int)
    secret_time_offset = Option(default=0, type=int, track=False)
    n_chunks = Option(default=10, type=int, track=False)
    recs_per_chunk = Option(default=10, type=int, track=False)

    def chunk_intervals(self, run_id):
        t0 = self.config["secret_time_offset"]
        return [(t0 + i, t0 + i + 1) for i in range(self.config["n_chunks"])]

    def compute(self, chunk_i):
        if self.config["crash"]:
            raise RuntimeError("CRASH!!!!")
        r = np.zeros(self.config["recs_per_chunk"], self.dtype)
        r["time"] = chunk_i + self.config["secret_time_offset"]
        r["length"] = r["dt"] = 1
        r["channel"] = np.arange(len(r))
        return r


class Peaks(dastrax.Plugin):
    """strax.testutils.Peaks: one peak a record, ``area = base_area + bonus_area``."""

    provides = "peaks"
    data_kind = "peaks"
    depends_on = ("records",)
    dtype = PEAK_DTYPE
    allow_superrun = True

    base_area = Option(default=0, type=int)
    give_wrong_dtype = Option(default=False, type=bool)
    bonus_area = Option(default=0, default_per_run=[("0", 0), ("1", 1)])

    def compute(self, records):
        if self.config["give_wrong_dtype"]:
            return np.zeros(5, [("a", np.int64), ("b", np.float64)])
        p = np.zeros(len(records), self.dtype)
        p["time"] = records["time"]
        p["length"] = p["dt"] = 1
        p["channel"] = records["channel"]
        p["area"] = self.config["base_area"] + self.config["bonus_area"]
        return p


class PeakClassification(dastrax.Plugin):
    """strax.testutils.PeakClassification: two outputs of two data kinds."""

    provides = ("peak_classification", "lone_hits")
    data_kind = dict(peak_classification="peaks", lone_hits="lone_hits")
    depends_on = ("peaks",)
    allow_superrun = True

    def infer_dtype(self):
        return {
            "peak_classification": [
                *TIME_FIELDS,
                ("type", np.int8, "Classification of the peak."),
            ],
            "lone_hits": TIME_FIELDS,
        }

    def compute(self, peaks):
        p = np.zeros(len(peaks), self.dtype["peak_classification"])
        p["time"] = peaks["time"]
        p["endtime"] = dastrax.endtime(peaks)
        lh = np.zeros(len(peaks), self.dtype["lone_hits"])
        lh["time"] = peaks["time"]
        lh["endtime"] = dastrax.endtime(peaks)
        return dict(peak_classification=p, lone_hits=lh)


class RecordsExtension(dastrax.Plugin):
    """tests/test_superruns.py's RecordsExtension."""

    depends_on = "records"
    provides = "records_extension"
    dtype = [*TIME_DT, (("Some additional field", "additional_field"), np.int16)]
    allow_superrun = True
    some_additional_value = Option(default=42, help="Some additional value for merger")

    def compute(self, records):
        res = np.zeros(len(records), self.dtype)
        res["time"] = records["time"]
        res["length"] = records["length"]
        res["dt"] = records["dt"]
        res["additional_field"] = self.config["some_additional_value"]
        return res


class PeaksExtension(dastrax.Plugin):
    """tests/test_superruns.py's PeaksExtension (strax's ``save_when = EXPLICIT`` has no
    dastrax counterpart: what dastrax makes, it stores)."""

    depends_on = "peaks"
    provides = "peaks_extension"
    dtype = [*TIME_DT, (("Some additional field", "some_additional_peak_field"), np.int16)]
    allow_superrun = True
    some_additional_peak_value = Option(default=42, help="Some additional value for merger")

    def compute(self, peaks):
        res = np.zeros(len(peaks), self.dtype)
        res["time"] = peaks["time"]
        res["length"] = peaks["length"]
        res["dt"] = peaks["dt"]
        res["some_additional_peak_field"] = self.config["some_additional_peak_value"]
        return res


class PeaksExtensionCopy(PeaksExtension):
    depends_on = "peaks_extension"
    provides = "peaks_extension_copy"

    def compute(self, peaks):
        return peaks


class Ranges(dastrax.Plugin):
    """tests/test_superruns.py's Ranges: ``n_chunks`` chunks of ``chunks_length``
    consecutive rows whose ``data`` is their time."""

    provides = "ranges"
    depends_on = ()
    dtype = [(("Numbers in order", "data"), np.int32), *TIME_DT]
    secret_time_offset = Option(default=0, type=int, track=False)
    n_chunks = Option(default=10, type=int, track=False)
    chunks_length = Option(default=1, type=int)

    def chunk_intervals(self, run_id):
        t0, n = self.config["secret_time_offset"], self.config["chunks_length"]
        return [(t0 + i, t0 + i + n) for i in range(self.config["n_chunks"])]

    def compute(self, chunk_i):
        length = self.config["chunks_length"]
        r = np.zeros(length, self.dtype)
        r["time"] = chunk_i + self.config["secret_time_offset"] + np.arange(length)
        r["length"] = r["dt"] = 1
        r["data"] = r["time"]
        return r


class Sum(dastrax.Plugin):
    """tests/test_superruns.py's Sum, an ``ExhaustPlugin`` in strax (all of a run in one
    compute): here a plugin with ``needs_summary``, whose summary is every ``data`` value
    of the run, so that row ``i`` sums ``data[i] + data[::-1][i]`` over the whole run."""

    provides = "sum"
    depends_on = "ranges"
    dtype = [(("Sum of numbers", "sum"), np.int32), *TIME_DT]
    allow_superrun = True
    needs_summary = True

    def summarize(self, start, end, ranges):
        return np.asarray(ranges["data"])

    def combine(self, partials):
        return np.concatenate(partials) if partials else np.zeros(0, np.int32)

    def compute(self, ranges):
        whole = self.summary
        position = np.searchsorted(whole, ranges["data"])
        s = np.zeros(len(ranges), self.dtype)
        s["time"] = ranges["time"]
        s["length"] = ranges["length"]
        s["dt"] = ranges["dt"]
        s["sum"] = ranges["data"] + whole[::-1][position]
        return s


class EvenOddSplit(dastrax.Plugin):
    """tests/test_multi_output.py's EvenOddSplit: three outputs of three data kinds,
    one of them returned as a dict of fields."""

    depends_on = "records"
    provides = ("even_recs", "odd_recs", "rec_count")
    data_kind = dict(even_recs="even_recs", odd_recs="odd_recs", rec_count="chunk_bonus_data")
    dtype = dict(
        even_recs=RECORD_DTYPE,
        odd_recs=RECORD_DTYPE,
        rec_count=[
            ("time", np.int64, "Time of first record in chunk"),
            ("endtime", np.int64, "Endtime of last record in chunk"),
            ("n_records", np.int32, "Number of records"),
        ],
    )

    def compute(self, records):
        mask = records["time"] % 2 == 0
        return dict(
            even_recs=records[mask],
            odd_recs=records[~mask],
            rec_count=dict(
                n_records=[len(records)],
                time=records[0]["time"],
                endtime=dastrax.endtime(records[-1:])[0],
            ),
        )


class ZipRecords(dastrax.Plugin):
    provides = "zipped_records"
    depends_on = ("even_recs", "odd_recs")
    dtype = RECORD_DTYPE

    def compute(self, even_recs, odd_recs):
        both = np.concatenate((even_recs, odd_recs))
        return both[np.argsort(both["time"], kind="stable")]


class EvenRecsClassified(dastrax.Plugin):
    """Of the data kind of ``even_recs`` (strax's default: the first dependency's)."""

    provides = "even_recs_classified"
    depends_on = "even_recs"

    def infer_dtype(self):
        return [*TIME_DT, (("dummy classification", "classifier"), np.int8)]

    def compute(self, even_recs):
        res = np.ones(len(even_recs), self.dtype)
        res["time"] = even_recs["time"]
        res["dt"] = even_recs["dt"]
        res["length"] = even_recs["length"]
        return res


class ZipRecordsAdditionalDependency(dastrax.Plugin):
    provides = "zipped_records_classified"
    depends_on = ("even_recs", "even_recs_classified", "odd_recs")
    dtype = RECORD_DTYPE

    def compute(self, even_recs, odd_recs):
        res = np.zeros(len(even_recs) + len(odd_recs), self.dtype)
        for name in ("dt", "time", "length", "channel"):
            res[name][: len(even_recs)] = even_recs[name]
            res[name][len(even_recs) :] = odd_recs[name]
        return res[np.argsort(res["time"], kind="stable")]


class FunnyPeaks(dastrax.Plugin):
    provides = "peaks"
    depends_on = "even_recs"
    dtype = PEAK_DTYPE

    def compute(self, even_recs):
        p = np.zeros(len(even_recs), self.dtype)
        p["time"] = even_recs["time"]
        p["length"] = p["dt"] = 1
        return p
