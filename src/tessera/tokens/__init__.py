"""Token codecs: how credentials look on the wire and how they are stored."""
