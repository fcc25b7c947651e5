from tests.downloads.conftest import media_server

__all__ = ["media_server"]
