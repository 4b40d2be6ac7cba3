"""Interactive applications over nlnet's models. ``attention_explorer`` needs the ``app``
extra (Gradio); ``attention_session`` and ``attention_overlay`` do not."""
