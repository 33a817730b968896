"""Danmarks Statistik deliveries: the L201 and L231 files every fagsystem produces, read as measures.

Municipalities report their children's measures to Danmarks Statistik system-to-system: L201
(``UdsatteBoernOgUngeLeveranceL201U1Struktur``, forebyggende foranstaltninger for udsatte børn
og unge) and L231 (``BoernMedHandicapLeveranceL231Struktur``, børn med handicap). Because every
fagsystem writes them, bridge can import one as the measures of any source's cases:

- :mod:`bridge.dst.codes`: the DST measure codes and the legal basis each stands for;
- :mod:`bridge.dst.files`: the two file formats, read as a stream and written (for tests and demos);
- :mod:`bridge.dst.importer`: ``bridge import-dst FILE --source NAME``.
"""
