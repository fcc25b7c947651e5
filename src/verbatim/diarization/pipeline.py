"""Speaker diarization: who spoke when, offline on CPU, without torch.

Pipeline (``method="auto"`` on a mono mix, or on a stereo file that is not one speaker per
channel):

1. Speech regions from Silero VAD (32 ms probabilities, hysteresis, short gaps closed).
2. Windows of 1.5 s with a 0.75 s hop over each region (a region shorter than a window is one
   window); 80-dim Kaldi fbank, mean-normalised per window; CAM++ embeddings (L2-normalised).
3. Agglomerative clustering (average linkage, cosine distance) cut at a threshold, or at the
   requested count; ``min_speakers``/``max_speakers`` clamp the count. One speaker is a valid
   answer. Then: windows are re-assigned to the nearest centroid, clusters whose centroids are
   nearly the same voice are merged, and clusters of a single stray window are absorbed.
4. Each stretch of a region goes to the window whose centre is nearest; turns are the runs of
   one label. Labels are numbered by first appearance: SPEAKER_1, SPEAKER_2, ...

``method="channels"`` labels each channel on its own (VAD per channel, a channel's speech counts
only where it is not 15 dB below the loudest channel, which removes cross-talk bleed), so the
answer is exact for one speaker per channel. ``auto`` picks it when
:func:`is_stereo_per_channel` says so. Decision record: docs/decisions/0014-diarization.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from verbatim.diarization.model import (
    EMBEDDING_DIM,
    FRAME_SHIFT,
    SAMPLE_RATE,
    VAD_WINDOW,
    FloatArray,
    fbank,
    get_embedder,
    speech_probabilities,
)

Method = Literal["auto", "channels"]
MethodUsed = Literal["clustering", "channels"]

MAX_CHANNELS = 8
MAX_SPEAKERS = 20

# Speech regions (Silero VAD).
VAD_ON = 0.5
VAD_OFF = 0.35
MIN_GAP_S = 0.2  # shorter silences inside speech are closed
MIN_SPEECH_S = 0.2  # shorter bursts are dropped
PAD_S = 0.03
# Embedding windows.
WINDOW_S = 1.5
# Windows are placed every STRIDE_S (half the speech is embedded), then the gap between two
# neighbours with different speakers gets its own window (refinement), so boundaries sit within
# ~0.75 s as with a 0.75 s hop, for about a third of the CAM++ cost. CAM++ is ~2.6 GFLOP per
# 1.5 s window: the dense 0.75 s hop cost ~25 % of tiny.en's transcription time.
STRIDE_S = 3.0
REFINE_ROUNDS = 2
MIN_WINDOW_S = 0.4  # a region shorter than this is not embedded; it takes its neighbour's label
RELIABLE_WINDOW_S = 1.0  # shorter windows are assigned to the clusters, not clustered
BATCH = 32
# Clustering (cosine distance = 1 - cosine similarity of L2-normalised CAM++ embeddings).
DISTANCE_THRESHOLD = (
    0.5  # average-linkage cut (cosine distance): farther clusters are different voices
)
MERGE_SIMILARITY = 0.8  # centroids closer than this are the same voice (3D-Speaker mer_cos)
MINOR_CLUSTER = 4  # at most this many windows (and 2 % of them): absorbed by the nearest
MAX_CLUSTERED_WINDOWS = 2000  # above this, cluster an even subsample and assign the rest
# Stereo one-speaker-per-channel detection.
DOMINANCE_DB = 10.0
BLEED_DB = 15.0


class DiarizationInputError(ValueError):
    """The audio or the options cannot be diarized; ``code`` is stable for API errors."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Turn:
    start: float  # seconds
    end: float
    label: str  # "SPEAKER_1", "SPEAKER_2", ...


@dataclass(slots=True)
class DiarizationResult:
    turns: list[Turn]
    centroids: dict[str, npt.NDArray[np.float32]]  # label -> (192,), unit norm
    method_used: MethodUsed
    speech_seconds: float = 0.0
    windows: int = 0  # embedding windows computed
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """Labels in order of first appearance."""
        seen: dict[str, None] = {}
        for turn in self.turns:
            seen.setdefault(turn.label)
        return list(seen)

    @property
    def num_speakers(self) -> int:
        return len(self.labels)


