"""What probing in a child process costs: the same probes in a thread of this process (as before)
and through the probe pool (a warm child), for a short clip and an hour-long file.

    python -m bench.probe_isolation

Prints the median and p90 per probe, and the difference. The long files are generated once into
a temporary folder (an hour of 16 kHz mono: a 115 MB WAV and a 28 MB MP3).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import wave
from pathlib import Path

import av
import numpy as np

from verbatim.media.probe import probe
from verbatim.media.probe_pool import ProbePool

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
RATE = 16000


def hour_of_tone() -> np.ndarray:
    second = (np.sin(np.arange(RATE) / 8) * 8000).astype(np.int16)
    return np.tile(second, 3600)


def make_wav(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(hour_of_tone().tobytes())


def make_mp3(path: Path) -> None:
    samples = hour_of_tone()
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=RATE, layout="mono")
        stream.bit_rate = 64000
        for start in range(0, len(samples), RATE * 10):
            frame = av.AudioFrame.from_ndarray(
                samples[start : start + RATE * 10].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


async def measure(path: Path, pool: ProbePool, runs: int) -> None:
    in_thread, in_child = [], []
    await pool.probe(path)  # warm: the child is started, the file is in the page cache
    for _ in range(runs):
        start = time.perf_counter()
        await asyncio.to_thread(probe, path)
        in_thread.append(time.perf_counter() - start)
        start = time.perf_counter()
        await pool.probe(path)
        in_child.append(time.perf_counter() - start)

    def ms(values: list[float], q: float) -> float:
        return 1000 * statistics.quantiles(values, n=10)[8] if q == 0.9 else 1000 * q

    thread_med = 1000 * statistics.median(in_thread)
    child_med = 1000 * statistics.median(in_child)
    print(
        f"{path.name:28s} {path.stat().st_size / 1e6:8.1f} MB  "
        f"thread {thread_med:8.1f} ms (p90 {ms(in_thread, 0.9):8.1f})  "
        f"child {child_med:8.1f} ms (p90 {ms(in_child, 0.9):8.1f})  "
        f"added {child_med - thread_med:+7.1f} ms"
    )


async def main() -> None:
    pool = ProbePool(size=1)
    start = time.perf_counter()
    await pool.probe(FIXTURES / "speech.wav")
    print(f"first probe (starts the child): {1000 * (time.perf_counter() - start):.0f} ms")
    with tempfile.TemporaryDirectory() as folder:
        wav, mp3 = Path(folder) / "hour.wav", Path(folder) / "hour.mp3"
        make_wav(wav)
        make_mp3(mp3)
        for path, runs in ((FIXTURES / "speech.wav", 30), (FIXTURES / "speech.mp3", 30)):
            await measure(path, pool, runs)
        for path in (wav, mp3):
            await measure(path, pool, 5)
            print(f"  measured duration {probe(path).duration} s")
    pool.close()


if __name__ == "__main__":
    asyncio.run(main())
