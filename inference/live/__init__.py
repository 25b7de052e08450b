"""The browser live view's static files (index.html, live.js, pcm-worklet.js), served by
inference/api/live.py when FLASHHEAD_LIVE_VIEW=1."""
