from tests.s3 import moto_s3  # noqa: F401  (the session's S3 server)
