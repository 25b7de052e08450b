"""The served module: an ASGI server for real-time audio-driven talking heads.

Importing this package starts nothing; `inference.app.create_app(config)` builds the app and
`python -m inference` runs it under uvicorn.
"""

__version__ = "0.1.0"
