import logging

from apps.core.request_context import current_request_id


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every log record.

    Django logs a request's outcome after the middleware has returned, so a
    record that carries the request takes the id from it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = current_request_id()
            if request_id == "-":
                request_id = getattr(getattr(record, "request", None), "request_id", "-")
            record.request_id = request_id
        return True
