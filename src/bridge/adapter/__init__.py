"""What adapters are built from: the base class and the tools they share.

- :mod:`bridge.adapter.base`: :class:`Adapter`, its ``Config``, :class:`Batch`, :class:`Rejection`,
  :class:`SourceContext`;
- :mod:`bridge.adapter.http`: :func:`http_client` with bounded retries and answers, the
  :class:`RetryPolicy` and its response classifier, :func:`raise_for_status`;
- :mod:`bridge.adapter.xml`: hardened parsing, :func:`parse_xml` and :func:`iter_xml_elements`;
- :mod:`bridge.adapter.paging`: :func:`paginate_offset` (and :class:`PagingMismatch`) and :func:`bounded_map`.

Import from here; the modules are the package's own layout.
"""

from bridge.adapter.base import INCOMPLETE, Adapter, AdapterConfig, Batch, Kept, Rejection, SourceContext
from bridge.adapter.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RETRY,
    OUTAGE_STATUSES,
    ResponseClassifier,
    RetryPolicy,
    RetryTransport,
    http_client,
    raise_for_status,
    transient_status,
)
from bridge.adapter.paging import OffsetPages, PagingMismatch, bounded_map, paginate_offset
from bridge.adapter.xml import MAX_XML_BYTES, XmlRejected, iter_xml_elements, parse_xml, safe_xml_parser

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_RETRY",
    "INCOMPLETE",
    "MAX_XML_BYTES",
    "OUTAGE_STATUSES",
    "Adapter",
    "AdapterConfig",
    "Batch",
    "Kept",
    "OffsetPages",
    "PagingMismatch",
    "Rejection",
    "ResponseClassifier",
    "RetryPolicy",
    "RetryTransport",
    "SourceContext",
    "XmlRejected",
    "bounded_map",
    "http_client",
    "iter_xml_elements",
    "paginate_offset",
    "parse_xml",
    "raise_for_status",
    "safe_xml_parser",
    "transient_status",
]
