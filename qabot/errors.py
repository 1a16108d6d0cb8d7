"""User-facing errors: the CLI prints their message on one line and exits 2."""


class QabotError(Exception):
    """Base class for errors whose message is meant for the user."""


class ConfigError(QabotError):
    """Settings are missing, malformed or of the wrong type."""


class CorpusError(QabotError):
    """The corpus folder cannot be read or holds no usable article."""


class QuestionError(QabotError):
    """A question asks nothing: it is empty, or holds only punctuation or control characters."""


class CitationError(QabotError):
    """A citation is malformed, stale, or points outside the corpus."""


class ClusterError(QabotError):
    """The Dask cluster cannot be reached, or a shard cannot be served."""


class ImportRefused(QabotError):
    """`qabot add` refuses a source: a web address (nothing is fetched), or a format whose extra is missing."""
