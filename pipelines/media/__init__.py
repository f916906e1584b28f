"""Attachments: what an uploaded file really is, a safe copy of it, and the text in images."""
