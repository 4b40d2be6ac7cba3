"""Interactive applications over nlnet's models. ``attention_explorer`` (the web page) and
``explorer_browser`` (driving it from Chromium) need the ``app`` extra (Gradio) and the
test requirements (Selenium) respectively; ``attention_session`` and ``attention_sheet``
need neither."""
