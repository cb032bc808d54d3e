"""Loading: requests, the load plan (blocks sized by bytes), resolution of keys, versions."""
