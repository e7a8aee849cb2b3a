"""Documents split into passages: the splitter, token counts, an edit's plan and document-level results.

Every module here is free of I/O; the write path (:mod:`semsearch.writes`, :mod:`semsearch.aio.writes`)
and the search path (:mod:`semsearch.collection`, :mod:`semsearch.aio.collection`) call them.
"""