def label_for(index: int) -> str:
    return f"SPEAKER_{index + 1}"


# --------------------------------------------------------------------------- validation


def _check_audio(audio: object) -> FloatArray:
    if not isinstance(audio, np.ndarray):
        raise DiarizationInputError("audio_not_array", "audio must be a numpy array")
    if audio.dtype != np.float32:
        raise DiarizationInputError(
            "audio_bad_dtype", f"audio must be float32 samples in [-1, 1], got {audio.dtype}"
        )
    if audio.ndim != 2 or not 1 <= audio.shape[0] <= MAX_CHANNELS:
        raise DiarizationInputError(
            "audio_bad_shape",
            f"audio must be shaped (channels, samples) with 1-{MAX_CHANNELS} channels, "
            f"got {audio.shape}",
        )
    if not np.isfinite(audio).all():
        raise DiarizationInputError("audio_not_finite", "audio contains NaN or infinity")
    return audio


def _check_counts(
    num_speakers: int | None, min_speakers: int | None, max_speakers: int | None
) -> tuple[int, int]:
    for name, value in (
        ("num_speakers", num_speakers),
        ("min_speakers", min_speakers),
        ("max_speakers", max_speakers),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SPEAKERS
        ):
            raise DiarizationInputError(
                "speaker_count_invalid", f"{name} must be an integer from 1 to {MAX_SPEAKERS}"
            )
    if num_speakers is not None:
        if (min_speakers is not None and num_speakers < min_speakers) or (
            max_speakers is not None and num_speakers > max_speakers
        ):
            raise DiarizationInputError(
                "speaker_count_invalid", "num_speakers is outside min_speakers..max_speakers"
            )
        return num_speakers, num_speakers
    lo = min_speakers or 1
    hi = max_speakers or MAX_SPEAKERS
    if lo > hi:
        raise DiarizationInputError(
            "speaker_count_invalid", "min_speakers is greater than max_speakers"
        )
    return lo, hi


# --------------------------------------------------------------------------- speech regions


def speech_regions(
    probs: FloatArray, *, n_samples: int, allowed: npt.NDArray[np.bool_] | None = None
) -> list[tuple[int, int]]:
    """Hysteresis over VAD probabilities -> [(start_sample, end_sample)], gaps closed, padded."""
    if probs.size == 0:
        return []
    active = np.zeros(probs.shape[0], dtype=bool)
    on = False
    for i, p in enumerate(probs):
        on = p >= VAD_OFF if on else p >= VAD_ON
        active[i] = on
    if allowed is not None:
        active &= allowed[: active.shape[0]]
    regions: list[list[int]] = []
    idx = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
    for start_w, end_w in zip(idx[::2], idx[1::2], strict=True):
        start, end = int(start_w) * VAD_WINDOW, int(end_w) * VAD_WINDOW
        if regions and start - regions[-1][1] < MIN_GAP_S * SAMPLE_RATE:
            regions[-1][1] = end
        else:
            regions.append([start, end])
    pad = int(PAD_S * SAMPLE_RATE)
    out: list[tuple[int, int]] = []
    for start, end in regions:
        if end - start < MIN_SPEECH_S * SAMPLE_RATE:
            continue
        s, e = max(0, start - pad), min(n_samples, end + pad)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


# --------------------------------------------------------------------------- embeddings


@dataclass(slots=True)
class _Window:
    region: int
    start: int  # samples
    end: int

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2


def _windows(regions: Sequence[tuple[int, int]]) -> list[_Window]:
    """Embedding windows over the regions: 1.5 s long, one every STRIDE_S (sparse; see
    :func:`_refine` for where a change of speaker sits between two of them)."""
    win, stride = int(WINDOW_S * SAMPLE_RATE), int(STRIDE_S * SAMPLE_RATE)
    out: list[_Window] = []
    for r, (start, end) in enumerate(regions):
        length = end - start
        if length < MIN_WINDOW_S * SAMPLE_RATE:
            continue
        if length <= win:
            out.append(_Window(r, start, end))
            continue
        n = math.ceil((length - win) / stride) + 1
        step = (length - win) / (n - 1) if n > 1 else 0
        for k in range(n):
            s = start + round(k * step) if n > 1 else start + (length - win) // 2
            out.append(_Window(r, s, s + win))
    return out


