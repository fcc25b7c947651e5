from tests.engines.conftest import openai_server  # noqa: F401  (the local OpenAI server)
from tests.s3 import moto_s3  # noqa: F401  (the session's S3 server)
