"""REST implementations of Keel's stores, used when the tracking URI is http(s)://."""
