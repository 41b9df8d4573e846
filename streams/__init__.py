"""The core: canonical events, plates, the watchlist index, matching, topics and the stream stages."""
