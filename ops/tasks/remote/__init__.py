"""Programs the play runs on the host with the host's Python (stdlib, plus huggingface_hub when fetching).

They are sent as text (stdin heredoc), so a check needs no upload and the exported script embeds
the very same code.
"""