def _embed_windows(
    samples: FloatArray, windows: Sequence[_Window], threads: int | None
) -> FloatArray:
    """CAM++ embeddings of each window, from one fbank pass over the covered span."""
    if not windows:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    embedder = get_embedder(threads)
    out = np.zeros((len(windows), EMBEDDING_DIM), dtype=np.float32)
    # Fbank per region (windows never cross regions), frames indexed from the region start.
    by_region: dict[int, list[int]] = {}
    for i, w in enumerate(windows):
        by_region.setdefault(w.region, []).append(i)
    pending: dict[int, list[tuple[int, FloatArray]]] = {}
    for members in by_region.values():
        r_start = min(windows[i].start for i in members)
        r_end = max(windows[i].end for i in members)
        feats = fbank(samples[r_start:r_end])
        for i in members:
            w = windows[i]
            a = (w.start - r_start) // FRAME_SHIFT
            n = max(1, (w.end - w.start - 400) // FRAME_SHIFT + 1)
            chunk = feats[a : a + n]
            if chunk.shape[0] == 0:
                continue
            chunk = chunk - chunk.mean(axis=0, keepdims=True)
            pending.setdefault(chunk.shape[0], []).append((i, chunk))
    for group in pending.values():
        for b in range(0, len(group), BATCH):
            part = group[b : b + BATCH]
            batch = np.stack([c for _, c in part]).astype(np.float32)
            emb = embedder.embed(batch)
            for (i, _), e in zip(part, emb, strict=True):
                out[i] = e
    return out


def _normalise(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (v / max(float(np.linalg.norm(v)), 1e-8)).astype(np.float32)


# --------------------------------------------------------------------------- clustering


def _centroids(emb: FloatArray, labels: npt.NDArray[np.int64]) -> FloatArray:
    k = int(labels.max()) + 1 if labels.size else 0
    cents = np.zeros((k, emb.shape[1]), dtype=np.float32)
    for c in range(k):
        members = emb[labels == c]
        if members.shape[0]:
            cents[c] = _normalise(members.mean(axis=0))
    return cents


def _compact(labels: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.astype(np.int64)


def cluster(
    emb: FloatArray, *, lo: int = 1, hi: int = MAX_SPEAKERS, fixed: bool = False
) -> npt.NDArray[np.int64]:
    """Cluster unit embeddings -> labels 0..k-1 with lo <= k <= hi (k <= number of windows)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = emb.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    lo, hi = min(lo, n), min(hi, n)
    # Bounded memory: average linkage needs n^2/2 distances, so cluster an even subsample.
    if n > MAX_CLUSTERED_WINDOWS:
        pick = np.linspace(0, n - 1, MAX_CLUSTERED_WINDOWS).round().astype(np.int64)
        sample = emb[pick]
    else:
        pick = np.arange(n)
        sample = emb
    z = linkage(sample.astype(np.float64), method="average", metric="cosine")
    if fixed:
        sub = fcluster(z, t=lo, criterion="maxclust")
    else:
        sub = fcluster(z, t=DISTANCE_THRESHOLD, criterion="distance")
        k = len(np.unique(sub))
        if k < lo or k > hi:
            sub = fcluster(z, t=lo if k < lo else hi, criterion="maxclust")
    sub_labels = _compact(np.asarray(sub, dtype=np.int64))
    cents = _centroids(sample, sub_labels)
    labels = _compact(np.argmax(emb @ cents.T, axis=1).astype(np.int64))
    if n <= MAX_CLUSTERED_WINDOWS:
        labels = sub_labels
    # Re-assign every window to its nearest centroid (AHC's average linkage leaves some windows
    # with a cluster whose mean is farther than another's).
    for _ in range(2):
        cents = _centroids(emb, labels)
        new = _compact(np.argmax(emb @ cents.T, axis=1).astype(np.int64))
        if int(new.max()) + 1 < lo or np.array_equal(new, labels):  # keep the requested count
            break
        labels = new
    if not fixed:
        labels = _merge_close(emb, labels, lo)
        labels = _absorb_strays(emb, labels, lo)
    return labels


def _merge_close(emb: FloatArray, labels: npt.NDArray[np.int64], lo: int) -> npt.NDArray[np.int64]:
    """Merge clusters whose centroids are nearly the same voice, most similar pair first."""
    while True:
        cents = _centroids(emb, labels)
        k = cents.shape[0]
        if k <= max(1, lo):
            return labels
        sim = cents @ cents.T
        np.fill_diagonal(sim, -1.0)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] < MERGE_SIMILARITY:
            return labels
        labels = _compact(np.where(labels == b, a, labels))


def _absorb_strays(
    emb: FloatArray, labels: npt.NDArray[np.int64], lo: int
) -> npt.NDArray[np.int64]:
    """A cluster of a few windows among many is an outlier (cough, overlap), not a speaker."""
    n = labels.shape[0]
    if n < 8:
        return labels
    # As 3D-Speaker's filter_minor_cluster (4 windows), scaled down for short files.
    minor = max(1, min(MINOR_CLUSTER, round(0.02 * n)))
    while True:
        counts = np.bincount(labels)
        k = counts.shape[0]
        small = int(np.argmin(counts))
        if k <= max(1, lo) or counts[small] > minor:
            return labels
        cents = _centroids(emb, labels)
        sims = cents @ emb[labels == small][0]
        sims[small] = -np.inf
        labels = _compact(np.where(labels == small, int(np.argmax(sims)), labels))


def _refine(
    samples: FloatArray,
    regions: Sequence[tuple[int, int]],
    windows: list[_Window],
    emb: FloatArray,
    labels: npt.NDArray[np.int64],
    cents: FloatArray,
    threads: int | None,
) -> tuple[list[_Window], FloatArray, npt.NDArray[np.int64]]:
    """Where two neighbouring windows of a region disagree, embed the gap between them and give
    it the nearest centroid; twice, so a change sits within ~0.4 s of a window boundary."""
    win = int(WINDOW_S * SAMPLE_RATE)
    for _ in range(REFINE_ROUNDS):
        order = sorted(range(len(windows)), key=lambda i: (windows[i].region, windows[i].start))
        extra: list[_Window] = []
        for a, b in itertools.pairwise(order):
            wa, wb = windows[a], windows[b]
            if wa.region != wb.region or labels[a] == labels[b]:
                continue
            if wb.centre - wa.centre < 0.6 * win:
                continue
            mid = int((wa.centre + wb.centre) / 2)
            r_start, r_end = regions[wa.region]
            s = max(r_start, min(mid - win // 2, r_end - win))
            extra.append(_Window(wa.region, s, min(r_end, s + win)))
        if not extra:
            break
        new = _embed_windows(samples, extra, threads)
        windows = windows + extra
        emb = np.concatenate([emb, new])
        labels = np.concatenate([labels, np.argmax(new @ cents.T, axis=1).astype(np.int64)])
    return windows, emb, labels


# --------------------------------------------------------------------------- turns


def _turns_from_windows(
    regions: Sequence[tuple[int, int]],
    windows: Sequence[_Window],
    labels: npt.NDArray[np.int64],
) -> list[tuple[int, int, int]]:
    """(start_sample, end_sample, cluster) pieces covering every region."""
    pieces: list[tuple[int, int, int]] = []
    by_region: dict[int, list[int]] = {}
    for i, w in enumerate(windows):
        by_region.setdefault(w.region, []).append(i)
    centres = np.array([w.centre for w in windows]) if windows else np.zeros(0)
    for r, (start, end) in enumerate(regions):
        members = by_region.get(r)
        if not members:
            # Too short to embed: the label of the nearest window in time.
            mid = (start + end) / 2
            nearest = int(np.argmin(np.abs(centres - mid)))
            pieces.append((start, end, int(labels[nearest])))
            continue
        members.sort(key=lambda i: windows[i].centre)
        cut = start
        for j, i in enumerate(members):
            if j + 1 < len(members):
                nxt = int((windows[i].centre + windows[members[j + 1]].centre) / 2)
            else:
                nxt = end
            if nxt > cut:
                pieces.append((cut, nxt, int(labels[i])))
            cut = max(cut, nxt)
    # Join touching pieces of one label.
    merged: list[tuple[int, int, int]] = []
    for s, e, c in pieces:
        if merged and merged[-1][2] == c and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], e, c)
        else:
            merged.append((s, e, c))
    return merged


def _to_result(
    pieces: list[tuple[int, int, int]],
    cluster_centroids: dict[int, npt.NDArray[np.float32]],
    method: MethodUsed,
    *,
    keep_ids: bool = False,
) -> DiarizationResult:
    order: dict[int, str] = {}
    if keep_ids:
        order = {c: label_for(c) for c in sorted({c for _, _, c in pieces})}
    else:
        for _, _, c in pieces:
            if c not in order:
                order[c] = label_for(len(order))
    turns = [
        Turn(round(s / SAMPLE_RATE, 3), round(e / SAMPLE_RATE, 3), order[c]) for s, e, c in pieces
    ]
    centroids = {order[c]: v for c, v in cluster_centroids.items() if c in order}
    speech = sum(e - s for s, e, _ in pieces) / SAMPLE_RATE
    return DiarizationResult(turns, centroids, method, speech_seconds=round(speech, 3))


# --------------------------------------------------------------------------- stereo


def _frame_energy_db(x: FloatArray, frame: int = VAD_WINDOW) -> FloatArray:
    n = x.shape[-1] // frame
    if n == 0:
        return np.zeros((*x.shape[:-1], 0), dtype=np.float32)
    frames = x[..., : n * frame].reshape(*x.shape[:-1], n, frame).astype(np.float64)
    power = (frames**2).mean(axis=-1)
    db: FloatArray = (10 * np.log10(power + 1e-10)).astype(np.float32)
    return db


def is_stereo_per_channel(audio: FloatArray) -> bool:
    """True for a two-channel recording with one speaker per channel (a call, per-track podcast).

    Both must hold: the channels are nearly uncorrelated (a mono source panned or duplicated
    gives |r| near 1), and where there is sound, one channel is at least 10 dB louder than the
    other in most frames, with each channel leading a fair share of them.
    """
    audio = _check_audio(audio)
    if audio.shape[0] != 2 or audio.shape[1] < SAMPLE_RATE:
        return False
    left, right = audio[0].astype(np.float64), audio[1].astype(np.float64)
    sl, sr = float(left.std()), float(right.std())
    if sl < 1e-5 or sr < 1e-5:
        return False
    corr = float(np.mean((left - left.mean()) * (right - right.mean())) / (sl * sr))
    if abs(corr) > 0.3:
        return False
    db = _frame_energy_db(audio)
    loudest = db.max(axis=0)
    active = loudest > max(float(np.percentile(loudest, 99)) - 35.0, -60.0)
    if active.sum() < SAMPLE_RATE // VAD_WINDOW:  # under ~1 s of sound
        return False
    diff = (db[0] - db[1])[active]
    dominant = np.abs(diff) >= DOMINANCE_DB
    if dominant.mean() < 0.7:
        return False
    left_share = float((diff[dominant] > 0).mean())
    return 0.1 <= left_share <= 0.9


def _diarize_channels(audio: FloatArray, threads: int | None) -> DiarizationResult:
    db = _frame_energy_db(audio)
    loudest = db.max(axis=0) if db.size else db
    pieces: list[tuple[int, int, int]] = []
    centroids: dict[int, npt.NDArray[np.float32]] = {}
    windows_total = 0
    for ch in range(audio.shape[0]):
        samples = np.ascontiguousarray(audio[ch])
        probs = speech_probabilities(samples)
        allowed = np.ones(probs.shape[0], dtype=bool)
        m = min(db.shape[1], probs.shape[0])
        allowed[:m] = db[ch, :m] >= loudest[:m] - BLEED_DB
        regions = speech_regions(probs, n_samples=samples.shape[0], allowed=allowed)
        pieces.extend((s, e, ch) for s, e in regions)
        windows = _windows(regions)
        windows_total += len(windows)
        emb = _embed_windows(samples, windows, threads)
        if emb.shape[0]:
            centroids[ch] = _normalise(emb.mean(axis=0))
        elif regions:
            whole = np.concatenate([samples[s:e] for s, e in regions])
            emb = _embed_windows(whole, [_Window(0, 0, whole.shape[0])], threads)
            centroids[ch] = emb[0]
    pieces.sort()
    result = _to_result(pieces, centroids, "channels", keep_ids=True)
    result.windows = windows_total
    return result


# --------------------------------------------------------------------------- entry point


def diarize(
    audio: FloatArray,
    *,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    method: Method = "auto",
    threads: int | None = None,
) -> DiarizationResult:
    """Who spoke when in ``audio``: float32 samples shaped (channels, samples) at 16 kHz.

    ``method="auto"`` labels each channel alone when the file is two channels with one speaker
    each (:func:`is_stereo_per_channel`), and otherwise clusters voices in the mono mix.
    ``method="channels"`` forces per-channel labels (SPEAKER_n is channel n; needs 2+ channels;
    speaker counts do not apply). Turns are empty when there is no speech. Raises
    :class:`DiarizationInputError` for bad arrays or options.
    """
    import time

    audio = _check_audio(audio)
    lo, hi = _check_counts(num_speakers, min_speakers, max_speakers)
    if method not in ("auto", "channels"):
        raise DiarizationInputError("diarization_method_invalid", f"unknown method {method!r}")
    if method == "channels":
        if audio.shape[0] < 2:
            raise DiarizationInputError(
                "channels_need_stereo", "the channels method needs a file with 2 or more channels"
            )
        return _diarize_channels(audio, threads)
    if audio.shape[0] == 2 and is_stereo_per_channel(audio):
        return _diarize_channels(audio, threads)

    t0 = time.perf_counter()
    mono = audio[0] if audio.shape[0] == 1 else audio.mean(axis=0, dtype=np.float32)
    mono = np.ascontiguousarray(mono)
    regions = speech_regions(speech_probabilities(mono), n_samples=mono.shape[0])
    t1 = time.perf_counter()
    windows = _windows(regions)
    if regions and not windows:
        # Only bursts too short for a window: one window over all of them together.
        whole = np.concatenate([mono[s:e] for s, e in regions])
        emb = _embed_windows(whole, [_Window(0, 0, whole.shape[0])], threads)
        pieces = [(s, e, 0) for s, e in regions]
        result = _to_result(pieces, {0: emb[0]}, "clustering")
        result.windows = 1
        return result
    if not windows:  # no speech
        return DiarizationResult([], {}, "clustering")
    emb = _embed_windows(mono, windows, threads)
    t2 = time.perf_counter()
    # Windows under 1 s give noisy embeddings that form clusters of their own: cluster the
    # full-length ones, then give the short ones the nearest centroid.
    lengths = np.array([w.end - w.start for w in windows])
    full = lengths >= RELIABLE_WINDOW_S * SAMPLE_RATE
    if full.sum() < max(2, lo):
        full[:] = True
    labels = np.zeros(len(windows), dtype=np.int64)
    labels[full] = cluster(emb[full], lo=lo, hi=hi, fixed=num_speakers is not None)
    cents = _centroids(emb[full], labels[full])
    if (~full).any():
        labels[~full] = np.argmax(emb[~full] @ cents.T, axis=1)
    if cents.shape[0] > 1:
        windows, emb, labels = _refine(mono, regions, windows, emb, labels, cents, threads)
    pieces = _turns_from_windows(regions, windows, labels)
    result = _to_result(pieces, {c: cents[c] for c in range(cents.shape[0])}, "clustering")
    result.windows = len(windows)
    result.timings = {
        "vad": round(t1 - t0, 3),
        "embed": round(t2 - t1, 3),
        "cluster": round(time.perf_counter() - t2, 3),
    }
    return result
